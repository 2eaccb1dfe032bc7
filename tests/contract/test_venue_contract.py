"""What every venue adapter promises the tracker and the executor (``bot.venues.base.Venue``).

Each test runs once per adapter (see ``conftest.py``). Amounts are in Deribit units: USD for
the perpetual (step 10), coin for options.
"""

from __future__ import annotations

import math
import uuid
from datetime import timedelta

import pytest

from bot.clock import FakeClock
from bot.domain import (
    InstrumentKind,
    Liquidity,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from bot.venues.base import Venue
from bot.venues.errors import OrderNotFound, OrderRejected

from .conftest import CURRENCY

PERP = "BTC-PERPETUAL"


def label(tag: str) -> str:
    return f"hb-contract-{tag}-{uuid.uuid4().hex[:8]}"


def limit(
    tag: str,
    side: Side,
    amount: float,
    price: float,
    *,
    post_only: bool = False,
    tif: TimeInForce = TimeInForce.GTC,
) -> OrderRequest:
    return OrderRequest(
        label=label(tag),
        instrument_name=PERP,
        side=side,
        amount=amount,
        order_type=OrderType.LIMIT,
        price=price,
        post_only=post_only,
        time_in_force=tif,
    )


async def test_venue_satisfies_the_protocol(venue: Venue) -> None:
    assert isinstance(venue, Venue)
    assert venue.name


async def test_instruments_list_the_perpetual_and_options_with_their_steps(venue: Venue) -> None:
    instruments = {i.name: i for i in await venue.instruments(CURRENCY)}
    perp = instruments[PERP]
    assert perp.kind is InstrumentKind.PERPETUAL
    assert (perp.min_amount, perp.amount_step, perp.tick_size) == (10, 10, 0.5)
    options = [i for i in instruments.values() if i.is_option]
    assert options
    assert all(o.expiry is not None and o.expiry.hour == 8 for o in options)
    assert all(o.strike and o.option_type for o in options)


async def test_positions_hold_the_starting_option_book_in_coin(venue: Venue) -> None:
    positions = await venue.positions(CURRENCY)
    assert positions, "the simulated account starts with a short straddle and strangle"
    assert all(p.instrument.is_option for p in positions)
    assert all(p.size != 0 and math.isfinite(p.size) for p in positions)
    assert sum(p.size for p in positions) < 0


async def test_a_perpetual_fill_shows_as_a_usd_position(venue: Venue) -> None:
    quote = await venue.quote(PERP)
    await venue.place_order(limit("pos", Side.BUY, 50, quote.ask, tif=TimeInForce.IOC))
    perp = [p for p in await venue.positions(CURRENCY) if p.instrument.name == PERP]
    assert [p.size for p in perp] == [50]
    assert perp[0].average_price == pytest.approx(quote.ask)


async def test_account_reports_equity_balance_and_delta_total(venue: Venue) -> None:
    account = await venue.account(CURRENCY)
    assert account.currency == CURRENCY
    assert account.equity > 0
    assert math.isfinite(account.balance)
    assert 0 <= account.available <= account.equity * (1 + 1e-9)
    assert account.delta_total is not None
    assert math.isfinite(account.delta_total)


async def test_marks_cover_every_listed_option_in_one_read(venue: Venue) -> None:
    listed = {i.name for i in await venue.instruments(CURRENCY) if i.is_option}
    marks = {m.instrument_name: m for m in await venue.marks(CURRENCY)}
    assert listed <= set(marks)
    options = [marks[name] for name in listed]
    assert all(m.mark_iv is not None and 0.01 < m.mark_iv < 5 for m in options)  # decimal
    assert all(m.underlying_price > 0 and m.index_price > 0 for m in options)
    assert all(0 < m.mark_price < 1 for m in options)  # coin per option, inverse
    assert marks[PERP].mark_price > 1000  # USD


async def test_quote_has_a_positive_two_sided_top_of_book(venue: Venue) -> None:
    quote = await venue.quote(PERP)
    assert 0 < quote.bid < quote.ask
    assert quote.bid_size > 0
    assert quote.ask_size > 0
    assert quote.mark > 0
    assert quote.index_price > 0
    assert quote.ask - quote.bid < 0.01 * quote.mark


async def test_limit_ioc_at_the_touch_fills_completely(venue: Venue) -> None:
    quote = await venue.quote(PERP)
    request = limit("ioc", Side.BUY, 100, quote.ask, tif=TimeInForce.IOC)
    state = await venue.place_order(request)
    assert state.status is OrderStatus.FILLED
    assert state.filled_amount == 100
    assert state.label == request.label
    assert state.average_price == pytest.approx(quote.ask)


async def test_post_only_at_the_touch_rests_and_is_listed_open(venue: Venue) -> None:
    quote = await venue.quote(PERP)
    state = await venue.place_order(limit("rest", Side.BUY, 20, quote.bid, post_only=True))
    assert state.status is OrderStatus.OPEN
    assert state.filled_amount == 0
    assert state.post_only
    open_ids = {o.venue_order_id for o in await venue.open_orders(CURRENCY)}
    assert state.venue_order_id in open_ids


async def test_post_only_crossing_the_spread_is_rejected(venue: Venue) -> None:
    quote = await venue.quote(PERP)
    with pytest.raises(OrderRejected):
        await venue.place_order(limit("cross", Side.BUY, 20, quote.ask, post_only=True))
    assert await venue.open_orders(CURRENCY) == []


async def test_cancel_closes_a_resting_order(venue: Venue) -> None:
    quote = await venue.quote(PERP)
    state = await venue.place_order(limit("cancel", Side.SELL, 20, quote.ask, post_only=True))
    cancelled = await venue.cancel_order(state.venue_order_id)
    assert cancelled.venue_order_id == state.venue_order_id
    assert cancelled.status is OrderStatus.CANCELLED
    assert await venue.open_orders(CURRENCY) == []


async def test_cancel_of_a_filled_or_unknown_order_is_not_found(venue: Venue) -> None:
    quote = await venue.quote(PERP)
    filled = await venue.place_order(limit("gone", Side.BUY, 10, quote.ask, tif=TimeInForce.IOC))
    with pytest.raises(OrderNotFound):
        await venue.cancel_order(filled.venue_order_id)
    with pytest.raises(OrderNotFound):
        await venue.cancel_order("no-such-order-123")


async def test_order_by_label_finds_ours_and_none_for_an_unknown_label(venue: Venue) -> None:
    quote = await venue.quote(PERP)
    request = limit("find", Side.BUY, 20, quote.bid, post_only=True)
    placed = await venue.place_order(request)
    found = await venue.order_by_label(CURRENCY, request.label)
    assert found is not None
    assert found.venue_order_id == placed.venue_order_id
    assert found.status is OrderStatus.OPEN
    assert await venue.order_by_label(CURRENCY, label("never-sent")) is None


async def test_order_by_id_finds_ours_in_its_terminal_state_and_none_for_an_unknown_id(
    venue: Venue,
) -> None:
    quote = await venue.quote(PERP)
    request = limit("byid", Side.SELL, 30, quote.bid, tif=TimeInForce.IOC)
    placed = await venue.place_order(request)
    found = await venue.order_by_id(CURRENCY, placed.venue_order_id)
    assert found is not None
    assert found.label == request.label
    assert found.status is OrderStatus.FILLED
    assert found.filled_amount == 30
    assert await venue.order_by_id(CURRENCY, "no-such-order-123") is None


async def test_order_by_label_sees_the_terminal_state(venue: Venue) -> None:
    quote = await venue.quote(PERP)
    request = limit("term", Side.SELL, 30, quote.bid, tif=TimeInForce.IOC)
    await venue.place_order(request)
    found = await venue.order_by_label(CURRENCY, request.label)
    assert found is not None
    assert found.status is OrderStatus.FILLED
    assert found.filled_amount == 30


async def test_fills_carry_label_fee_and_liquidity_and_since_filters(
    venue: Venue, clock: FakeClock
) -> None:
    quote = await venue.quote(PERP)
    first = limit("fill1", Side.BUY, 40, quote.ask, tif=TimeInForce.IOC)
    await venue.place_order(first)
    clock.advance(5)
    between = clock.now()
    clock.advance(5)
    quote = await venue.quote(PERP)
    second = limit("fill2", Side.SELL, 20, quote.bid, tif=TimeInForce.IOC)
    await venue.place_order(second)

    fills = [f for f in await venue.fills(CURRENCY) if f.instrument_name == PERP]
    assert [f.label for f in fills] == [first.label, second.label]  # oldest first
    assert all(f.fee > 0 and f.fee_currency == CURRENCY for f in fills)  # taker fee, coin
    assert all(f.liquidity is Liquidity.TAKER for f in fills)
    assert [(f.side, f.amount) for f in fills] == [(Side.BUY, 40), (Side.SELL, 20)]
    assert len({f.trade_id for f in fills}) == 2

    later = await venue.fills(CURRENCY, since=between)
    assert [f.label for f in later] == [second.label]
    assert await venue.fills(CURRENCY, since=clock.now() + timedelta(seconds=1)) == []


@pytest.mark.parametrize("amount", [25, 5, 0.5])
async def test_amount_off_the_step_or_below_the_minimum_is_rejected(
    venue: Venue, amount: float
) -> None:
    quote = await venue.quote(PERP)
    request = limit("bad", Side.BUY, amount, quote.bid, post_only=True)
    with pytest.raises(OrderRejected):
        await venue.place_order(request)
    assert await venue.order_by_label(CURRENCY, request.label) is None
    assert await venue.open_orders(CURRENCY) == []
