"""The paper venue's account in SQL: what it saves it loads after a restart, all or nothing.

The behaviours shared with ``MemoryPaperStore`` run against both stores, so the SQL store is
held to the protocol's reference implementation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.domain import DataError, Fill, Liquidity, OrderState, OrderStatus, OrderType, Side
from bot.store import SqlPaperStore, make_engine, upgrade
from bot.venues.paper.state import (
    MemoryPaperStore,
    PaperChange,
    PaperPosition,
    PaperStateStore,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
PERP = "BTC-PERPETUAL"


def order(venue_id: str, status: OrderStatus, filled: float = 0.0) -> OrderState:
    return OrderState(
        label=f"hb-{venue_id}",
        venue_order_id=venue_id,
        instrument_name=PERP,
        side=Side.SELL,
        amount=500.0,
        filled_amount=filled,
        status=status,
        price=90_100.5,
        average_price=90_100.5 if filled else None,
        order_type=OrderType.LIMIT,
        timestamp=T0,
        post_only=True,
        reduce_only=False,
    )


def trade(trade_id: str, minutes: int = 0) -> Fill:
    return Fill(
        trade_id=trade_id,
        venue_order_id="P-1",
        label="hb-P-1",
        instrument_name=PERP,
        side=Side.SELL,
        amount=500.0,
        price=90_100.5,
        fee=0.00000277,
        fee_currency="BTC",
        liquidity=Liquidity.MAKER,
        timestamp=T0 + timedelta(minutes=minutes),
        index_price=90_050.0,
    )


def sql_store(tmp_path: Path) -> SqlPaperStore:
    url = f"sqlite:///{tmp_path / 'paper.db'}"
    upgrade(url)
    return SqlPaperStore(make_engine(url))


STORES: dict[str, Callable[[Path], PaperStateStore]] = {
    "memory": lambda _: MemoryPaperStore(),
    "sql": sql_store,
}


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> PaperStateStore:
    return STORES[request.param](tmp_path)


def test_a_new_store_loads_an_empty_account(store: PaperStateStore) -> None:
    assert store.load().empty


def test_saved_changes_load_back_as_given(store: PaperStateStore) -> None:
    position = PaperPosition(PERP, -12_340.0, 90_010.25)
    store.save(
        PaperChange(
            balances={"BTC": 10.00000123, "ETH": 150.0},
            positions=(position,),
            orders=(order("P-1", OrderStatus.OPEN),),
            trades=(trade("T-1"),),
        )
    )
    snap = store.load()
    assert snap.balances == {"BTC": 10.00000123, "ETH": 150.0}
    assert snap.positions == {PERP: position}
    assert snap.orders == {"P-1": order("P-1", OrderStatus.OPEN)}
    assert snap.trades == [trade("T-1")]


def test_later_changes_update_balances_positions_and_orders_in_place(
    store: PaperStateStore,
) -> None:
    store.save(
        PaperChange(
            balances={"BTC": 10.0},
            positions=(PaperPosition(PERP, -500.0, 90_000.0),),
            orders=(order("P-1", OrderStatus.OPEN),),
        )
    )
    store.save(
        PaperChange(
            balances={"BTC": 9.99},
            positions=(PaperPosition(PERP, -1000.0, 90_050.0),),
            orders=(order("P-1", OrderStatus.FILLED, 500.0),),
        )
    )
    snap = store.load()
    assert snap.balances == {"BTC": 9.99}
    assert snap.positions == {PERP: PaperPosition(PERP, -1000.0, 90_050.0)}
    assert snap.orders == {"P-1": order("P-1", OrderStatus.FILLED, 500.0)}


def test_a_trade_saved_twice_is_stored_once(store: PaperStateStore) -> None:
    store.save(PaperChange(trades=(trade("T-1"), trade("T-1"))))
    store.save(PaperChange(trades=(trade("T-1"), trade("T-2", minutes=1))))
    assert [t.trade_id for t in store.load().trades] == ["T-1", "T-2"]


def test_sql_store_survives_a_restart_on_a_new_engine(tmp_path: Path) -> None:
    first = sql_store(tmp_path)
    first.save(PaperChange(balances={"BTC": 3.5}, trades=(trade("T-1"),)))
    first.engine.dispose()
    again = SqlPaperStore(make_engine(f"sqlite:///{tmp_path / 'paper.db'}"))
    snap = again.load()
    assert snap.balances == {"BTC": 3.5}
    assert snap.trades == [trade("T-1")]


def test_sql_store_when_one_row_is_invalid_then_nothing_of_the_change_is_saved(
    tmp_path: Path,
) -> None:
    store = sql_store(tmp_path)
    store.save(PaperChange(balances={"BTC": 10.0}))
    bad = PaperChange(
        balances={"BTC": 9.0, "ETH": 1.0},
        orders=(order("P-1", OrderStatus.OPEN),),
        trades=(trade("T-1"),),
        positions=(PaperPosition(PERP, math.nan, 90_000.0),),
    )
    with pytest.raises(DataError):
        store.save(bad)
    snap = store.load()
    assert snap.balances == {"BTC": 10.0}
    assert (snap.positions, snap.orders, snap.trades) == ({}, {}, [])


def test_sql_store_loads_trades_in_time_order(tmp_path: Path) -> None:
    store = sql_store(tmp_path)
    store.save(PaperChange(trades=(trade("T-b", minutes=2),)))
    store.save(PaperChange(trades=(trade("T-a", minutes=1),)))
    assert [t.trade_id for t in store.load().trades] == ["T-a", "T-b"]
