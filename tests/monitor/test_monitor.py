"""The monitor as the daemon sees it: off by default, never a reason for the daemon to fail."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from bot.app import build_app
from bot.clock import FakeClock
from bot.config import ConfigError, load_settings
from bot.daemon import Daemon
from bot.monitor import Alert, Monitor
from bot.reconcile import ReconciliationFailed
from bot.store.db import upgrade
from bot.store.ledger import Ledger
from bot.venues.errors import TransientError
from tests.monitor.kit import monitored
from tests.support.books import NOW
from tests.support.harness import Passthrough, stack
from tests.support.harness import settings as harness_settings


class BrokenSummary:
    """A ledger whose order count fails: the monitor's reads break, the daemon's do not."""

    def __init__(self, inner: Ledger) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def order_counts(self) -> Any:
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


def test_the_venue_clock_offset_is_read_after_each_cycle_once_it_is_measured(
    tmp_path: Path,
) -> None:
    clock = FakeClock(NOW)
    app = stack(tmp_path, clock=clock)
    measured: list[float | None] = [None]
    mon = Monitor(app.settings, app.ledger, clock, environ={}, clock_offset=lambda: measured[0])
    gauge = "hedgebot_venue_clock_offset_seconds"
    mon.starting(("BTC",), 60.0)
    mon.cycle("BTC", "skipped", "not read", None, None, None)
    value = mon.metrics.registry.get_sample_value(gauge)
    assert value is not None
    assert value != value  # NaN: not measured yet
    measured[0] = -3.25
    mon.cycle("BTC", "skipped", "not read", None, None, None)
    assert mon.metrics.registry.get_sample_value(gauge) == -3.25
    mon.close()
    asyncio.run(app.close())


async def test_a_metrics_port_already_taken_is_logged_and_the_daemon_still_hedges(
    tmp_path: Path,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        clock = FakeClock(NOW)
        daemon, app, mon = monitored(tmp_path, clock, monitor={"port": port})
        try:
            with capture_logs() as logs:
                stats = await daemon.run(asyncio.Event(), max_cycles=2)
        finally:
            await app.close()
    assert stats.cycles == 2
    assert mon.port is None
    assert [e["port"] for e in logs if e["event"] == "metrics_not_served"] == [port]


async def test_the_daemon_app_feeds_the_venue_clocks_measured_offset_to_the_monitor(
    tmp_path: Path,
) -> None:
    s = harness_settings(tmp_path)
    upgrade(s.database.url)
    app = build_app(s, paper=False, mode="daemon")  # the sim through ccxt: nothing is sent
    try:
        assert app.monitor is not None
        assert app.venue_clock is not None
        app.venue_clock.offset_seconds = 1.5
        app.monitor.cycle("BTC", "skipped", "not read", None, None, None)
        gauge = "hedgebot_venue_clock_offset_seconds"
        assert app.monitor.metrics.registry.get_sample_value(gauge) == 1.5
    finally:
        await app.close()
