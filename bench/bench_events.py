"""From a price move at the venue to the hedge order arriving there (issue 13: ≤ 50 ms p99).

``hedgebot sim`` runs as its own process on 127.0.0.1 with lockstep time that only this
benchmark moves; the daemon runs here, as ``hedgebot run`` wires it (REST and WebSocket through
ccxt, events on), on a clock pinned to the venue's time (:mod:`bench.event_kit`). Each move asks
the venue to step its market :data:`STEP_S` simulated seconds on; the venue publishes the
changed ticker on its push cadence. The latency is the venue's own record
(``GET /sim/v1/stamps``, one monotonic timer in the venue's process, :mod:`bot.sim.stamps`):
the instant its first order request after the move arrived minus the instant it published the
move. The band is narrow, so a move usually asks for a trade; a move that led to no order
(judged quiet, or a cycle that did not trade) is left out and counted. The run stops after
:data:`MOVES` measured moves or :data:`BUDGET_S` seconds.

Where the time goes (the phases of an event cycle, timed around the venue calls): the trigger
answers within a millisecond of the push, but the cycle then reads the venue afresh, as every
cycle must: positions, account, the hedge's ticker and the held instruments' marks together
(one ``public/ticker`` each for a small book; before, two book-summary reads of the whole
listing, parsed in full, took most of the cycle and slowed the reads beside them).

Baseline: the schedule alone, which sees a move on average half a check interval later (the
default ``policy.check_seconds``), before its cycle even starts.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from bench.common import Row
from bench.event_kit import (
    KEY,
    SECRET,
    START,
    FollowClock,
    PinnedTime,
    daemon_for,
    event_settings,
    wait_for,
    with_keys,
)
from bot.app import build_app, build_events
from bot.config import PolicySettings
from bot.events import Verdict
from bot.logs import configure_logging
from bot.sim.time_control import to_us
from bot.store.db import upgrade

MOVES = 200
BUDGET_S = 90.0
STEP_S = 60.0  # the simulated market path's resolution (market.step_seconds)
ORDER_WAIT_S = 20.0
SETTLE_S = 0.15  # above the venue's push cadence (0.1 s)
TARGET_P99_MS = 50.0
PERPETUAL = "BTC-PERPETUAL"


@contextmanager
def sim_process(home: Path) -> Iterator[str]:
    """``hedgebot sim`` on lockstep time from the kit's start; yields its URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEDGEBOT")}
    env.update(
        {
            "HEDGEBOT_SIM_API_KEY": KEY,
            "HEDGEBOT_SIM_API_SECRET": SECRET,
            "HEDGEBOT__MARKET__CLOCK": "lockstep",
            "HEDGEBOT__MARKET__START": START.isoformat(),
            "HEDGEBOT__LOGGING__FORMAT": "json",
            "HEDGEBOT__LOGGING__LEVEL": "warning",
        }
    )
    command = [sys.executable, "-m", "bot.cli.main", "--config", os.devnull]
    proc = subprocess.Popen(
        [*command, "sim", "--port", "0", "--db", ""],
        env=env,
        cwd=home,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = 0
        deadline = time.monotonic() + 60
        while not port and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if "Deribit API on http://127.0.0.1:" in line:
                port = int(line.split("http://127.0.0.1:")[1].split()[0])
        if not port:
            raise RuntimeError("hedgebot sim did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def measure(home: Path, url: str) -> tuple[list[float], int]:
    """Latencies in ms of the measured moves, and the number of moves without an order."""
    settings = with_keys(
        event_settings(
            home,
            url,
            policy={"delta_band": {"band": 0.005}},
            risk={"max_clock_ahead_seconds": 60, "max_orders_per_minute": 1000},
        )
    )
    upgrade(settings.database.url)
    pinned = PinnedTime(START)
    app = build_app(settings, paper=False, clock=FollowClock(pinned))
    events = build_events(app)
    assert events is not None
    trigger = events.trigger
    assert trigger is not None
    daemon = daemon_for(app, events)
    latencies: list[float] = []
    missed = 0
    stop = asyncio.Event()
    running = asyncio.create_task(daemon.run(stop))
    try:
        async with aiohttp.ClientSession() as http:

            async def stamps(since: int) -> Any:
                async with http.get(f"{url}/sim/v1/stamps", params={"since": since}) as r:
                    return await r.json()

            connected = getattr(events.stream, "connected", None)
            await wait_for(
                lambda: daemon.stats.cycles >= 1 and (connected is None or connected.is_set()),
                60.0,
                "the first cycle and the stream",
            )
            t0 = time.perf_counter()
            while len(latencies) < MOVES and time.perf_counter() - t0 < BUDGET_S:
                seen = (await stamps(0))["received"]
                cycles = daemon.stats.cycles
                judged = sum(trigger.counts.values())
                fired = trigger.counts[Verdict.FIRE]
                target = pinned.instant + timedelta(seconds=STEP_S)
                async with http.post(f"{url}/sim/v1/advance", json={"to_us": to_us(target)}) as r:
                    r.raise_for_status()
                pinned.instant = target

                def settled(c: int = cycles, j: int = judged, f: int = fired) -> bool:
                    if trigger.counts[Verdict.FIRE] > f:
                        return daemon.stats.cycles > c  # its cycle is done
                    return sum(trigger.counts.values()) > j  # judged, not worth a cycle

                await wait_for(settled, ORDER_WAIT_S, "the move judged and its cycle done")
                # pushes that follow a trade (the book after our fill) land before the next move
                await asyncio.sleep(SETTLE_S)
                after = await stamps(seen)
                published = after["published"].get(PERPETUAL)
                if not after["orders"] or published is None:
                    missed += 1
                    continue
                latencies.append((after["orders"][0][0] - published) * 1000.0)
    finally:
        stop.set()
        await running
        await app.close()
        app.ledger.close()
    return latencies, missed


def run() -> list[Row]:
    # The ledger on tmpfs when there is one: the row measures the path to the venue, not this
    # machine's fsync (a shared VM disk takes 5-10 ms a commit; a cycle commits before it sends).
    shm = "/dev/shm" if Path("/dev/shm").is_dir() else None
    with open(os.devnull, "w") as sink, tempfile.TemporaryDirectory(dir=shm) as tmp:
        configure_logging("json", "warning", stream=sink)
        with sim_process(Path(tmp)) as url:
            latencies, missed = asyncio.run(measure(Path(tmp), url))
    if not latencies:
        raise RuntimeError("no move led to an order")
    p50, p99 = (float(np.percentile(latencies, q)) for q in (50, 99))
    print(
        f"bench_events: {len(latencies)} moves measured, {missed} without an order; "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(latencies):.1f} ms",
        file=sys.stderr,
    )
    schedule_ms = PolicySettings().check_seconds / 2 * 1000.0
    baseline = f"schedule only: check_seconds/2 = {schedule_ms / 1000:g} s"
    n = len(latencies)
    name = f"price move -> hedge order at the venue ({n} moves, loopback, hedgebot sim)"
    return [
        Row(f"{name}, p50", p50, "ms", baseline, schedule_ms, higher_is_better=False),
        Row(
            f"{name}, p99 (target {TARGET_P99_MS:g} ms)",
            p99,
            "ms",
            baseline,
            schedule_ms,
            higher_is_better=False,
            target=schedule_ms / TARGET_P99_MS,
        ),
    ]
