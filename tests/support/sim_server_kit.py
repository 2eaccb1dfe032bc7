"""Shared pieces of the simulated Deribit server's tests: a server on 127.0.0.1 in the test's event
loop, the real ccxt client pointed at it, signed raw requests, and the recorded Deribit messages."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import ccxt.async_support as ccxt

from bot.backtest.datafiles import DERIBIT
from bot.clock import Clock, FakeClock, OffsetClock
from bot.config import DEFAULT_FACTS, FeeSettings, MarketSettings, RateLimitSettings
from bot.sim.auth import signature
from bot.sim.faults import ThinnableMarket, WireFaultPlan
from bot.sim.server import SimServer
from bot.venues.paper.market import SimMarket
from bot.venues.paper.state import MemoryPaperStore
from bot.venues.paper.venue import PaperVenue

KEY, SECRET = "sim-test-key", "sim-test-secret"
START = datetime(2026, 1, 5, tzinfo=UTC)
NOW = START + timedelta(hours=12)
PERP = "BTC-PERPETUAL"
PERP_SYMBOL = "BTC/USD:BTC"


def shared_data() -> Path:
    """shared/data/deribit beside the work tree (see bot.backtest.datafiles)."""
    return DERIBIT


def real_message(module: str, fn: str) -> dict[str, Any]:
    """One recorded Deribit message (see shared/data/README.md)."""
    for line in (shared_data() / "raw_api_messages_2022.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["test_module"] == module and row["test_fn"] == fn:
            message: dict[str, Any] = row["message"]
            return message
    raise KeyError((module, fn))


@dataclass
class Sim:
    server: SimServer
    clock: FakeClock
    market: ThinnableMarket
    venue: PaperVenue
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@asynccontextmanager
async def running(
    *,
    fault_plan: WireFaultPlan | None = None,
    rate_limits: RateLimitSettings | None = None,
    currencies: tuple[str, ...] = ("BTC",),
    timer: Callable[[], float] = time.monotonic,
    sleeper: Callable[[float], Awaitable[None]] | None = None,
) -> AsyncIterator[Sim]:
    """A server on 127.0.0.1, port 0, over a fresh paper account on a market at ``NOW``.

    ``Sim.clock`` is the test's (the host's) clock; a fault plan's ``clock_offset_s`` puts the
    venue's own clock that far from it, as ``hedgebot sim`` does."""
    clock = FakeClock(NOW)
    offset = fault_plan.clock_offset_s if fault_plan is not None else 0.0
    venue_clock: Clock = OffsetClock(clock, offset) if offset else clock
    market = ThinnableMarket(
        SimMarket(MarketSettings(), currencies, venue_clock, DEFAULT_FACTS, start=START)
    )
    venue = PaperVenue(
        market, MemoryPaperStore(), venue_clock, DEFAULT_FACTS, FeeSettings(), name="sim"
    )
    extra: dict[str, Any] = {"sleeper": sleeper} if sleeper is not None else {}
    server = SimServer(
        market,
        venue,
        api_key=KEY,
        api_secret=SECRET,
        clock=venue_clock,
        fault_plan=fault_plan,
        rate_limits=rate_limits,
        timer=timer,
        push_interval_s=0.02,
        **extra,
    )
    port = await server.start("127.0.0.1", 0)
    try:
        yield Sim(server, clock, market, venue, port)
    finally:
        await server.stop()


@asynccontextmanager
async def ccxt_client(
    sim: Sim, *, timeout_ms: int = 5000, secret: str = SECRET
) -> AsyncIterator[Any]:
    """ccxt's real async Deribit client, pointed at the server."""
    ex = ccxt.deribit(
        {"apiKey": KEY, "secret": secret, "timeout": timeout_ms, "enableRateLimit": False}
    )
    ex.set_sandbox_mode(True)
    ex.urls["api"] = {"rest": sim.url}
    try:
        yield ex
    finally:
        await ex.close()


async def raw_get(
    sim: Sim | str,
    method: str,
    params: dict[str, Any] | None = None,
    *,
    key: str = KEY,
    secret: str | None = SECRET,
    header: str | None = None,
) -> tuple[int, dict[str, Any]]:
    """GET ``/api/v2/{method}``; private methods signed as Deribit defines it."""
    uri = f"/api/v2/{method}"
    if params:
        uri += "?" + urlencode(params)
    headers = {}
    if header is not None:
        headers["Authorization"] = header
    elif method.startswith("private/") and secret is not None:
        ts, nonce = "1767614400000", "abc123"
        sig = signature(secret, ts, nonce, "GET", uri)
        headers["Authorization"] = f"deri-hmac-sha256 id={key},ts={ts},sig={sig},nonce={nonce}"
    base = sim if isinstance(sim, str) else sim.url
    async with (
        aiohttp.ClientSession() as session,
        session.get(base + uri, headers=headers) as response,
    ):
        text = await response.text()
        try:
            body: dict[str, Any] = json.loads(text)
        except ValueError:
            body = {"text": text}
        return response.status, body
