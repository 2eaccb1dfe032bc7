"""The ``venue`` fixture every contract test runs against, once per adapter:

- ``paper``: :class:`bot.venues.paper.venue.PaperVenue` on a
:class:`bot.venues.paper.market.SimMarket`;
- ``deribit``: :class:`bot.venues.deribit.adapter.DeribitVenue` (ccxt) talking HTTP to the simulated
  Deribit server (:class:`bot.sim.server.SimServer`) started in the test's event loop on
  127.0.0.1, port 0, which itself keeps its account in a paper venue on the same market;
- ``live-paper``: :class:`bot.venues.deribit.live_market.LivePaperVenue`, a paper account filling
  on that server's public market data, read through a key-less public-only ccxt client.

Both run on one fake clock: the market stands still unless a test advances it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import numpy as np
import pytest
from pydantic import SecretStr

from bot.clock import FakeClock
from bot.config import DEFAULT_FACTS, FeeSettings, MarketSettings, VenueSettings
from bot.sim.server import SimServer
from bot.venues.base import Venue
from bot.venues.deribit.adapter import DeribitVenue, build_client
from bot.venues.deribit.live_market import LiveMarket, LivePaperVenue
from bot.venues.paper.market import SimMarket
from bot.venues.paper.state import MemoryPaperStore
from bot.venues.paper.venue import PaperVenue

START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
CURRENCY = "BTC"
KEY, SECRET = "contract-key", "contract-secret"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def market(clock: FakeClock) -> SimMarket:
    return SimMarket(MarketSettings(), (CURRENCY,), clock, DEFAULT_FACTS, start=START)


def _paper(market: SimMarket, clock: FakeClock, name: str) -> PaperVenue:
    return PaperVenue(market, MemoryPaperStore(), clock, DEFAULT_FACTS, FeeSettings(), name=name)


@pytest.fixture(params=["paper", "deribit", "live-paper"])
async def venue(
    request: pytest.FixtureRequest, market: SimMarket, clock: FakeClock
) -> AsyncIterator[Venue]:
    if request.param == "paper":
        paper = _paper(market, clock, "paper")
        yield paper
        await paper.close()
        return
    server = SimServer(
        market,
        _paper(market, clock, "sim"),
        api_key=KEY,
        api_secret=SECRET,
        fault_plan=None,
        clock=clock,
    )
    port = await server.start(host="127.0.0.1", port=0)
    settings = VenueSettings(
        kind="deribit",
        network="custom",
        url=f"http://127.0.0.1:{port}",
        timeout_seconds=5.0,
        api_key=SecretStr(KEY),
        api_secret=SecretStr(SECRET),
    )
    if request.param == "live-paper":
        live = _live_paper(settings, clock)
        try:
            yield live
        finally:
            await live.close()
            await server.stop()
        return
    deribit = DeribitVenue(settings, clock, rng=np.random.default_rng(11))
    try:
        yield deribit
    finally:
        await deribit.close()
        await server.stop()


def _live_paper(settings: VenueSettings, clock: FakeClock) -> LivePaperVenue:
    """Paper fills on the simulated server's public data, through a public-only client."""
    public = settings.model_copy(update={"api_key": None, "api_secret": None})
    facts = {CURRENCY: DEFAULT_FACTS[CURRENCY]}
    data = DeribitVenue(
        public, clock, client=build_client(public, public_only=True), rng=np.random.default_rng(11)
    )
    market = LiveMarket(
        data, facts, clock, equity=MarketSettings().equity, legs=MarketSettings().book
    )
    return LivePaperVenue(market, data, MemoryPaperStore(), clock, facts, FeeSettings())
