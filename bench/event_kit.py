"""The daemon with event-driven cycles against the simulated venue, both in this process.

The venue runs on a :class:`~bot.clock.LockstepClock` that only the driver moves: a price move
is ``move(seconds)`` (the market's path steps on) followed by an immediate publish of the
changed tickers. The daemon's clock reads the venue's time and its sleeps wait a little wall
time without moving it (:class:`FollowClock`), so its schedule never fires unless the driver
moves time past a tick: what happens between is the event trigger's doing. The daemon talks to
the venue as it would to ``hedgebot sim``: REST and WebSocket over 127.0.0.1 through ccxt.

Used by the event benchmark (``bench/bench_events.py``) and the event tests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from bot.app import App, build_app, build_events
from bot.clock import LockstepClock
from bot.config import Settings, load_settings
from bot.daemon import Daemon, Events, PriceStream
from bot.events import EventTrigger
from bot.sim.serve import build_server
from bot.sim.server import SimServer
from bot.store.db import upgrade

START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
StreamMaker = Callable[[Settings], PriceStream]
KEY, SECRET = "event-kit-key", "event-kit-secret"


class Instant(Protocol):
    def now(self) -> datetime: ...


class FollowClock:
    """``source``'s time (the venue's); a sleep waits at most ``nap`` wall seconds and moves
    nothing, so only whoever moves the venue's time moves this clock."""

    def __init__(self, source: Instant, nap: float = 0.005) -> None:
        self._source = source
        self._nap = nap

    def now(self) -> datetime:
        return self._source.now()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(min(max(seconds, 0.0), self._nap))


class PinnedTime:
    """An instant the driver sets: the time of a venue in another process, as last moved."""

    def __init__(self, instant: datetime) -> None:
        self.instant = instant

    def now(self) -> datetime:
        return self.instant


def event_settings(directory: Path, sim_url: str, **changes: Any) -> Settings:
    """Settings for a daemon on the simulated venue with events on; ``changes`` per section."""
    sections: dict[str, Any] = {
        "venue": {"kind": "sim", "sim_url": sim_url},
        "market": {"start": START.isoformat()},
        "database": {"url": f"sqlite:///{directory}/live.db"},
        "execution": {"post_only": False},  # IOC: an order's outcome needs no time to pass
        "policy": {"check_seconds": 3600},
        "daemon": {
            "heartbeat_seconds": 3600,
            "events": {
                "enabled": True,
                "min_gap_seconds": 0.01,
                "max_per_minute": 600,
                "silence_seconds": 3600,
                "reconnect_min_seconds": 0.05,
                "reconnect_max_seconds": 0.2,
            },
        },
    }
    for section, values in changes.items():
        merged = dict(sections.get(section, {}))
        for key, value in values.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
        sections[section] = merged
    return load_settings(None, **sections)


@dataclass
class EventRig:
    """The venue, the daemon's app and the daemon (not yet running)."""

    server: SimServer
    venue_clock: LockstepClock
    app: App
    daemon: Daemon
    events: Events

    async def move(self, seconds: float) -> float:
        """Let the market step ``seconds`` on and publish at once; the new BTC index."""
        self.venue_clock.advance(seconds)
        await self.server.hub.publish_once()
        return float(self.server.market.index("BTC"))

    def orders_sent(self) -> int:
        return self.server.stamps.received

    async def open_labels(self) -> list[str]:
        """Our open orders as the venue lists them over REST."""
        return [o.label for o in await self.app.venue.open_orders("BTC")]


@contextlib.asynccontextmanager
async def event_rig(
    directory: Path, *, stream: StreamMaker | None = None, **changes: Any
) -> AsyncIterator[EventRig]:
    """A started venue on 127.0.0.1 and a daemon wired to it; ``stream(settings)`` replaces
    the stream the settings build (a test's faulty one); both torn down on exit."""
    venue_clock = LockstepClock(START)
    probe = load_settings(None, market={"start": START.isoformat()})
    server = build_server(probe, venue_clock, api_key=KEY, api_secret=SECRET, start=START)
    port = await server.start("127.0.0.1", 0)
    try:
        settings = event_settings(directory, f"http://127.0.0.1:{port}", **changes)
        settings = with_keys(settings)
        upgrade(settings.database.url)
        app = build_app(settings, paper=False, clock=FollowClock(venue_clock))
        try:
            if stream is not None:
                wanted = settings.daemon.events
                trigger = EventTrigger(wanted, app.clock) if wanted.enabled else None
                wired: Events | None = Events(trigger, stream(settings))
            else:
                wired = build_events(app)
            assert wired is not None
            yield EventRig(server, venue_clock, app, daemon_for(app, wired), wired)
        finally:
            await app.close()
            app.ledger.close()
    finally:
        await server.stop()


def daemon_for(app: App, events: Events) -> Daemon:
    """The daemon ``hedgebot run`` builds, without the sentry (no lease in a benchmark)."""
    s = app.settings
    return Daemon(
        app.ctx,
        s.venue.currencies,
        s.policy.check_seconds,
        s.daemon.heartbeat_seconds,
        s.daemon.stop_grace_seconds,
        events=events,
    )


def with_keys(settings: Settings) -> Settings:
    """``settings`` with the kit's venue keys (what the simulated venue is started with)."""
    return settings.model_copy(update={"venue": _with_keys(settings)})


def _with_keys(settings: Settings) -> Any:
    from pydantic import SecretStr

    return settings.venue.model_copy(
        update={"api_key": SecretStr(KEY), "api_secret": SecretStr(SECRET)}
    )


async def wait_for(condition: Any, timeout: float = 20.0, what: str = "condition") -> None:
    """Poll ``condition()`` (a plain or async callable) every 5 ms of wall time; raise after
    ``timeout`` wall seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        met = condition()
        if asyncio.iscoroutine(met):
            met = await met
        if met:
            return
        if loop.time() > deadline:
            raise TimeoutError(f"{what} not met within {timeout} s")
        await asyncio.sleep(0.005)


def seconds_between(a: datetime, b: datetime) -> float:
    return (b - a) / timedelta(seconds=1)
