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

from structlog.testing import capture_logs

from bot.clock import FakeClock
from bot.daemon import Daemon
from bot.store.db import open_ledger
from tests.support.books import NOW
from tests.support.harness import stack

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
    assert events[0] == "reconciled"
    assert events.count("heartbeat") == 6  # at minutes 10, 20, 30, 40, 50 and 60


class WallSleepClock(FakeClock):
    """Time stands still but sleeping takes real time: a long sleep must be interruptible."""

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


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
        "HEDGEBOT__DAEMON__LOCK_DIR": str(tmp_path),
        "HEDGEBOT__POLICY__CHECK_SECONDS": "0.2",
        "HEDGEBOT__LOGGING__FORMAT": "json",
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
    assert events[-1] == "daemon_stopped"


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
