"""The paper venue: fills, fees, balances, persistence across restarts, settlement, faults."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest

from bot.clock import FakeClock
from bot.config import DEFAULT_FACTS, FeeSettings, MarketSettings
from bot.domain import (
    DataError,
    Instrument,
    Mark,
    OptionType,
    OrderRequest,
    OrderStatus,
    OrderType,
    Quote,
    Side,
    TimeInForce,
)
from bot.venues.base import Venue
from bot.venues.errors import (
    OrderNotFound,
    OrderRejected,
    OutcomeUnknown,
    RateLimited,
    TransientError,
)
from bot.venues.paper.market import SimMarket
from bot.venues.paper.matching import INVALID_AMOUNT, POST_ONLY_REJECT, Level
from bot.venues.paper.state import MemoryPaperStore, PaperChange, PaperPosition
from bot.venues.paper.venue import PaperFaultPlan, PaperVenue
from tests.support.books import PERP, option

START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
FEES = FeeSettings()
CALL = option(50_000, OptionType.CALL, days=30)  # BTC-4FEB26-50000-C


class FakeMarket:
    """A market whose prices the test sets by hand."""

    currencies = ("BTC",)

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.index_price = 50_000.0
        self.perp_mark = 50_000.0
        self.call_mark = 0.05
        self.call_iv = 0.6
        self.settlement = 55_000.0
        self.book: list[tuple[Instrument, float]] = []
        self.books: dict[str, tuple[list[Level], list[Level]]] = {
            PERP.name: (
                [(49_990.0, 1000.0), (49_980.0, 1000.0)],
                [(50_000.0, 1000.0), (50_010.0, 1000.0)],
            ),
            CALL.name: ([(0.0495, 5.0)], [(0.0505, 5.0)]),
        }

    def _live(self) -> list[Instrument]:
        return [i for i in (PERP, CALL) if i.expiry is None or i.expiry > self.clock.now()]

    def now(self) -> datetime:
        return self.clock.now()

    def index(self, currency: str) -> float:
        return self.index_price

    def instruments(self, currency: str) -> list[Instrument]:
        return self._live()

    def instrument(self, name: str) -> Instrument:
        for instrument in (PERP, CALL):
            if instrument.name == name:
                return instrument
        raise DataError(f"unknown {name}")

    def marks(self, currency: str) -> list[Mark]:
        now = self.clock.now()
        out = [Mark(PERP.name, self.perp_mark, self.index_price, self.index_price, now)]
        if CALL in self._live():
            out.append(
                Mark(
                    CALL.name, self.call_mark, self.index_price, self.index_price, now, self.call_iv
                )
            )
        return out

    def quote(self, name: str) -> Quote:
        bids, asks = self.order_book(name)
        return Quote(name, bids[0][0], asks[0][0], self.perp_mark, self.index_price, self.now())

    def order_book(self, name: str) -> tuple[list[Level], list[Level]]:
        if self.instrument(name) not in self._live():
            raise DataError(f"{name} expired")
        return self.books[name]

    def settlement_price(self, currency: str, expiry: datetime) -> float:
        if expiry > self.clock.now():
            raise DataError("not expired")
        return self.settlement

    def starting_equity(self, currency: str) -> float:
        return 7.0

    def starting_book(self, currency: str) -> list[tuple[Instrument, float]]:
        return self.book


def venue_on(
    market: object, store: MemoryPaperStore, clock: FakeClock, **kwargs: object
) -> PaperVenue:
    kwargs.setdefault("equity", {"BTC": 1.0})
    return PaperVenue(market, store, clock, DEFAULT_FACTS, FEES, **kwargs)  # type: ignore[arg-type]


def order(
    label: str,
    side: Side,
    amount: float,
    price: float | None = None,
    *,
    name: str = PERP.name,
    tif: TimeInForce = TimeInForce.GTC,
    post_only: bool = False,
    reduce_only: bool = False,
) -> OrderRequest:
    return OrderRequest(
        label=label,
        instrument_name=name,
        side=side,
        amount=amount,
        order_type=OrderType.LIMIT if price is not None else OrderType.MARKET,
        price=price,
        post_only=post_only,
        reduce_only=reduce_only,
        time_in_force=tif,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def market(clock: FakeClock) -> FakeMarket:
    return FakeMarket(clock)


def test_paper_venue_implements_the_venue_protocol(clock: FakeClock, market: FakeMarket) -> None:
    assert isinstance(venue_on(market, MemoryPaperStore(), clock), Venue)


async def test_market_buy_walks_the_book_and_pays_the_taker_fee_in_coin(
    clock: FakeClock, market: FakeMarket
) -> None:
    venue = venue_on(market, MemoryPaperStore(), clock)
    state = await venue.place_order(order("hb-1", Side.BUY, 1500))
    assert state.venue_order_id == "paper-1"
    assert state.status is OrderStatus.FILLED
    assert state.average_price == pytest.approx((1000 * 50_000 + 500 * 50_010) / 1500)
    fills = await venue.fills("BTC")
    assert [(f.trade_id, f.amount, f.price) for f in fills] == [
        ("paper-t-1", 1000, 50_000),
        ("paper-t-2", 500, 50_010),
    ]
    fee = 0.0005 * (1000 / 50_000 + 500 / 50_010)
    assert sum(f.fee for f in fills) == pytest.approx(fee)
    account = await venue.account("BTC")
    assert account.balance == pytest.approx(1.0 - fee)
    [position] = await venue.positions("BTC")
    assert position.size == 1500
    assert 1500 / position.average_price == pytest.approx(1000 / 50_000 + 500 / 50_010)


async def test_closing_a_perp_long_realises_inverse_pnl_in_coin(
    clock: FakeClock, market: FakeMarket
) -> None:
    venue = venue_on(market, MemoryPaperStore(), clock)
    await venue.place_order(order("open", Side.BUY, 1000))
    market.books[PERP.name] = ([(55_000.0, 5000.0)], [(55_010.0, 5000.0)])
    await venue.place_order(order("close", Side.SELL, 1000))
    fees = 0.0005 * (1000 / 50_000 + 1000 / 55_000)
    pnl = 1000 * (1 / 50_000 - 1 / 55_000)
    account = await venue.account("BTC")
    assert account.balance == pytest.approx(1.0 + pnl - fees)
    assert await venue.positions("BTC") == []


async def test_shorting_the_perp_profits_in_coin_when_the_price_falls(
    clock: FakeClock, market: FakeMarket
) -> None:
    venue = venue_on(market, MemoryPaperStore(), clock)
    await venue.place_order(order("short", Side.SELL, 2000, 49_980.0, tif=TimeInForce.IOC))
    market.books[PERP.name] = ([(44_990.0, 5000.0)], [(45_000.0, 5000.0)])
    await venue.place_order(order("cover", Side.BUY, 2000))
    entry = 2000 / (1000 / 49_990 + 1000 / 49_980)
    pnl = 2000 * (1 / 45_000 - 1 / entry)
    fees = 0.0005 * (1000 / 49_990 + 1000 / 49_980 + 2000 / 45_000)
    assert (await venue.account("BTC")).balance == pytest.approx(1.0 + pnl - fees)
    assert pnl > 0


async def test_buying_an_option_pays_premium_and_capped_fee_from_the_balance(
    clock: FakeClock, market: FakeMarket
) -> None:
    venue = venue_on(market, MemoryPaperStore(), clock)
    await venue.place_order(order("opt", Side.BUY, 2.0, 0.051, name=CALL.name))
    fee = min(0.0003 * 2.0, 0.125 * 0.0505 * 2.0)
    account = await venue.account("BTC")
    assert account.balance == pytest.approx(1.0 - 2.0 * 0.0505 - fee)
    assert account.equity == pytest.approx(account.balance + 2.0 * market.call_mark)


async def test_equity_and_delta_total_on_a_hand_example(
    clock: FakeClock, market: FakeMarket
) -> None:
    store = MemoryPaperStore()
    store.save(
        PaperChange(
            balances={"BTC": 1.0},
            positions=(
                PaperPosition(PERP.name, 10_000, 50_000.0),
                PaperPosition(CALL.name, -2.0, 0.04),
            ),
        )
    )
    tau = (datetime(2026, 2, 4, 8, tzinfo=UTC) - START).total_seconds() / (365 * 86400)
    d1 = (math.log(52_000 / 50_000) + 0.5 * 0.36 * tau) / (0.6 * math.sqrt(tau))
    d2 = d1 - 0.6 * math.sqrt(tau)

    def n(x: float) -> float:
        return 0.5 * (1 + math.erf(x / math.sqrt(2)))

    call_coin = (52_000 * n(d1) - 50_000 * n(d2)) / 52_000
    market.perp_mark = market.index_price = 52_000.0
    market.call_mark, market.call_iv = call_coin, 0.6
    account = await venue_on(market, store, clock).account("BTC")
    assert account.equity == pytest.approx(1.0 + 10_000 * (1 / 50_000 - 1 / 52_000) - 2 * call_coin)
    assert account.delta_total == pytest.approx(-2 * (n(d1) - call_coin) + 10_000 / 52_000)


async def test_post_only_that_would_cross_is_rejected_and_leaves_no_order(
    clock: FakeClock, market: FakeMarket
) -> None:
    venue = venue_on(market, MemoryPaperStore(), clock)
    with pytest.raises(OrderRejected) as err:
        await venue.place_order(order("po", Side.BUY, 100, 50_000.0, post_only=True))
    assert err.value.code == POST_ONLY_REJECT
    assert await venue.order_by_label("BTC", "po") is None
    state = await venue.place_order(order("po2", Side.BUY, 100, 49_995.0, post_only=True))
    assert state.venue_order_id == "paper-1"
    assert state.status is OrderStatus.OPEN


async def test_amount_off_the_step_is_rejected_with_deribit_invalid_amount(
    clock: FakeClock, market: FakeMarket
) -> None:
    venue = venue_on(market, MemoryPaperStore(), clock)
    with pytest.raises(OrderRejected) as err:
        await venue.place_order(order("odd", Side.BUY, 15))
    assert err.value.code == INVALID_AMOUNT


async def test_resting_limit_fills_as_maker_once_the_market_trades_through_it(
    clock: FakeClock, market: FakeMarket
) -> None:
    venue = venue_on(market, MemoryPaperStore(), clock)
    resting = await venue.place_order(order("rest", Side.BUY, 1500, 49_995.0))
    assert resting.status is OrderStatus.OPEN
    assert [o.venue_order_id for o in await venue.open_orders("BTC")] == ["paper-1"]
    market.books[PERP.name] = ([(49_970.0, 1000.0)], [(49_980.0, 1000.0), (49_990.0, 1000.0)])
    clock.advance(60)
    assert await venue.open_orders("BTC") == []
    filled = await venue.order_by_label("BTC", "rest")
    assert filled is not None
    assert filled.status is OrderStatus.FILLED
    fills = await venue.fills("BTC")
    assert {(f.price, f.liquidity.value, f.fee) for f in fills} == {(49_995.0, "maker", 0.0)}
    assert sum(f.amount for f in fills) == 1500


async def test_reduce_only_is_trimmed_to_the_position_and_refused_when_flat(
    clock: FakeClock, market: FakeMarket
) -> None:
    venue = venue_on(market, MemoryPaperStore(), clock)
    with pytest.raises(OrderRejected):
        await venue.place_order(order("ro", Side.SELL, 100, reduce_only=True))
    await venue.place_order(order("long", Side.BUY, 300))
    state = await venue.place_order(order("ro2", Side.SELL, 1000, reduce_only=True))
    assert state.amount == 300
    assert await venue.positions("BTC") == []


async def test_cancel_removes_a_resting_order_and_a_second_cancel_is_not_found(
    clock: FakeClock, market: FakeMarket
) -> None:
    venue = venue_on(market, MemoryPaperStore(), clock)
    state = await venue.place_order(order("c", Side.SELL, 100, 50_100.0))
    cancelled = await venue.cancel_order(state.venue_order_id)
    assert cancelled.status is OrderStatus.CANCELLED
    with pytest.raises(OrderNotFound):
        await venue.cancel_order(state.venue_order_id)
    with pytest.raises(OrderNotFound):
        await venue.cancel_order("paper-99")


async def test_fills_since_and_order_by_label_read_the_persisted_history(
    clock: FakeClock, market: FakeMarket
) -> None:
    venue = venue_on(market, MemoryPaperStore(), clock)
    await venue.place_order(order("same", Side.BUY, 100))
    clock.advance(10)
    later = clock.now()
    second = await venue.place_order(order("same", Side.BUY, 200))
    assert [f.amount for f in await venue.fills("BTC", since=later)] == [200]
    assert len(await venue.fills("BTC")) == 2
    assert await venue.fills("ETH") == []
    found = await venue.order_by_label("BTC", "same")
    assert found is not None
    assert found.venue_order_id == second.venue_order_id
    assert await venue.order_by_label("ETH", "same") is None
    assert await venue.order_by_label("BTC", "other") is None


async def test_an_expired_option_settles_to_cash_and_its_orders_are_cancelled(
    clock: FakeClock, market: FakeMarket
) -> None:
    venue = venue_on(market, MemoryPaperStore(), clock)
    await venue.place_order(order("buy-call", Side.BUY, 1.0, 0.0505, name=CALL.name))
    resting = await venue.place_order(order("sell-call", Side.SELL, 1.0, 0.08, name=CALL.name))
    before = (await venue.account("BTC")).balance
    clock.advance((CALL.expiry - START).total_seconds())  # type: ignore[operator]
    account = await venue.account("BTC")
    assert account.balance == pytest.approx(before + 1.0 * (55_000 - 50_000) / 55_000)
    assert account.equity == pytest.approx(account.balance)
    assert await venue.positions("BTC") == []
    gone = await venue.order_by_label("BTC", "sell-call")
    assert gone is not None
    assert gone.venue_order_id == resting.venue_order_id
    assert gone.status is OrderStatus.CANCELLED
    with pytest.raises(OrderRejected):
        await venue.place_order(order("late", Side.BUY, 1.0, 0.05, name=CALL.name))


async def test_a_restart_on_the_same_store_continues_positions_orders_and_ids(
    clock: FakeClock, market: FakeMarket
) -> None:
    store = MemoryPaperStore()
    first = venue_on(market, store, clock)
    await first.place_order(order("a", Side.BUY, 1500))
    await first.place_order(order("b", Side.SELL, 100, 50_500.0))
    await first.close()
    again = venue_on(market, store, clock)
    assert await again.positions("BTC") == await first.positions("BTC")
    assert await again.open_orders("BTC") == await first.open_orders("BTC")
    assert (await again.account("BTC")).balance == (await first.account("BTC")).balance
    state = await again.place_order(order("c", Side.BUY, 10))
    assert state.venue_order_id == "paper-3"
    assert [f.trade_id for f in await again.fills("BTC")][-1] == "paper-t-3"


async def test_first_start_on_the_sim_market_seeds_equity_and_the_book_at_mark(
    clock: FakeClock,
) -> None:
    settings = MarketSettings()
    sim = SimMarket(settings, ("BTC", "ETH"), clock, DEFAULT_FACTS)
    venue = venue_on(sim, MemoryPaperStore(), clock, equity=settings.equity)
    for currency in ("BTC", "ETH"):
        account = await venue.account(currency)
        assert account.equity == pytest.approx(settings.equity[currency], rel=1e-12)
        held = {p.instrument.name: p.size for p in await venue.positions(currency)}
        assert held == {i.name: s for i, s in sim.starting_book(currency)}
        assert account.delta_total is not None
        assert abs(account.delta_total) < 5


async def test_starting_book_on_the_sim_market_settles_at_expiry_on_the_twap(
    clock: FakeClock,
) -> None:
    sim = SimMarket(MarketSettings(), ("BTC",), clock, DEFAULT_FACTS)
    venue = venue_on(sim, MemoryPaperStore(), clock)
    book = sim.starting_book("BTC")
    first = min(i.expiry for i, _ in book if i.expiry)
    balance = (await venue.account("BTC")).balance
    clock.advance((first - START).total_seconds() + 1)
    settle = sim.settlement_price("BTC", first)
    expected = balance + sum(
        size * max(settle - i.strike, 0) / settle
        if i.option_type is OptionType.CALL
        else size * max(i.strike - settle, 0) / settle
        for i, size in book
        if i.expiry == first and i.strike
    )
    assert (await venue.account("BTC")).balance == pytest.approx(expected)
    left = {p.instrument.name for p in await venue.positions("BTC")}
    assert left == {i.name for i, _ in book if i.expiry != first}


async def test_a_lost_reply_after_accept_leaves_the_order_findable_by_label(
    clock: FakeClock, market: FakeMarket
) -> None:
    faults = PaperFaultPlan(outcome_unknown=1.0)
    venue = venue_on(market, MemoryPaperStore(), clock, rng=np.random.default_rng(1), faults=faults)
    with pytest.raises(OutcomeUnknown):
        await venue.place_order(order("lost", Side.BUY, 100))
    found = await venue.order_by_label("BTC", "lost")
    assert found is not None
    assert found.status is OrderStatus.FILLED
    assert len(await venue.fills("BTC")) == 1


async def test_rate_limits_and_transient_reads_are_injected_from_the_seeded_plan(
    clock: FakeClock, market: FakeMarket
) -> None:
    store = MemoryPaperStore()
    faults = PaperFaultPlan(rate_limited=1.0, transient_read=1.0)
    venue = venue_on(market, store, clock, rng=np.random.default_rng(1), faults=faults)
    with pytest.raises(RateLimited):
        await venue.place_order(order("rl", Side.BUY, 100))
    with pytest.raises(TransientError):
        await venue.positions("BTC")
    assert store.load().orders == {}
    assert store.load().trades == []


async def test_without_explicit_equity_the_account_starts_with_the_markets_equity(
    clock: FakeClock, market: FakeMarket
) -> None:
    venue = venue_on(market, MemoryPaperStore(), clock, equity=None)
    assert (await venue.account("BTC")).equity == 7.0


def test_a_fault_plan_without_a_seeded_rng_is_refused(clock: FakeClock, market: FakeMarket) -> None:
    with pytest.raises(ValueError, match="rng"):
        venue_on(market, MemoryPaperStore(), clock, faults=PaperFaultPlan(rate_limited=0.1))
