"""Following the simulated venue's clock in lockstep, from another process.

``hedgebot sim`` with ``market.clock: lockstep`` owns simulated time (see
``bot.sim.time_control`` for its two sim-only routes). This clock reads the venue's instant once
when it is built and, whenever its holder sleeps, asks the venue to advance to the instant the
sleep ends and takes the venue's answer as its own time. Between sleeps time stands still: a
cycle takes no simulated time, so a seed gives the same day however slow the machine is.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from bot.clock import pace_wait
from bot.venues.errors import TransientError

TIME_PATH = "/sim/v1/time"
ADVANCE_PATH = "/sim/v1/advance"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


class SimClockUnavailable(TransientError):
    """The simulated venue did not answer, or does not run on lockstep time."""


def _instant(reply: Any, url: str) -> datetime:
    if not isinstance(reply, dict) or not isinstance(reply.get("now_us"), int):
        raise SimClockUnavailable(f"{url} answered without a time: {str(reply)[:200]}")
    if reply.get("clock") != "lockstep":
        raise SimClockUnavailable(
            f"the simulated venue at {url} runs on the wall clock; start it with "
            "market.clock: lockstep, as this process has"
        )
    return _EPOCH + int(reply["now_us"]) * _US


class SimVenueClock:
    """The simulated venue's time; see the module docstring. Build with :meth:`connect`."""

    def __init__(self, base_url: str, now: datetime, *, pace: float | None, timeout: float) -> None:
        self._url = base_url.rstrip("/")
        self._now = now
        self._pace = pace
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def connect(
        cls, base_url: str, *, pace: float | None = None, timeout: float = 10.0
    ) -> SimVenueClock:
        """Read the venue's instant (a blocking call, made once while a command is wired)."""
        url = base_url.rstrip("/") + TIME_PATH
        try:
            with urllib.request.urlopen(url, timeout=timeout) as answer:
                reply = json.loads(answer.read())
        except (OSError, ValueError) as exc:
            raise SimClockUnavailable(
                f"the simulated venue does not answer at {base_url} ({exc}): is `hedgebot sim` "
                "running with these settings?"
            ) from exc
        return cls(base_url, _instant(reply, base_url), pace=pace, timeout=timeout)

    def now(self) -> datetime:
        return self._now

    async def sleep(self, seconds: float) -> None:
        target = self._now + timedelta(seconds=max(0.0, seconds))
        await pace_wait(seconds, self._pace)
        reply = await self._advance({"to_us": (target - _EPOCH) // _US})
        self._now = max(self._now, _instant(reply, self._url))

    async def _advance(self, body: dict[str, int]) -> Any:
        """POST the advance; a venue that is restarting is asked again for up to ``timeout``
        wall seconds (the only wall-time wait here: transport, not simulated time)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout)
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        backoff = 0.05
        while True:
            try:
                async with self._session.post(self._url + ADVANCE_PATH, json=body) as answer:
                    return await answer.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                if loop.time() + backoff > deadline:
                    raise SimClockUnavailable(
                        f"could not advance the simulated venue at {self._url}: {exc}"
                    ) from exc
                await asyncio.sleep(backoff)
                backoff = min(1.0, backoff * 2)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
