"""``hedgebot sim``: run the simulated Deribit venue on 127.0.0.1 until SIGINT or SIGTERM.

It builds the simulated market from the settings (the same seed, path and listing as the
embedded paper venue), a paper venue on it with its own account (in SQL at ``database_url``, or
in memory), and serves both with :class:`~bot.sim.server.SimServer`. The API key and secret it
accepts come from ``HEDGEBOT_SIM_API_KEY`` / ``HEDGEBOT_SIM_API_SECRET``, or are the local pair
that ``venue.kind: sim`` clients use by default. ``venue.kind: sim`` finds it at
``venue.sim_url`` (default http://127.0.0.1:8642).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

from bot.clock import Clock, LockstepClock, OffsetClock, SystemClock, clock_for, day_start
from bot.config import SIM_API_KEY, SIM_API_SECRET, RateLimitSettings, Settings
from bot.sim.faults import ThinnableMarket, WireFaultPlan
from bot.sim.server import SimServer
from bot.venues.paper.market import SimMarket
from bot.venues.paper.state import MemoryPaperStore, PaperStateStore
from bot.venues.paper.timekeeping import lockstep_clock
from bot.venues.paper.venue import PaperVenue

KEY_ENV = "HEDGEBOT_SIM_API_KEY"
SECRET_ENV = "HEDGEBOT_SIM_API_SECRET"


@dataclass(frozen=True)
class Credentials:
    api_key: str
    api_secret: str
    generated: bool


def credentials(env: Mapping[str, str] | None = None) -> Credentials:
    """The key pair from the environment, or the simulated venue's local pair
    (``bot.config.SIM_API_KEY``), which is what ``venue.kind: sim`` clients use by default."""
    env = os.environ if env is None else env
    key, secret = env.get(KEY_ENV, ""), env.get(SECRET_ENV, "")
    if key and secret:
        return Credentials(key, secret, generated=False)
    return Credentials(SIM_API_KEY, SIM_API_SECRET, generated=False)


def _store(database_url: str | None) -> PaperStateStore:
    if database_url is None:
        return MemoryPaperStore()
    from bot.store.db import make_engine, upgrade
    from bot.store.paper import SqlPaperStore

    upgrade(database_url)
    return SqlPaperStore(make_engine(database_url))


def venue_clock(settings: Settings, store: PaperStateStore) -> tuple[Clock, datetime | None]:
    """The venue's clock and its market's start (None: the clock's day). ``market.clock:
    lockstep`` resumes the time saved in ``store``; ``wall`` reads the wall, times ``speed``."""
    if settings.market.clock == "lockstep":
        return lockstep_clock(store, settings.market, SystemClock())
    return clock_for(settings.market.speed, settings.market.clock_anchor), None


def build_server(
    settings: Settings,
    clock: Clock,
    *,
    api_key: str,
    api_secret: str,
    database_url: str | None = None,
    fault_plan: WireFaultPlan | None = None,
    rate_limits: RateLimitSettings | None = None,
    start: datetime | None = None,
    store: PaperStateStore | None = None,
) -> SimServer:
    """The market, a paper venue on it and the server around both (not started). A fault
    plan's ``clock_offset_s`` shifts the whole venue's clock away from ``clock``.

    On a :class:`LockstepClock` the fault plan's latency is simulated time: the one thing
    besides the client's advance that moves the venue's clock, on purpose."""
    venue_settings = settings.venue
    start = start or day_start(clock)
    if fault_plan is not None and fault_plan.clock_offset_s:
        clock = OffsetClock(clock, fault_plan.clock_offset_s)
    market = ThinnableMarket(
        SimMarket(
            settings.market,
            tuple(venue_settings.facts),  # a venue lists every currency, not just ours
            clock,
            venue_settings.facts,
            start=start,
        )
    )
    venue = PaperVenue(
        market,
        store if store is not None else _store(database_url),
        clock,
        venue_settings.facts,
        venue_settings.fees,
        name="sim",
        equity=settings.market.equity,
    )
    return SimServer(
        market,
        venue,
        api_key=api_key,
        api_secret=api_secret,
        clock=clock,
        fault_plan=fault_plan,
        fees=venue_settings.fees,
        rate_limits=rate_limits,
        sleeper=clock.sleep if isinstance(clock, LockstepClock) else asyncio.sleep,
        # Limits count in the market's time, as the client's buckets do: at an accelerated
        # speed both sides then agree on what "per second" means.
        timer=lambda: clock.now().timestamp(),
    )


async def serve(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    database_url: str | None = None,
    fault_plan: WireFaultPlan | None = None,
    clock: Clock | None = None,
    out: TextIO | None = None,
    stop: asyncio.Event | None = None,
    env: Mapping[str, str] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM (or ``stop`` is set), printing where and with which keys.

    ``env`` (default ``os.environ``) supplies HEDGEBOT_SIM_API_KEY/HEDGEBOT_SIM_API_SECRET.
    """
    out = out or sys.stdout
    store = _store(database_url)
    start = None
    if clock is None:
        clock, start = venue_clock(settings, store)
    creds = credentials(env)
    server = build_server(
        settings,
        clock,
        api_key=creds.api_key,
        api_secret=creds.api_secret,
        fault_plan=fault_plan,
        start=start,
        store=store,
    )
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    bound = await server.start(host, port)
    try:
        print(
            f"hedgebot sim: Deribit API on http://{host}:{bound} (ws://{host}:{bound}/ws/api/v2)",
            file=out,
        )
        source = (
            "local default"
            if not creds.generated and creds.api_key == SIM_API_KEY
            else (f"from {KEY_ENV}/{SECRET_ENV}")
        )
        kind = "lockstep" if isinstance(clock, LockstepClock) else "wall"
        print(f"clock: {kind}, now {clock.now().isoformat()}", file=out)
        print(f"api key: {creds.api_key}", file=out)
        print(f"api secret: {creds.api_secret} ({source})", file=out)
        out.flush()
        await stop.wait()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        await server.stop()
