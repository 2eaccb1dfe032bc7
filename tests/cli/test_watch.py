"""``hedgebot watch --once`` on a ledger filled by a short paper run."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import pytest

from bot.cli.main import main
from bot.cli.watch import cmd_watch
from bot.clock import FakeClock
from bot.domain import TradingState
from tests.monitor.kit import monitored
from tests.support.books import NOW


def _args(**kw: object) -> argparse.Namespace:
    return argparse.Namespace(
        **{"paper": True, "once": True, "every": 2.0, "metrics_url": None, **kw}
    )


async def test_watch_once_shows_the_book_its_band_decisions_and_costs_after_a_paper_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = FakeClock(NOW)
    daemon, app, _ = monitored(tmp_path, clock, monitor={"metrics": False})
    try:
        await daemon.run(asyncio.Event(), max_cycles=30)
    finally:
        await app.close()
    assert cmd_watch(_args(), app.settings, clock) == 0
    out = capsys.readouterr().out
    last = app.ledger.last_rebalances(1)[0]
    snap = app.ledger.last_greeks_snapshot("BTC")
    assert snap is not None
    assert "trading active" in out
    assert "BTC" in out
    assert f"[{last.band_low:+.4f}" in out
    assert f"{snap.delta_coin:+.4f} BTC" in out
    assert f"{snap.hedge_position:+,.0f} USD perpetual" in out
    fills = app.ledger.fills()
    assert f"{len(fills)} fills" in out
    assert "last decisions" in out
    assert last.status.value in out
    assert "daemon not watched (monitor.metrics: false)" in out


async def test_watch_shows_a_halt_and_a_daemon_that_does_not_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = FakeClock(NOW)
    daemon, app, _ = monitored(tmp_path, clock, monitor={"metrics": False})
    try:
        await daemon.run(asyncio.Event(), max_cycles=2)
    finally:
        await app.close()
    app.ledger.set_trading_state(TradingState.HALTED, "operator: maintenance", clock.now())
    app.ledger.set_trading_state(TradingState.REDUCING, "wind down", clock.now(), "BTC")
    assert cmd_watch(_args(metrics_url="http://127.0.0.1:9"), app.settings, clock) == 0
    out = capsys.readouterr().out
    assert "trading halted (operator: maintenance)" in out
    assert "BTC  reducing (wind down)" in out
    assert "no answer at http://127.0.0.1:9" in out


def test_the_watch_command_is_registered(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["watch", "--help"])
    assert "--once" in capsys.readouterr().out


async def test_watch_beside_a_serving_daemon_shows_its_readiness_clock_offset_and_latency(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = FakeClock(NOW)
    daemon, app, mon = monitored(tmp_path, clock)
    try:
        await daemon.run(asyncio.Event(), max_cycles=3)
        mon.clock_offset(0.25)
        mon.metrics.request("get_positions", 0.02)
        mon.metrics.request("create_order", 0.08)
        url = f"http://127.0.0.1:{mon.port}"
        assert cmd_watch(_args(metrics_url=url), app.settings, clock) == 0
    finally:
        await app.close()
    out = " ".join(capsys.readouterr().out.split())
    assert "daemon ready venue clock +0.250 s slowest request create_order 80 ms (mean)" in out


async def test_watch_runs_while_a_daemon_holds_the_books_lock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = FakeClock(NOW)
    daemon, app, _ = monitored(tmp_path, clock, monitor={"metrics": False})
    try:
        with app.lock():
            await daemon.run(asyncio.Event(), max_cycles=2)
            assert cmd_watch(_args(), app.settings, clock) == 0
    finally:
        await app.close()
    assert "last decisions" in capsys.readouterr().out
