"""Settings: the example file documents the code, values reach the program, bad files exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli.config_doc import render
from bot.cli.main import main
from bot.config import ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config.example.yaml"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("HEDGEBOT__"):
            monkeypatch.delenv(key)


def test_example_config_is_exactly_what_the_code_documents() -> None:
    assert EXAMPLE.read_text() == render(), (
        "run: python -m bot.cli.config_doc > config.example.yaml"
    )


def test_example_config_loads_to_the_declared_defaults() -> None:
    assert load_settings(EXAMPLE).model_dump() == load_settings(None).model_dump()


def test_a_value_changed_in_the_example_file_reaches_the_program(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace("    band: 0.1  #", "    band: 0.37  #")
    text = text.replace("  kind: delta_band  #", "  kind: gamma_scaled  #")
    assert "band: 0.37" in text
    path = tmp_path / "config.yaml"
    path.write_text(text)
    settings = load_settings(path)
    assert settings.policy.delta_band.band == 0.37
    assert settings.policy.kind == "gamma_scaled"


def test_environment_overrides_win_over_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("risk:\n  max_order_usd: 1000\n")
    monkeypatch.setenv("HEDGEBOT__RISK__MAX_ORDER_USD", "2500")
    assert load_settings(path).risk.max_order_usd == 2500


def test_settings_are_frozen() -> None:
    settings = load_settings(None)
    with pytest.raises(Exception, match="frozen"):
        settings.policy.delta_band.band = 1.0  # type: ignore[misc]


def test_api_keys_come_from_the_environment_and_never_print(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HEDGEBOT__VENUE__API_KEY", "key-abc")
    monkeypatch.setenv("HEDGEBOT__VENUE__API_SECRET", "very-secret-value")
    venue = load_settings(None).venue
    assert venue.api_secret is not None
    assert venue.api_secret.get_secret_value() == "very-secret-value"
    assert "very-secret-value" not in repr(venue)
    assert "very-secret-value" not in str(load_settings(None).model_dump())


def test_a_file_carrying_secrets_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("venue:\n  api_secret: hunter2\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert any("venue.api_secret" in line and "environment" in line for line in err.value.lines)


def test_an_invalid_file_exits_2_with_one_line_per_bad_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "policy:\n  kind: martingale\n  delta_band:\n    band: -1\n"
        "risk:\n  max_orders_per_minute: 0\n  surprise: 1\n"
    )
    assert main(["--config", str(path), "status"]) == 2
    err = capsys.readouterr().err
    lines = [ln.strip() for ln in err.splitlines()[1:]]
    assert len(lines) == 4
    assert any(ln.startswith("policy.kind:") for ln in lines)
    assert any(ln.startswith("policy.delta_band.band:") for ln in lines)
    assert any(ln.startswith("risk.max_orders_per_minute:") for ln in lines)
    assert any(ln.startswith("risk.surprise:") for ln in lines)


def test_a_file_that_is_not_yaml_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("policy: [unclosed\n")
    assert main(["--config", str(path), "status"]) == 2
    assert "not valid YAML" in capsys.readouterr().err


def test_an_unknown_currency_without_venue_facts_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("venue:\n  currencies: [BTC, DOGE]\n")
    with pytest.raises(ConfigError, match="DOGE"):
        load_settings(path)


def test_a_currency_can_change_part_of_the_policy_and_keep_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "policy:\n  kind: delta_band\n  delta_band:\n    band: 0.1\n    rebalance_to: edge\n"
        "policy_by_currency:\n  ETH:\n    delta_band:\n      band: 3.0\n"
    )
    settings = load_settings(path)
    assert settings.policy_for("BTC").delta_band.band == 0.1
    eth = settings.policy_for("ETH")
    assert eth.delta_band.band == 3.0
    assert eth.delta_band.rebalance_to == "edge"
    assert eth.kind == "delta_band"


def test_a_bad_per_currency_policy_is_refused_naming_the_currency(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("policy_by_currency:\n  ETH:\n    delta_band:\n      band: -3\n")
    with pytest.raises(ConfigError, match=r"policy_by_currency\.ETH: delta_band\.band"):
        load_settings(path)
