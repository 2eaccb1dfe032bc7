"""The daemon loop on a fake clock, and the real command stopping on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from bot.clock import FakeClock
from bot.daemon import Daemon
from bot.domain import OrderRequest, OrderState, OrderType, Side, TimeInForce
from bot.store.db import open_ledger
from bot.venues.base import Venue
from bot.venues.errors import TransientError
from tests.support.books import NOW
from tests.support.harness import Passthrough, stack

ROOT = Path(__file__).resolve().parents[1]


def daemon_for(tmp_path: Path, clock: FakeClock, every: float = 60.0) -> tuple[Daemon, object]:
    app = stack(
        tmp_path, clock=clock, policy={"delta_band": {"band": 0.05}}, hedge={"target_delta": 0.3}
    )
    return Daemon(app.ctx, ("BTC",), every, heartbeat_seconds=600, stop_grace_seconds=1), app


async def test_the_daemon_runs_one_cycle_per_period_until_its_end_time(tmp_path: Path) -> None:
    clock = FakeClock(NOW)
    daemon, app = daemon_for(tmp_path, clock)
    with capture_logs() as logs:
        stats = await daemon.run(asyncio.Event(), until=NOW + timedelta(hours=1))
    assert stats.cycles == 60
    assert stats.by_status.get("traded", 0) >= 1
    assert len(app.ledger.rebalances()) == 60  # type: ignore[attr-defined]
    events = [e["event"] for e in logs]
    assert events.index("reconciled") < events.index("daemon_started")
    assert events.count("heartbeat") == 6  # at minutes 10, 20, 30, 40, 50 and 60


async def test_a_run_whose_end_falls_between_ticks_stops_at_its_end_not_a_tick_later(
    tmp_path: Path,
) -> None:
    clock = FakeClock(NOW)
    daemon, _ = daemon_for(tmp_path, clock)
    stats = await daemon.run(asyncio.Event(), until=NOW + timedelta(minutes=2, seconds=30))
    assert stats.cycles == 3  # at 0, 60 and 120 s
    assert clock.now() == NOW + timedelta(minutes=2, seconds=30)


class WallSleepClock(FakeClock):
    """Time stands still but sleeping takes real time: a long sleep must be interruptible."""

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class SlowOrders(Passthrough):
    """A venue whose order replies take ``seconds`` of the clock's time."""

    def __init__(self, inner: Venue, clock: FakeClock, seconds: float) -> None:
        super().__init__(inner)
        self.clock, self.seconds = clock, seconds

    async def place_order(self, request: OrderRequest) -> OrderState:
        self.clock.advance(self.seconds)
        return await self.inner.place_order(request)


async def test_a_time_band_as_long_as_the_tick_rebalances_on_every_tick(tmp_path: Path) -> None:
    """Execution takes clock time (each order reply 0.4 s), yet the band counts from the tick
    each rebalance was due at, so no tick finds it not yet due."""
    clock = FakeClock(NOW)
    app = stack(
        tmp_path,
        clock=clock,
        policy={"kind": "time_band", "time_band": {"interval_seconds": 60}},
        hedge={"target_delta": 0.3},
        wrap=lambda venue: SlowOrders(venue, clock, 0.4),
    )
    daemon = Daemon(app.ctx, ("BTC",), 60, heartbeat_seconds=600, stop_grace_seconds=1)
    stats = await daemon.run(asyncio.Event(), until=NOW + timedelta(minutes=30))
    rows = app.ledger.rebalances()
    assert stats.cycles == len(rows) == 30
    assert [r.reason for r in rows if r.reason == "not_due"] == []
    assert sum(r.status == "traded" for r in rows) >= 25


async def test_a_cycle_that_overruns_its_tick_skips_the_missed_ticks_and_keeps_the_grid(
    tmp_path: Path,
) -> None:
    clock = FakeClock(NOW)
    app = stack(
        tmp_path,
        clock=clock,
        policy={"delta_band": {"band": 0.05}},
        hedge={"target_delta": 0.3},
        execution={"reprice_seconds": 50},  # a chase of 100 s: longer than the 60 s tick
    )
    daemon = Daemon(app.ctx, ("BTC",), 60, heartbeat_seconds=600, stop_grace_seconds=1)
    with capture_logs() as logs:
        await daemon.run(asyncio.Event(), until=NOW + timedelta(minutes=10))
    starts = [r.ts for r in app.ledger.rebalances() if r.status != "traded"]
    assert starts
    assert all((t - NOW).total_seconds() % 60 == 0 for t in starts)  # still on the grid
    assert "ticks_missed" in [e["event"] for e in logs]


class VenueGoneClock(FakeClock):
    """A simulated venue's clock whose venue stopped answering."""

    async def sleep(self, seconds: float) -> None:
        raise TransientError("could not advance the simulated venue")


async def test_a_clock_that_cannot_sleep_ends_the_run_instead_of_spinning_at_one_instant(
    tmp_path: Path,
) -> None:
    daemon, app = daemon_for(tmp_path, VenueGoneClock(NOW))
    with pytest.raises(TransientError, match="could not advance"):
        await asyncio.wait_for(daemon.run(asyncio.Event()), timeout=10)
    assert len(app.ledger.rebalances()) == 1  # type: ignore[attr-defined]


async def test_a_stop_request_ends_the_sleep_at_once(tmp_path: Path) -> None:
    clock = WallSleepClock(NOW)
    daemon, _ = daemon_for(tmp_path, clock, every=10_000)
    stop = asyncio.Event()

    async def stop_soon() -> None:
        await asyncio.sleep(0.05)
        stop.set()

    asyncio.get_running_loop().create_task(stop_soon())
    stats = await asyncio.wait_for(daemon.run(stop), timeout=5)
    assert stats.cycles == 1


async def test_a_cycle_in_flight_is_abandoned_after_the_grace_period(tmp_path: Path) -> None:
    clock = FakeClock(NOW)
    daemon, app = daemon_for(tmp_path, clock)
    stop = asyncio.Event()
    real_read = app.ctx.tracker.read  # type: ignore[attr-defined]
    calls = 0

    class SlowTracker:
        venue = app.ctx.tracker.venue  # type: ignore[attr-defined]

        async def read(self, currency: str) -> object:
            nonlocal calls
            calls += 1
            if calls > 1:
                stop.set()
                await asyncio.sleep(60)  # a venue that hangs
            return await real_read(currency)

    app.ctx.tracker = SlowTracker()  # type: ignore[attr-defined]
    t0 = time.monotonic()
    stats = await asyncio.wait_for(daemon.run(stop), timeout=10)
    assert time.monotonic() - t0 < 5
    assert stats.abandoned == 1
    assert stats.cycles == 1


def test_hedgebot_run_stops_cleanly_on_sigterm_within_ten_seconds(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "HEDGEBOT__DATABASE__PAPER_URL": f"sqlite:///{tmp_path}/paper.db",
        "HEDGEBOT__POLICY__CHECK_SECONDS": "60",
        "HEDGEBOT__LOGGING__FORMAT": "json",
        # Lockstep time, paced so that a minute's tick lasts a fifth of a wall second.
        "HEDGEBOT__MARKET__CLOCK": "lockstep",
        "HEDGEBOT__MARKET__START": "2026-01-05T00:00:00+00:00",
        "HEDGEBOT__MARKET__PACE": "300",
    }
    cli = [sys.executable, "-m", "bot.cli.main", "--config", os.devnull]
    subprocess.run(
        [*cli, "db", "upgrade", "--paper"], env=env, check=True, cwd=tmp_path, capture_output=True
    )
    proc = subprocess.Popen(
        [*cli, "run", "--paper"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        ledger = open_ledger(f"sqlite:///{tmp_path}/paper.db")
        while time.monotonic() < deadline and len(ledger.rebalances()) < 3:
            time.sleep(0.2)
        assert len(ledger.rebalances()) >= 3
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        assert time.monotonic() - t0 < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1])["cycles"] >= 3
    events = [json.loads(line)["event"] for line in err.splitlines() if line.startswith("{")]
    assert "stop_requested" in events
    assert "daemon_stop_cancelled" in events  # resting orders were looked for and cancelled
    assert events[-1] == "daemon_stopped"
    assert ledger.open_orders() == []  # nothing left working at the venue or unresolved


async def test_a_cycle_that_raises_is_logged_and_the_daemon_goes_on(tmp_path: Path) -> None:
    clock = FakeClock(NOW)
    daemon, app = daemon_for(tmp_path, clock)
    real_read = app.ctx.tracker.read  # type: ignore[attr-defined]
    calls = 0

    class FlakyTracker:
        venue = app.ctx.tracker.venue  # type: ignore[attr-defined]

        async def read(self, currency: str) -> object:
            nonlocal calls
            calls += 1
            if calls == 2:
                raise RuntimeError("a bug somewhere in a venue answer")
            return await real_read(currency)

    app.ctx.tracker = FlakyTracker()  # type: ignore[attr-defined]
    with capture_logs() as logs:
        stats = await daemon.run(asyncio.Event(), until=NOW + timedelta(minutes=5))
    assert stats.by_status["failed"] == 1
    assert stats.cycles == 5
    assert any(e["event"] == "cycle_failed" for e in logs)


async def test_the_heartbeat_comes_at_its_own_interval_even_when_cycles_are_further_apart(
    tmp_path: Path,
) -> None:
    clock = FakeClock(NOW)
    app = stack(tmp_path, clock=clock, hedge={"target_delta": 0.3})
    daemon = Daemon(app.ctx, ("BTC",), 60.0, heartbeat_seconds=30, stop_grace_seconds=1)
    with capture_logs() as logs:
        await daemon.run(asyncio.Event(), until=NOW + timedelta(minutes=10))
    beats = [e for e in logs if e["event"] == "heartbeat"]
    assert len(beats) in (19, 20)  # every 30 s over 10 minutes, not once per 60 s cycle
    last = beats[-1]
    assert last["cycles_today"] == 10
    assert sum(last["by_status_today"].values()) == 10
    assert set(last) >= {"fees_today", "pnl_today", "day"}


class GraceNeverEnds(FakeClock):
    """Time that moves at once, except that a wait of an hour or more never ends."""

    async def sleep(self, seconds: float) -> None:
        if seconds >= 3600:
            await asyncio.Event().wait()
        await super().sleep(seconds)


async def test_a_stop_while_start_up_waits_out_an_unknown_orders_grace_ends_the_run_promptly(
    tmp_path: Path,
) -> None:
    clock = GraceNeverEnds(NOW)
    app = stack(tmp_path, clock=clock, execution={"unknown_grace_seconds": 3600})
    req = OrderRequest(
        label="hb-lost-1",
        instrument_name="BTC-PERPETUAL",
        side=Side.BUY,
        amount=500,
        order_type=OrderType.MARKET,
        time_in_force=TimeInForce.IOC,
    )
    app.ledger.record_order(req, cycle_id="lost", rebalance_id=None, decision_mid=None, ts=NOW)
    daemon = Daemon(app.ctx, ("BTC",), 60, heartbeat_seconds=600, stop_grace_seconds=1)
    stop = asyncio.Event()
    run = asyncio.create_task(daemon.run(stop))
    for _ in range(200):  # start-up reaches its wait; it never ends by itself
        await asyncio.sleep(0.01)
    assert not run.done()
    stop.set()
    try:
        stats = await asyncio.wait_for(run, 30)
    finally:
        run.cancel()
    assert stats.cycles == 0
    row = app.ledger.order("hb-lost-1")
    assert row is not None
    assert not row.status.terminal  # nothing concluded without the venue
