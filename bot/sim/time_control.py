"""The simulated venue's clock over HTTP, so a client can follow it in lockstep.

Not part of Deribit's API: two sim-only routes on the server's loopback port.

- ``GET /sim/v1/time`` answers ``{"clock": "lockstep" | "wall", "now_us": N}``;
- ``POST /sim/v1/advance`` with ``{"to_us": N}`` moves a lockstep clock to that instant (never
  back) and answers as ``GET`` does; on a wall clock it answers HTTP 409.

The daemon, about to sleep until its next tick, asks the venue to advance there: simulated time
moves only when the driver says so, and a cycle takes none.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from aiohttp import web

from bot.clock import Clock, LockstepClock

TIME_PATH = "/sim/v1/time"
ADVANCE_PATH = "/sim/v1/advance"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(instant: datetime) -> int:
    return (instant - _EPOCH) // timedelta(microseconds=1)


def from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


class TimeControl:
    """Serves ``clock``'s time, and moves it when it is a :class:`LockstepClock`."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    @property
    def lockstep(self) -> bool:
        return isinstance(self._clock, LockstepClock)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_route("GET", TIME_PATH, self._time)
        router.add_route("POST", ADVANCE_PATH, self._advance)

    def _answer(self) -> web.Response:
        body = {
            "clock": "lockstep" if self.lockstep else "wall",
            "now_us": to_us(self._clock.now()),
        }
        return web.json_response(body)

    async def _time(self, request: web.Request) -> web.Response:
        return self._answer()

    async def _advance(self, request: web.Request) -> web.Response:
        if not isinstance(self._clock, LockstepClock):
            return web.json_response(
                {"error": "this venue runs on the wall clock (market.clock: wall)"}, status=409
            )
        try:
            raw = json.loads(await request.text())
            target = raw["to_us"] if isinstance(raw, dict) else None
            if not isinstance(target, int) or isinstance(target, bool):
                raise ValueError("to_us must be an integer")
        except (ValueError, KeyError) as exc:
            return web.json_response({"error": f"bad advance request: {exc}"}, status=400)
        self._clock.advance_to(from_us(target))
        return self._answer()
