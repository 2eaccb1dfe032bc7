"""Settings errors name their source and never repeat a secret; unknown variables are caught."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, load_settings
from bot.config_sources import check_environment, yaml_lines


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.upper().startswith("HEDGEBOT__"):
            monkeypatch.delenv(key)


def test_a_variable_under_a_free_mapping_is_a_setting() -> None:
    env = {"HEDGEBOT__MARKET__SPOT__SOL": "150", "HEDGEBOT__MARKET__SPEED": "2"}
    assert check_environment(Settings, env) == []


def test_an_unknown_variable_is_named_with_the_closest_valid_name() -> None:
    [line] = check_environment(Settings, {"HEDGEBOT__RISK__MAX_ORDER_USDD": "5"})
    assert "HEDGEBOT__RISK__MAX_ORDER_USDD" in line
    assert "did you mean HEDGEBOT__RISK__MAX_ORDER_USD?" in line


def test_a_list_setting_from_the_environment_must_be_json() -> None:
    [line] = check_environment(Settings, {"HEDGEBOT__VENUE__CURRENCIES": "BTC,ETH"})
    assert "JSON list" in line
    assert check_environment(Settings, {"HEDGEBOT__VENUE__CURRENCIES": '["BTC"]'}) == []


def test_yaml_lines_finds_each_key_path() -> None:
    lines = yaml_lines("venue:\n  kind: sim\nrisk:\n  max_order_usd: 5\n")
    assert lines[("risk", "max_order_usd")] == 4
    assert lines[("venue",)] == 1


def test_a_section_error_with_a_secret_in_it_shows_neither_the_section_nor_the_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEDGEBOT__VENUE__API_SECRET", "s3cr3t-value-x")
    path = tmp_path / "mine.yaml"
    path.write_text("venue:\n  currencies: [SOL]\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path, required=True)
    text = "\n".join(err.value.lines)
    assert "s3cr3t-value-x" not in text
    assert "api_secret" not in text
    assert "SOL" in text
    assert "mine.yaml line 1" in text


def test_a_named_file_that_does_not_exist_is_an_error_but_the_default_may_be_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml", required=True)
    assert load_settings("config.yaml").venue.kind == "sim"
