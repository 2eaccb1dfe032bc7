"""The paper venue keeps only open and recently closed orders in memory (issue 13).

Open orders are indexed apart, so a long run's closed orders cost neither time nor memory;
a closed order that left the in-memory window is still found by id and label in the store,
in memory and in SQL alike, also after a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.domain import OrderStatus, Side
from bot.venues.errors import OrderNotFound
from bot.venues.paper.state import PaperStateStore
from tests.store.test_store_paper import STORES
from tests.venues.test_paper_venue import START, FakeMarket, order, venue_on

WINDOW = 3


@pytest.fixture(params=sorted(STORES))
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], PaperStateStore]:
    store = STORES[request.param](tmp_path)
    return lambda: store


async def test_open_orders_stay_exact_after_many_more_orders_closed_than_the_window_holds(
    make_store: Callable[[], PaperStateStore],
) -> None:
    clock = FakeClock(START)
    venue = venue_on(FakeMarket(clock), make_store(), clock, closed_window=WINDOW)  # type: ignore[arg-type]
    resting = [
        await venue.place_order(order(f"rest-{i}", Side.BUY, 10, 49_000.0 - i)) for i in range(2)
    ]
    for i in range(20):  # market orders fill at once: closed
        await venue.place_order(order(f"mkt-{i}", Side.BUY if i % 2 else Side.SELL, 10))
    late = await venue.place_order(order("rest-late", Side.SELL, 10, 51_000.0))
    await venue.cancel_order(resting[0].venue_order_id)
    opened = await venue.open_orders("BTC")
    assert [o.label for o in opened] == ["rest-1", "rest-late"]
    assert [o.venue_order_id for o in opened] == [resting[1].venue_order_id, late.venue_order_id]
    assert len(venue._orders) == len(opened) + WINDOW  # the rest lives only in the store


async def test_an_old_closed_order_is_found_by_id_and_label_after_it_left_the_window(
    make_store: Callable[[], PaperStateStore],
) -> None:
    clock = FakeClock(START)
    store = make_store()
    venue = venue_on(FakeMarket(clock), store, clock, closed_window=WINDOW)  # type: ignore[arg-type]
    first = await venue.place_order(order("first", Side.BUY, 10))
    for i in range(10):
        await venue.place_order(order(f"later-{i}", Side.BUY, 10))
    assert first.venue_order_id not in venue._orders
    for reader in (venue, venue_on(FakeMarket(clock), store, clock, closed_window=WINDOW)):  # type: ignore[arg-type]
        by_id = await reader.order_by_id("BTC", first.venue_order_id)
        by_label = await reader.order_by_label("BTC", "first")
        assert by_id == by_label == first
        assert by_id is not None
        assert by_id.status is OrderStatus.FILLED
        assert await reader.order_by_id("ETH", first.venue_order_id) is None
        assert await reader.order_by_label("ETH", "first") is None
        assert await reader.order_by_label("BTC", "never-sent") is None
        with pytest.raises(OrderNotFound, match="filled, not open"):
            await reader.cancel_order(first.venue_order_id)


async def test_a_reused_label_answers_with_its_newest_order_once_that_left_the_window(
    make_store: Callable[[], PaperStateStore],
) -> None:
    clock = FakeClock(START)
    venue = venue_on(FakeMarket(clock), make_store(), clock, closed_window=WINDOW)  # type: ignore[arg-type]
    await venue.place_order(order("again", Side.BUY, 10))
    resting = await venue.place_order(order("again", Side.BUY, 10, 49_000.0))
    await venue.cancel_order(resting.venue_order_id)
    for i in range(WINDOW + 2):
        await venue.place_order(order(f"other-{i}", Side.SELL, 10))
    found = await venue.order_by_label("BTC", "again")
    assert found is not None
    assert found.venue_order_id == resting.venue_order_id
    assert found.status is OrderStatus.CANCELLED


async def test_fills_from_before_the_trade_window_come_whole_from_the_store(
    make_store: Callable[[], PaperStateStore],
) -> None:
    clock = FakeClock(START)
    venue = venue_on(FakeMarket(clock), make_store(), clock, trade_window=WINDOW)  # type: ignore[arg-type]
    placed = []
    for i in range(8):
        placed.append(
            await venue.place_order(order(f"t-{i}", Side.BUY if i % 2 else Side.SELL, 10))
        )
        clock.advance(60)
    everything = await venue.fills("BTC")
    assert [f.venue_order_id for f in everything] == [o.venue_order_id for o in placed]
    assert len(venue._trades) == WINDOW
    recent = await venue.fills("BTC", since=placed[-2].timestamp)  # inside the window
    assert [f.label for f in recent] == ["t-6", "t-7"]
    older = await venue.fills("BTC", since=placed[2].timestamp)  # reaches past it
    assert [f.label for f in older] == [f"t-{i}" for i in range(2, 8)]
    assert await venue.fills("ETH") == []
