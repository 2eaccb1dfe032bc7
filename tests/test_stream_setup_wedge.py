"""A stream session whose venue accepts the connection and then never answers (auth, the
cancel-on-disconnect request, the markets) is given up after the silence limit and opened
again, and a stop during that wait ends the stream at once. Fakes come in by constructor."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from bot.clock import SystemClock
from bot.venues.deribit.streams import DeribitStreams, StreamPlan

LIMIT_S = 30.0  # the test's own bound: generous, a busy machine must not fail it


class NeverAnswers:
    """A stream client connected to a venue that never replies to anything."""

    apiKey = "key"  # noqa: N815 - ccxt's attribute name

    def __init__(self, stuck_on: str) -> None:
        self._stuck_on = stuck_on
        self.ticker_listeners: list[Any] = []
        self.order_listeners: list[Any] = []
        self.closed = False

    async def _maybe_stuck(self, step: str) -> None:
        if step == self._stuck_on:
            await asyncio.Event().wait()

    async def authenticate(self) -> None:
        await self._maybe_stuck("auth")

    async def call(self, method: str, params: Any) -> str:
        await self._maybe_stuck("cod")
        return "ok"

    async def load_markets(self) -> None:
        await self._maybe_stuck("markets")

    async def close(self) -> None:
        self.closed = True


def streams(stuck_on: str, made: list[NeverAnswers], silence: float = 0.2) -> DeribitStreams:
    plan = StreamPlan({"BTC-PERPETUAL": "BTC"}, True, silence, 0.01, 0.02)

    def factory() -> NeverAnswers:
        made.append(NeverAnswers(stuck_on))
        return made[-1]

    return DeribitStreams(plan, factory, SystemClock(), np.random.default_rng(1))


async def _until(done: Any) -> None:
    async def poll() -> None:
        while not done():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), LIMIT_S)


async def test_a_venue_that_never_answers_the_stream_setup_gets_the_session_renewed() -> None:
    for step in ("auth", "cod", "markets"):
        made: list[NeverAnswers] = []
        stream = streams(step, made)
        stop = asyncio.Event()
        task = asyncio.create_task(stream.run(lambda c, p: None, stop))
        try:
            await _until(lambda s=stream: s.sessions >= 3)
        finally:
            stop.set()
            await asyncio.wait_for(task, LIMIT_S)
        assert stream.drops >= 2, step
        assert all(c.closed for c in made[:-1]), step
        assert not stream.connected.is_set()


async def test_a_stop_while_the_stream_setup_hangs_ends_the_stream_promptly() -> None:
    made: list[NeverAnswers] = []
    stream = streams("auth", made, silence=3600.0)
    stop = asyncio.Event()
    task = asyncio.create_task(stream.run(lambda c, p: None, stop))
    await _until(lambda: len(made) == 1)
    stop.set()
    await asyncio.wait_for(task, LIMIT_S)
    assert made[0].closed
