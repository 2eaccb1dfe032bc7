"""The ccxt adapter against the simulated Deribit server on a bad day: lost replies, 503s and
rate-limit bursts over real HTTP on 127.0.0.1. What must hold: a placement whose reply is lost
is *unknown*, never retried, and the label look-up then tells the truth; reads ride out passing
failures within their bound."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from bot.clock import FakeClock
from bot.config import DEFAULT_FACTS, FeeSettings, MarketSettings, VenueSettings
from bot.domain import OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from bot.sim.faults import WireFaultPlan
from bot.sim.server import SimServer
from bot.venues.deribit.adapter import DeribitVenue, RetryPolicy
from bot.venues.errors import OutcomeUnknown, TransientError
from bot.venues.paper.market import SimMarket
from bot.venues.paper.state import MemoryPaperStore
from bot.venues.paper.venue import PaperVenue

START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
CURRENCY = "BTC"
PERP = "BTC-PERPETUAL"
KEY, SECRET = "fault-key", "fault-secret"
Served = tuple[DeribitVenue, SimServer, FakeClock]


@asynccontextmanager
async def served(plan: WireFaultPlan, timeout: float = 5.0) -> AsyncIterator[Served]:
    clock = FakeClock(START)
    market = SimMarket(MarketSettings(), (CURRENCY,), clock, DEFAULT_FACTS, start=START)
    engine = PaperVenue(market, MemoryPaperStore(), clock, DEFAULT_FACTS, FeeSettings())
    server = SimServer(market, engine, api_key=KEY, api_secret=SECRET, fault_plan=plan, clock=clock)
    port = await server.start(host="127.0.0.1", port=0)
    settings = VenueSettings(
        kind="deribit",
        network="custom",
        url=f"http://127.0.0.1:{port}",
        timeout_seconds=timeout,
        api_key=SecretStr(KEY),
        api_secret=SecretStr(SECRET),
    )
    venue = DeribitVenue(
        settings, clock, retry=RetryPolicy(attempts=4), rng=np.random.default_rng(3)
    )
    try:
        yield venue, server, clock
    finally:
        await venue.close()
        await server.stop()


def ioc_buy(label: str, price: float) -> OrderRequest:
    return OrderRequest(
        label=label,
        instrument_name=PERP,
        side=Side.BUY,
        amount=30,
        order_type=OrderType.LIMIT,
        price=price,
        time_in_force=TimeInForce.IOC,
    )


Plan = Callable[[], WireFaultPlan]


@pytest.mark.parametrize(
    "plan",
    [
        lambda: WireFaultPlan(accept_then_drop=(1,), drop_mode="close"),
        lambda: WireFaultPlan(accept_then_drop=(1,), drop_mode="hold", hold_seconds=5.0),
    ],
    ids=["connection-closed", "reply-held-past-timeout"],
)
async def test_lost_reply_after_accept_is_unknown_then_found_by_label_and_not_resent(
    plan: Plan,
) -> None:
    async with served(plan(), timeout=0.5) as (venue, _, _):
        quote = await venue.quote(PERP)
        with pytest.raises(OutcomeUnknown):
            await venue.place_order(ioc_buy("hb-lost-1", quote.ask))
        found = await venue.order_by_label(CURRENCY, "hb-lost-1")
        assert found is not None
        assert found.status is OrderStatus.FILLED
        fills = await venue.fills(CURRENCY)
        assert [f.label for f in fills] == ["hb-lost-1"]  # exactly one order reached the venue
        positions = [p for p in await venue.positions(CURRENCY) if p.instrument.name == PERP]
        assert [p.size for p in positions] == [30]


async def test_503_on_placement_is_unknown_and_the_look_up_finds_nothing() -> None:
    # requests: 1 ticker, 2 get_currencies, 3 get_instruments (ccxt's load_markets), 4 buy
    async with served(WireFaultPlan(error_5xx=(4,))) as (venue, _, _):
        quote = await venue.quote(PERP)
        with pytest.raises(OutcomeUnknown):
            await venue.place_order(ioc_buy("hb-503-1", quote.ask))
        assert await venue.order_by_label(CURRENCY, "hb-503-1") is None
        assert await venue.fills(CURRENCY) == []


async def test_reads_ride_out_a_503_and_a_rate_limit_burst() -> None:
    plan = WireFaultPlan(error_5xx=(1,), rate_limit_burst=(2,), rate_limit_burst_length=2)
    async with served(plan) as (venue, _, clock):
        with capture_logs() as logs:
            quote = await venue.quote(PERP)
        assert 0 < quote.bid < quote.ask
        retries = [e for e in logs if e["event"] == "venue_read_retry"]
        assert len(retries) == 3
        assert clock.now() - START >= timedelta(seconds=2)  # two 10028s: at least 1 s each


async def test_reads_give_up_after_their_bound_when_the_venue_stays_down() -> None:
    async with served(WireFaultPlan(error_5xx=1.0)) as (venue, _, _):
        with pytest.raises(TransientError):
            await venue.quote(PERP)
