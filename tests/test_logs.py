"""The daemon's console is one readable line per cycle, order and heartbeat; JSON keeps every
field; a URL's password never reaches a log line."""

from __future__ import annotations

import io
import json

import structlog

from bot.logs import configure_logging

CYCLE = {
    "currency": "BTC",
    "status": "no_trade",
    "reason": "in_band",
    "delta": 0.0421,
    "delta_usd": 3790.0,
    "band_low": -0.1,
    "band_high": 0.1,
    "target": 0.0,
    "trade_amount": 0.0,
}
TRADE = {
    **CYCLE,
    "delta": 0.45,
    "delta_usd": 40_500.0,
    "trade_amount": -40_500.0,
    "instrument": "BTC-PERPETUAL",
    "label": "hb-abc-1",
    "status": "filled",
    "filled": -40_500.0,
    "price": 90_010.5,
    "fees": 0.00022,
}


def _log(fmt: str, event: str, **fields: object) -> str:
    out = io.StringIO()
    configure_logging(fmt, "info", stream=out)  # type: ignore[arg-type]
    structlog.get_logger("t").info(event, **fields)
    return out.getvalue().strip()


def test_a_cycle_reads_as_one_line_with_currency_delta_band_decision_and_why() -> None:
    line = _log("console", "cycle_done", **CYCLE)
    assert "\n" not in line
    for words in ("BTC", "+0.0421 BTC", "$+3,790", "[-0.1000, +0.1000]", "no trade", "in_band"):
        assert words in line


def test_a_trade_reads_as_one_line_with_the_order_and_its_fill() -> None:
    line = _log("console", "rebalanced", **TRADE)
    for words in ("SELL 40,500 BTC-PERPETUAL", "filled -40,500 at 90,010.50", "0.00022000 BTC"):
        assert words in line


def test_the_heartbeat_reads_with_the_day_counts_fees_and_pnl() -> None:
    line = _log(
        "console",
        "heartbeat",
        cycles=12,
        day="2026-11-30",
        cycles_today=40,
        by_status_today={"no_trade": 38, "traded": 2},
        fees_today={"BTC": 0.0004},
        pnl_today={"BTC": {"coin": -0.001, "usd": -90.0}},
    )
    for words in ("40 cycles", "no_trade 38", "traded 2", "0.00040000 BTC", "-0.001000", "$-90"):
        assert words in line


def test_json_logs_keep_every_field() -> None:
    record = json.loads(_log("json", "rebalanced", **TRADE))
    assert {k: record[k] for k in TRADE} == TRADE


def test_a_database_password_in_a_logged_url_is_masked() -> None:
    line = _log("json", "db_upgraded", url="postgresql://bob:hunter2pw@db/hb")
    assert "hunter2pw" not in line
    assert "postgresql://bob:****@db/hb" in line


AUTH_URL = (
    "deribit GET https://www.deribit.com/api/v2/public/auth?grant_type=client_signature"
    "&client_id=KEY1d3ntity&timestamp=1&nonce=ab&data=&signature=5ec4e7516a7ure"
)


def test_an_auth_calls_key_and_signature_in_a_logged_error_are_masked() -> None:
    line = _log("json", "venue_read_retry", op="auth", error=f"ExchangeNotAvailable: {AUTH_URL}")
    assert "KEY1d3ntity" not in line
    assert "5ec4e7516a7ure" not in line
    assert "client_id=****" in line


def test_a_known_secret_is_masked_anywhere_in_a_line_and_in_a_traceback() -> None:
    import ccxt

    from bot.venues.deribit.mapping import map_error

    out = io.StringIO()
    configure_logging("json", "info", stream=out, secrets=["s3cr3t-value"])  # type: ignore[arg-type]
    log = structlog.get_logger("t")
    log.warning("odd", detail="the venue echoed s3cr3t-value back")
    try:
        try:
            raise ccxt.ExchangeNotAvailable(AUTH_URL + " s3cr3t-value")
        except ccxt.BaseError as exc:
            raise map_error(exc, write=False) from exc
    except Exception:
        log.exception("cycle_failed")
    text = out.getvalue()
    assert "s3cr3t-value" not in text
    assert "KEY1d3ntity" not in text
    assert "5ec4e7516a7ure" not in text
    assert "cycle_failed" in text


def test_a_ccxt_error_mapped_to_a_venue_error_carries_no_key_or_signature() -> None:
    import ccxt

    from bot.venues.deribit.mapping import map_error

    mapped = map_error(ccxt.ExchangeNotAvailable(AUTH_URL), write=False)
    assert "KEY1d3ntity" not in str(mapped)
    assert "5ec4e7516a7ure" not in str(mapped)
    assert "public/auth" in str(mapped)
