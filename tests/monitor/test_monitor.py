"""The monitor as the daemon sees it: off by default, never a reason for the daemon to fail."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from bot.clock import FakeClock
from bot.config import ConfigError, load_settings
from bot.daemon import Daemon
from bot.monitor import Alert, Monitor
from bot.reconcile import ReconciliationFailed
from bot.store.ledger import Ledger
from bot.venues.errors import TransientError
from tests.monitor.kit import monitored
from tests.support.books import NOW
from tests.support.harness import Passthrough, stack


class BrokenSummary:
    """A ledger whose summary query fails: the monitor's reads break, the daemon's do not."""

    def __init__(self, inner: Ledger) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def summary(self) -> Any:
        raise RuntimeError("disk I/O error")


async def test_a_monitor_that_fails_inside_leaves_the_daemon_hedging(tmp_path: Path) -> None:
    clock = FakeClock(NOW)
    daemon, app, _ = monitored(tmp_path, clock, monitor={"metrics": False})
    broken = Monitor(app.settings, BrokenSummary(app.ledger), clock, environ={})  # type: ignore[arg-type]
    daemon = Daemon(app.ctx, ("BTC",), 60.0, 600, 1, monitor=broken)
    app.monitor = broken
    try:
        with capture_logs() as logs:
            stats = await daemon.run(asyncio.Event(), max_cycles=5)
    finally:
        await app.close()
    assert stats.cycles == 5
    failures = [e for e in logs if e["event"] == "monitor_failed"]
    assert failures
    assert failures[0]["error"] == "RuntimeError: disk I/O error"


def test_by_default_nothing_listens_and_no_alert_is_configured(tmp_path: Path) -> None:
    app = stack(tmp_path)
    assert app.monitor is not None
    assert app.settings.monitor.metrics is False
    app.monitor.starting(("BTC",), 60.0)
    assert app.monitor.port is None
    asyncio.run(app.close())


def test_a_listener_beyond_loopback_must_be_asked_for() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(None, monitor={"host": "0.0.0.0"})
    assert "monitor.host '0.0.0.0' is not a loopback address" in str(err.value)
    assert load_settings(None, monitor={"host": "0.0.0.0", "allow_non_loopback": True})
    assert load_settings(None, monitor={"host": "::1"})


class FailingPositions(Passthrough):
    async def positions(self, currency: str) -> Any:
        raise TransientError("positions read timed out")


async def test_a_refused_start_sends_one_alert_and_no_second_one_for_the_exit(
    tmp_path: Path,
) -> None:
    sent: list[Alert] = []

    def transport(alert: Alert, body: str) -> bool:
        sent.append(alert)
        return True

    clock = FakeClock(NOW)
    app = stack(tmp_path, clock=clock, wrap=FailingPositions)
    mon = Monitor(app.settings, app.ledger, clock, environ={}, transport=transport)
    app.monitor = mon
    daemon = Daemon(app.ctx, ("BTC",), 60.0, 600, 1, monitor=mon)
    with pytest.raises(ReconciliationFailed):
        await daemon.run(asyncio.Event(), max_cycles=1)
    await app.close()
    assert [a.kind for a in sent] == ["reconcile_refused"]
    assert "positions read timed out" in sent[0].what
    ok, detail = mon.ready()
    assert not ok
    assert detail["problems"][0] == (
        "reconciliation refused: BTC: venue did not answer: positions read timed out"
    )
