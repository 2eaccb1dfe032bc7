"""/healthz and /readyz answer each state of the daemon."""

from __future__ import annotations

import json
from pathlib import Path

from bot.clock import FakeClock
from bot.domain import HedgeDecision, TradingState
from tests.monitor.kit import get, monitored, sample_greeks, snapshot
from tests.support.books import NOW


def _ready(port: int) -> tuple[int, list[str]]:
    status, body = get(port, "/readyz")
    return status, json.loads(body)["problems"]


def _decision() -> HedgeDecision:
    return HedgeDecision(0.0, 0.0, 0.01, 0.0, -0.05, 0.05, "inside the band", "delta_band")


async def test_each_state_of_the_daemon_answers_the_probes(tmp_path: Path) -> None:
    clock = FakeClock(NOW)
    _, app, mon = monitored(tmp_path, clock, every=60.0)
    try:
        mon.starting(("BTC",), 60.0)
        assert mon.port is not None
        port = mon.port
        # started, not reconciled yet: alive, not ready
        assert get(port, "/healthz")[0] == 200
        status, problems = _ready(port)
        assert status == 503
        assert "reconciliation not done yet" in problems

        mon.reconciled()
        mon.loop()
        status, problems = _ready(port)
        assert (status, problems) == (503, ["BTC: no good read yet"])

        app.ledger.record_greeks(snapshot(clock))
        mon.cycle("BTC", "no_trade", "inside the band", sample_greeks(), _decision(), None)
        assert _ready(port) == (200, [])

        clock.advance(60 + 30 + 1)  # one period plus the data age limit, and a second
        status, problems = _ready(port)
        assert status == 503
        assert problems[0].startswith("BTC: last good read 91 s ago")

        app.ledger.set_trading_state(TradingState.HALTED, "operator", clock.now())
        app.ledger.record_greeks(snapshot(clock))
        mon.loop()
        mon.cycle("BTC", "denied", "trading is halted", sample_greeks(), _decision(), None)
        assert _ready(port) == (503, ["trading is halted"])
        app.ledger.set_trading_state(TradingState.ACTIVE, "operator", clock.now())
        app.ledger.set_trading_state(TradingState.HALTED, "ops", clock.now(), "BTC")
        mon.cycle("BTC", "denied", "trading is halted", sample_greeks(), _decision(), None)
        assert _ready(port) == (503, ["trading is halted for BTC"])

        clock.advance(60 + 300 + 1)  # the loop did not turn for a period plus stall_seconds
        status, body = get(port, "/healthz")
        assert status == 503
        assert json.loads(body)["last_loop_age_seconds"] == 361
        assert get(port, "/nothing")[0] == 404
    finally:
        await app.close()
    assert mon.port is None


async def test_a_refused_reconciliation_keeps_the_daemon_unready_and_says_why(
    tmp_path: Path,
) -> None:
    clock = FakeClock(NOW)
    _, app, mon = monitored(tmp_path, clock)
    try:
        mon.starting(("BTC",), 60.0)
        assert mon.port is not None
        mon.refused("BTC-PERPETUAL: the venue holds +1,000 but the ledger expects +0")
        status, problems = _ready(mon.port)
        assert status == 503
        assert problems[0].startswith("reconciliation refused: BTC-PERPETUAL: the venue holds")
    finally:
        await app.close()
