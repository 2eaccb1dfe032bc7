"""The stream's reconnect backoff doubles while sessions keep failing and starts over after a
session that stayed up: a venue that drops a healthy connection once a day must not leave the
daemon waiting the maximum backoff after each drop, and one that drops every connection as
soon as it is up must not be reconnected to twice a second. Fakes come in by constructor."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from bot.clock import SystemClock
from bot.venues.deribit.streams import DeribitStreams, StreamPlan

SILENCE_S = 3600.0
MIN_S, MAX_S = 1.0, 64.0
LIMIT_S = 30.0  # the test's own bound: generous, a busy machine must not fail it


class BackoffClock(SystemClock):
    """Wall time, except that a backoff wait is recorded and returns at once (the silence
    timer, which is not a backoff, waits as it should)."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.ahead = 0.0  # seconds a session's life has moved this clock past the wall

    def now(self) -> datetime:
        return super().now() + timedelta(seconds=self.ahead)

    async def sleep(self, seconds: float) -> None:
        if seconds == SILENCE_S:
            await asyncio.sleep(seconds)
        else:
            self.waits.append(seconds)
            await asyncio.sleep(0)


class DroppingClient:
    """A public stream client whose ticker watch fails, after one ticker when ``comes_up``
    and ``lasts`` seconds of ``clock`` time later."""

    apiKey = None  # noqa: N815 - ccxt's attribute name

    def __init__(self, comes_up: bool, clock: BackoffClock, lasts: float) -> None:
        self._comes_up = comes_up
        self._clock = clock
        self._lasts = lasts
        self.ticker_listeners: list[Any] = []
        self.order_listeners: list[Any] = []

    async def load_markets(self) -> None:
        return None

    def safe_symbol(self, name: str) -> str:
        return name

    async def watch_ticker(self, symbol: str, params: Any) -> None:
        if self._comes_up:
            for listener in self.ticker_listeners:
                listener({"instrument_name": symbol, "index_price": 90_000.0})
            self._clock.ahead += self._lasts
        raise ConnectionError("connection dropped")

    async def close(self) -> None:
        return None


async def backoffs(comes_up: bool, lasts: float = 0.0, sessions: int = 6) -> list[float]:
    clock = BackoffClock()
    plan = StreamPlan({"BTC-PERPETUAL": "BTC"}, False, SILENCE_S, MIN_S, MAX_S)
    stream = DeribitStreams(
        plan, lambda: DroppingClient(comes_up, clock, lasts), clock, np.random.default_rng(3)
    )
    stop = asyncio.Event()
    task = asyncio.create_task(stream.run(lambda currency, price: None, stop))

    async def enough() -> None:
        while len(clock.waits) < sessions:
            await asyncio.sleep(0.001)

    try:
        await asyncio.wait_for(enough(), LIMIT_S)
    finally:
        stop.set()
        await asyncio.wait_for(task, LIMIT_S)
    return clock.waits[:sessions]


async def test_sessions_that_keep_failing_wait_twice_as_long_each_time_up_to_the_maximum() -> None:
    waits = await backoffs(comes_up=False)
    for n, wait in enumerate(waits):
        base = min(MAX_S, MIN_S * 2**n)
        assert base / 2 <= wait <= base, (n, waits)


async def test_a_session_that_stayed_up_before_it_dropped_starts_the_backoff_over() -> None:
    waits = await backoffs(comes_up=True, lasts=MAX_S)
    assert all(MIN_S / 2 <= wait <= MIN_S for wait in waits), waits


async def test_sessions_that_drop_as_soon_as_they_come_up_still_wait_longer_each_time() -> None:
    waits = await backoffs(comes_up=True, lasts=0.0)
    for n, wait in enumerate(waits):
        base = min(MAX_S, MIN_S * 2**n)
        assert base / 2 <= wait <= base, (n, waits)
