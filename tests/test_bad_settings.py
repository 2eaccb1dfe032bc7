"""A corpus of malformed settings (issue 12): every risk bound, wrong types, inf, NaN and huge
values. Each is refused with one line naming the field; none is a traceback, none is accepted.
Protections are switched off only by the word ``unlimited``."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bot.cli.main import main
from bot.config import ConfigError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("HEDGEBOT__"):
            monkeypatch.delenv(key)


# (YAML of one setting, the field the error must name, words the message must hold)
CORPUS: list[tuple[str, str, str]] = [
    # Danger 6: values that would switch a protection off by accident.
    ("risk: {max_position_usd: .inf}", "risk.max_position_usd", "unlimited"),
    ("risk: {max_order_usd: 1e30}", "risk.max_order_usd", "ceiling"),
    ("risk: {max_daily_notional_usd: 1e30}", "risk.max_daily_notional_usd", "ceiling"),
    ("risk: {delta_disagreement_usd: 1e15}", "risk", "delta_tolerance_coin"),
    ("risk: {position_tolerance: 1e12}", "risk.position_tolerance", "less than"),
    ("risk: {max_data_age_seconds: 1e9}", "risk.max_data_age_seconds", "less than"),
    ("risk: {delta_tolerance_coin: {BTC: 1e15}}", "risk.delta_tolerance_coin.BTC", "less than"),
    # NaN and infinities, everywhere.
    ("risk: {max_order_usd: .nan}", "risk.max_order_usd", "finite"),
    ("risk: {max_position_usd: -.inf}", "risk.max_position_usd", "finite"),
    ("risk: {max_data_age_seconds: .nan}", "risk.max_data_age_seconds", "finite"),
    ("risk: {max_clock_ahead_seconds: .inf}", "risk.max_clock_ahead_seconds", "finite"),
    ("risk: {max_index_deviation: .nan}", "risk.max_index_deviation", "finite"),
    ("risk: {delta_tolerance_coin: {BTC: .nan}}", "risk.delta_tolerance_coin.BTC", "finite"),
    ("risk: {delta_tolerance_fraction: .inf}", "risk.delta_tolerance_fraction", "finite"),
    ("risk: {position_tolerance: .inf}", "risk.position_tolerance", "finite"),
    ("risk: {equity_move_floor: .nan}", "risk.equity_move_floor", "finite"),
    ("hedge: {target_delta: .nan}", "hedge.target_delta", "finite"),
    ("market: {volatility: .nan}", "market.volatility", "finite"),
    ("market: {spot: {BTC: .inf}}", "market.spot.BTC", "finite"),
    ("execution: {slippage_cap_bps: .nan}", "execution.slippage_cap_bps", "finite"),
    ("venue: {fees: {perp_taker: .nan}}", "venue.fees.perp_taker", "finite"),
    (
        "policy: {gamma_scaled: {risk_aversion: .inf}}",
        "policy.gamma_scaled.risk_aversion",
        "finite",
    ),
    # Out of range, every risk bound.
    ("risk: {max_order_usd: 0}", "risk.max_order_usd", "above 0"),
    ("risk: {max_order_usd: -5000}", "risk.max_order_usd", "above 0"),
    ("risk: {max_position_usd: 0}", "risk.max_position_usd", "above 0"),
    ("risk: {max_daily_notional_usd: -1}", "risk.max_daily_notional_usd", "above 0"),
    ("risk: {max_orders_per_minute: 0}", "risk.max_orders_per_minute", "greater than"),
    ("risk: {max_orders_per_minute: 1000000}", "risk.max_orders_per_minute", "less than"),
    ("risk: {max_data_age_seconds: 0}", "risk.max_data_age_seconds", "greater than"),
    ("risk: {max_clock_ahead_seconds: -1}", "risk.max_clock_ahead_seconds", "greater than"),
    ("risk: {max_clock_ahead_seconds: 3600}", "risk.max_clock_ahead_seconds", "less than"),
    ("risk: {max_index_deviation: 0}", "risk.max_index_deviation", "greater than"),
    ("risk: {max_index_deviation: 2}", "risk.max_index_deviation", "less than"),
    ("risk: {delta_tolerance_coin: {BTC: 0}}", "risk.delta_tolerance_coin.BTC", "greater than"),
    ("risk: {delta_tolerance_fraction: -0.1}", "risk.delta_tolerance_fraction", "greater than"),
    ("risk: {delta_tolerance_fraction: 5}", "risk.delta_tolerance_fraction", "less than"),
    ("risk: {position_tolerance: -1}", "risk.position_tolerance", "greater than"),
    ("risk: {equity_move_floor: -0.5}", "risk.equity_move_floor", "greater than"),
    ("risk: {equity_move_floor: 3}", "risk.equity_move_floor", "less than"),
    ("risk: {halt_after_bad_reads: 0}", "risk.halt_after_bad_reads", "greater than"),
    ("risk: {halt_after_bad_reads: 100000}", "risk.halt_after_bad_reads", "less than"),
    ("risk: {max_fill_beyond_limit: -0.1}", "risk.max_fill_beyond_limit", "greater than"),
    ("risk: {max_fill_beyond_limit: 1e9}", "risk.max_fill_beyond_limit", "less than"),
    ("risk: {max_fill_from_mid: 0}", "risk.max_fill_from_mid", "greater than"),
    ("risk: {max_fill_from_mid: .inf}", "risk.max_fill_from_mid", "finite"),
    ("risk: {max_fee_rate: 0}", "risk.max_fee_rate", "greater than"),
    ("risk: {max_fee_rate: 5}", "risk.max_fee_rate", "less than"),
    ("risk: {max_fee_rate: .nan}", "risk.max_fee_rate", "number"),
    # Wrong types.
    ("risk: {max_order_usd: lots}", "risk.max_order_usd", "not a finite number"),
    ("risk: {max_order_usd: true}", "risk.max_order_usd", "not a finite number"),
    ("risk: {max_order_usd: null}", "risk.max_order_usd", "not a finite number"),
    ("risk: {max_order_usd: [1, 2]}", "risk.max_order_usd", "not a finite number"),
    ("risk: {max_position_usd: Unlimited!}", "risk.max_position_usd", "unlimited"),
    ("risk: {max_orders_per_minute: 2.5}", "risk.max_orders_per_minute", "integer"),
    ("risk: {max_orders_per_minute: many}", "risk.max_orders_per_minute", "integer"),
    ("risk: {max_data_age_seconds: soon}", "risk.max_data_age_seconds", "number"),
    ("risk: {delta_tolerance_coin: 0.02}", "risk.delta_tolerance_coin", "dictionary"),
    ("risk: {delta_tolerance_coin: {BTC: small}}", "risk.delta_tolerance_coin.BTC", "number"),
    ("risk: {oversize: maybe}", "risk.oversize", "clip"),
    ("risk: {halt_after_bad_reads: .inf}", "risk.halt_after_bad_reads", "finite"),
    ("risk: 5", "risk", "dictionary"),
    ("risk: {surprise: 1}", "risk.surprise", "not permitted"),
    # Cross-field: a hedged currency without its delta tolerance.
    ("risk: {delta_tolerance_coin: {ETH: 0.5}}", "settings", "no entry for ['BTC']"),
]


@pytest.mark.parametrize(("text", "field", "words"), CORPUS, ids=[c[0] for c in CORPUS])
def test_a_malformed_setting_is_refused_with_one_line_naming_the_field(
    tmp_path: Path, text: str, field: str, words: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    lines = raised.value.lines
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{field}:"), lines
    assert words in lines[0], lines


def test_a_malformed_risk_setting_exits_2_from_the_command_line_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("risk: {max_position_usd: .inf}\n")
    assert main(["--config", str(path), "status"]) == 2
    err = capsys.readouterr().err
    assert "risk.max_position_usd" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("field", ["max_order_usd", "max_position_usd", "max_daily_notional_usd"])
def test_the_word_unlimited_switches_a_cap_off_and_says_so_in_the_settings(
    tmp_path: Path, field: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(f"risk: {{{field}: unlimited}}\n")
    risk = load_settings(path).risk
    assert getattr(risk, field) == "unlimited"
    cap = {"max_order_usd": risk.order_cap_usd, "max_position_usd": risk.position_cap_usd}
    cap["max_daily_notional_usd"] = risk.daily_notional_cap_usd
    assert math.isinf(cap[field])


def test_a_cap_given_in_the_environment_as_text_is_read_as_a_number(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HEDGEBOT__RISK__MAX_ORDER_USD", "25000")
    assert load_settings(None).risk.order_cap_usd == 25_000


def test_an_infinite_cap_in_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEDGEBOT__RISK__MAX_POSITION_USD", "inf")
    with pytest.raises(ConfigError, match="max_position_usd"):
        load_settings(None)
