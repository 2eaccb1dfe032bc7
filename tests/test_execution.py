"""Execution: passive first, chase, then IOC; urgent hedges go straight to IOC; orders left
working by a stopped process are re-adopted from venue evidence."""

from __future__ import annotations

from pathlib import Path

from bot.clock import FakeClock
from bot.cycle import rebalance_once
from bot.domain import OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from bot.reconcile import reconcile
from tests.support.books import NOW
from tests.support.harness import CountingVenue, FillsReadFailsOnce, VenueClockBehind, stack


async def test_a_hedge_just_outside_its_band_starts_post_only_at_the_touch(
    tmp_path: Path,
) -> None:
    app = stack(
        tmp_path,
        policy={"delta_band": {"band": 0.2, "rebalance_to": "target"}},
        hedge={"target_delta": 0.3},
        execution={"urgent_band_multiple": 10},
    )
    result = await rebalance_once(app.ctx, "BTC")
    assert result.status == "traded", result.reason
    orders = sorted(app.ledger.orders(), key=lambda o: o.label)
    first = orders[0]
    assert first.post_only
    assert first.time_in_force is TimeInForce.GTC
    decided = app.ledger.last_rebalances(1)[0]
    touch = decided.hedge_bid if first.side is Side.BUY else decided.hedge_ask
    assert first.price == touch
    assert result.execution is not None
    assert result.execution.status is OrderStatus.FILLED
    assert result.decision is not None
    assert abs(result.execution.filled_amount) == abs(result.decision.trade_amount)
    assert all(o.status.terminal for o in orders)
    assert len(orders) >= 2 or first.status is OrderStatus.FILLED


async def test_an_urgent_hedge_goes_straight_to_ioc(tmp_path: Path) -> None:
    app = stack(
        tmp_path,
        policy={"delta_band": {"band": 0.05}},
        hedge={"target_delta": 2.0},
        execution={"urgent_band_multiple": 2},
    )
    result = await rebalance_once(app.ctx, "BTC")
    assert result.status == "traded"
    (order,) = app.ledger.orders()
    assert not order.post_only
    assert order.time_in_force is TimeInForce.IOC
    assert order.status is OrderStatus.FILLED


async def test_with_post_only_disabled_every_hedge_is_ioc(tmp_path: Path) -> None:
    app = stack(
        tmp_path,
        policy={"delta_band": {"band": 0.2}},
        hedge={"target_delta": 0.3},
        execution={"post_only": False, "urgent_band_multiple": 10},
    )
    await rebalance_once(app.ctx, "BTC")
    assert [o.time_in_force for o in app.ledger.orders()] == [TimeInForce.IOC]


async def test_an_order_left_working_by_a_stopped_process_is_readopted_at_start(
    tmp_path: Path,
) -> None:
    app = stack(tmp_path, wrap=CountingVenue)
    quote = await app.venue.quote("BTC-PERPETUAL")
    req = OrderRequest(
        label="hb-deadbeef-1",
        instrument_name="BTC-PERPETUAL",
        side=Side.BUY,
        amount=1000,
        order_type=OrderType.LIMIT,
        price=round(quote.bid * 0.9),
        post_only=True,
    )
    app.ledger.record_order(
        req, cycle_id="deadbeef", rebalance_id=None, decision_mid=quote.mid, ts=app.clock.now()
    )
    state = await app.venue.place_order(req)
    assert state.status is OrderStatus.OPEN
    # The process "stops" here; a new one reconciles before its first decision.
    result = await reconcile(app.ctx, "BTC")
    assert result.unresolved_orders == ()
    row = app.ledger.order("hb-deadbeef-1")
    assert row is not None
    assert row.status is OrderStatus.CANCELLED
    assert [o.label for o in await app.venue.open_orders("BTC")] == []
    assert app.venue.count.placed == 1  # type: ignore[attr-defined]


def _record_open_order(app: object, label: str, instrument: str) -> None:
    req = OrderRequest(label, instrument, Side.BUY, 10, price=1000.0)
    app.ledger.record_order(  # type: ignore[attr-defined]
        req, cycle_id="c", rebalance_id=None, decision_mid=None, ts=NOW
    )


async def test_an_open_order_in_an_instrument_outside_the_venue_facts_stays_unresolved(
    tmp_path: Path,
) -> None:
    app = stack(tmp_path)
    _record_open_order(app, "hb-c-1", "XBT-PERPETUAL")  # in no currency of venue.facts
    assert await app.ctx.executor.resolve_unknown("BTC") == ["hb-c-1"]


async def test_an_eth_cycle_leaves_an_open_btc_order_to_the_btc_cycle(tmp_path: Path) -> None:
    app = stack(tmp_path)
    _record_open_order(app, "hb-c-1", "BTC-PERPETUAL")
    assert await app.ctx.executor.resolve_unknown("ETH") == []
    row = app.ledger.order("hb-c-1")
    assert row is not None
    assert row.status is OrderStatus.PENDING


URGENT = {
    "policy": {"delta_band": {"band": 0.05}},
    "hedge": {"target_delta": 1.0},
    "execution": {"urgent_band_multiple": 2, "allow_market": True},
}


async def hedge_held(app: object) -> float:
    positions = await app.venue.positions("BTC")  # type: ignore[attr-defined]
    return sum(p.size for p in positions if p.instrument.name == "BTC-PERPETUAL")


async def test_a_venue_clock_behind_ours_neither_doubles_the_hedge_nor_loses_the_fill(
    tmp_path: Path,
) -> None:
    app = stack(tmp_path, wrap=VenueClockBehind, **URGENT)
    result = await rebalance_once(app.ctx, "BTC")
    assert result.status == "traded"
    assert result.decision is not None
    assert await hedge_held(app) == result.decision.trade_amount  # sent once, not twice
    assert app.ledger.hedge_position_from_fills("BTC-PERPETUAL") == result.decision.trade_amount


async def test_a_fill_read_that_fails_after_the_order_filled_is_read_again_before_any_new_order(
    tmp_path: Path,
) -> None:
    app = stack(tmp_path, wrap=FillsReadFailsOnce, **URGENT)
    first = await rebalance_once(app.ctx, "BTC")
    assert first.status == "failed"
    (order,) = app.ledger.orders()
    assert not order.status.terminal  # not FILLED until its fills are on record
    held = await hedge_held(app)
    assert held != 0
    second = await rebalance_once(app.ctx, "BTC")
    assert second.status == "no_trade", second.reason
    assert len(app.ledger.orders()) == 1
    assert app.ledger.order(order.label).status is OrderStatus.FILLED  # type: ignore[union-attr]
    assert app.ledger.hedge_position_from_fills("BTC-PERPETUAL") == held


async def test_a_plan_confirmed_after_the_data_went_stale_is_denied(tmp_path: Path) -> None:
    clock = FakeClock(NOW)
    app = stack(tmp_path, clock=clock, wrap=CountingVenue, **URGENT)

    async def slow_yes(_: object) -> bool:
        clock.advance(600)  # the user came back ten minutes later
        return True

    result = await rebalance_once(app.ctx, "BTC", confirm=slow_yes)
    assert result.status == "denied"
    assert "after confirmation" in result.reason
    assert app.venue.count.placed == 0  # type: ignore[attr-defined]
