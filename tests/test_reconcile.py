"""Start-up reconciliation: missing fills once, strangers cancelled, outside trades stop it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app import build_app
from bot.cycle import rebalance_once
from bot.domain import OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from bot.reconcile import ReconciliationFailed, reconcile
from tests.support.harness import stack

BAND = {"policy": {"delta_band": {"band": 0.05}}, "hedge": {"target_delta": 0.5}}


def ioc(label: str, amount: float, side: Side = Side.BUY) -> OrderRequest:
    return OrderRequest(
        label=label,
        instrument_name="BTC-PERPETUAL",
        side=side,
        amount=amount,
        order_type=OrderType.MARKET,
        time_in_force=TimeInForce.IOC,
    )


async def test_fills_the_ledger_missed_are_recorded_once_at_start(tmp_path: Path) -> None:
    app = stack(tmp_path)
    req = ioc("hb-lostfill-1", 500)
    app.ledger.record_order(
        req, cycle_id="lostfill", rebalance_id=None, decision_mid=None, ts=app.clock.now()
    )
    await app.venue.place_order(req)  # filled at the venue; the process died before recording
    assert app.ledger.fills() == []
    first = await reconcile(app.ctx, "BTC")
    assert first.fills_added >= 1
    assert sum(f.amount for f in app.ledger.fills()) == 500
    second = await reconcile(app.ctx, "BTC")
    assert second.fills_added == 0
    assert sum(f.amount for f in app.ledger.fills()) == 500


async def test_an_open_order_stamped_with_our_ledger_id_the_ledger_never_saw_is_cancelled(
    tmp_path: Path,
) -> None:
    app = stack(tmp_path)
    quote = await app.venue.quote("BTC-PERPETUAL")
    label = app.ctx.executor.labels.make("0123456789abcdef", 1)
    stray = OrderRequest(
        label=label,
        instrument_name="BTC-PERPETUAL",
        side=Side.SELL,
        amount=100,
        price=round(quote.ask * 1.1),
        post_only=True,
    )
    await app.venue.place_order(stray)  # by this ledger's earlier process, then lost from it
    app.clock.advance(1)  # type: ignore[attr-defined]
    app = build_app(app.settings, paper=True, clock=app.clock, venue=app.venue)  # restarted
    result = await reconcile(app.ctx, "BTC")
    assert result.foreign_orders_cancelled == (label,)
    assert await app.venue.open_orders("BTC") == []


async def test_a_hedge_traded_outside_hedgebot_stops_start_up_saying_what_differs(
    tmp_path: Path,
) -> None:
    app = stack(tmp_path, **BAND)
    assert (await rebalance_once(app.ctx, "BTC")).status == "traded"
    assert (await reconcile(app.ctx, "BTC")).expected_position == pytest.approx(
        app.ledger.hedge_position_from_fills("BTC-PERPETUAL")
    )
    await app.venue.place_order(ioc("manual-click", 2000, Side.SELL))
    with pytest.raises(ReconciliationFailed, match=r"venue holds .* ledger expects .*-2,000"):
        await reconcile(app.ctx, "BTC")


async def test_a_difference_within_the_tolerance_is_accepted(tmp_path: Path) -> None:
    app = stack(tmp_path, risk={"position_tolerance": 5000}, **BAND)
    await rebalance_once(app.ctx, "BTC")
    await app.venue.place_order(ioc("manual-click", 2000, Side.SELL))
    result = await reconcile(app.ctx, "BTC")
    assert result.venue_position is not None
    assert result.expected_position is not None
    assert result.venue_position - result.expected_position == pytest.approx(-2000)


async def test_start_up_waits_out_the_grace_on_its_clock_for_an_order_that_never_arrived(
    tmp_path: Path,
) -> None:
    app = stack(tmp_path)
    await reconcile(app.ctx, "BTC")  # the baseline: flat
    req = ioc("hb-lost-1", 500)
    app.ledger.record_order(
        req, cycle_id="lost", rebalance_id=None, decision_mid=None, ts=app.clock.now()
    )  # recorded, then the process died before sending it
    start = app.clock.now()
    result = await reconcile(app.ctx, "BTC")
    assert (app.clock.now() - start).total_seconds() == app.ctx.executor.grace
    assert result.unresolved_orders == ()
    row = app.ledger.order("hb-lost-1")
    assert row is not None
    assert row.status is OrderStatus.REJECTED
    assert app.ledger.fills() == []
