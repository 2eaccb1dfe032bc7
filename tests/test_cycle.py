"""rebalance_once on the paper venue: what it trades, what it refuses, what it records."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from bot.app import build_app
from bot.clock import FakeClock
from bot.cycle import rebalance_once
from bot.domain import (
    OrderRequest,
    OrderState,
    OrderStatus,
    RebalanceStatus,
    Side,
    TradingState,
)
from bot.venues.errors import AuthError
from bot.venues.paper.venue import PaperFaultPlan
from tests.support.books import NOW
from tests.support.harness import (
    CountingVenue,
    EmptyPositions,
    NanIndex,
    StaleMarks,
    WrongDeltaTotal,
    stack,
)

TIGHT = {
    "policy": {"kind": "delta_band", "delta_band": {"band": 0.05}},
    "hedge": {"target_delta": 0.5},
}


async def test_a_short_gamma_book_off_target_is_hedged_and_every_fill_is_recorded(
    tmp_path: Path,
) -> None:
    app = stack(tmp_path, **TIGHT)
    result = await rebalance_once(app.ctx, "BTC")
    assert result.status == "traded", result.reason
    assert result.execution is not None
    assert result.execution.status is OrderStatus.FILLED
    fills = app.ledger.fills()
    assert fills
    assert all(f.label == result.execution.label for f in fills)
    held = sum(p.size for p in await app.venue.positions("BTC") if "PERPETUAL" in p.instrument.name)
    assert held == pytest.approx(app.ledger.hedge_position_from_fills("BTC-PERPETUAL"))
    again = await rebalance_once(app.ctx, "BTC")
    assert again.status == "no_trade"
    assert again.greeks is not None
    assert abs(again.greeks.delta_coin - 0.5) <= 0.05


async def test_a_book_inside_its_band_is_recorded_as_no_trade(tmp_path: Path) -> None:
    app = stack(tmp_path, policy={"delta_band": {"band": 1000.0}})
    result = await rebalance_once(app.ctx, "BTC")
    assert result.status == "no_trade"
    rows = app.ledger.last_rebalances(1)
    assert rows[0].status == "no_trade"
    assert rows[0].delta_before == pytest.approx(result.greeks.delta_coin)  # type: ignore[union-attr]
    assert app.ledger.orders() == []


async def test_stale_marks_skip_the_cycle_and_the_reason_is_recorded(tmp_path: Path) -> None:
    app = stack(tmp_path, wrap=StaleMarks, **TIGHT)
    result = await rebalance_once(app.ctx, "BTC")
    assert result.status == "skipped"
    assert "old" in result.reason
    assert app.ledger.last_rebalances(1)[0].reason == result.reason
    assert app.ledger.orders() == []


async def test_a_nan_index_price_is_a_recorded_skip_not_a_trade(tmp_path: Path) -> None:
    app = stack(tmp_path, wrap=NanIndex, **TIGHT)
    result = await rebalance_once(app.ctx, "BTC")
    assert result.status == "skipped"
    assert "index" in result.reason
    assert app.ledger.orders() == []


async def test_an_empty_position_read_after_a_full_one_is_not_trusted(tmp_path: Path) -> None:
    app = stack(tmp_path, wrap=EmptyPositions, **TIGHT)
    first = await rebalance_once(app.ctx, "BTC")
    assert first.status == "traded"
    with capture_logs() as logs:
        second = await rebalance_once(app.ctx, "BTC")
    assert second.status == "skipped"
    assert "empty" in second.reason
    assert any(e["event"] == "cycle_skipped" for e in logs)
    assert len(app.ledger.orders()) == 1


async def test_a_disagreement_with_the_venues_delta_total_skips_the_cycle(tmp_path: Path) -> None:
    app = stack(tmp_path, wrap=WrongDeltaTotal, **TIGHT)
    result = await rebalance_once(app.ctx, "BTC")
    assert result.status == "skipped"
    assert "disagreement" in result.reason


async def test_dry_run_prints_a_plan_and_sends_nothing(tmp_path: Path) -> None:
    app = stack(tmp_path, wrap=CountingVenue, **TIGHT)
    result = await rebalance_once(app.ctx, "BTC", dry_run=True)
    assert result.status == "dry_run"
    assert result.plan is not None
    assert result.plan.trade_amount != 0
    assert app.venue.count.placed == 0  # type: ignore[attr-defined]


async def test_a_dry_run_leaves_a_stray_order_of_ours_open(tmp_path: Path) -> None:
    app = stack(tmp_path, **TIGHT)
    quote = await app.venue.quote("BTC-PERPETUAL")
    label = app.ctx.executor.labels.make("0123456789abcdef", 1)  # ours, lost from the ledger
    stray = OrderRequest(
        label=label,
        instrument_name="BTC-PERPETUAL",
        side=Side.SELL,
        amount=100,
        price=round(quote.ask * 1.1),
        post_only=True,
    )
    await app.venue.place_order(stray)
    app.clock.advance(1)  # type: ignore[attr-defined]
    app = build_app(app.settings, paper=True, clock=app.clock, venue=app.venue)  # restarted
    result = await rebalance_once(app.ctx, "BTC", dry_run=True)
    assert result.status == "dry_run"
    assert [o.label for o in await app.venue.open_orders("BTC")] == [label]
    live = await rebalance_once(app.ctx, "BTC")
    assert live.status != "dry_run"
    assert label not in [o.label for o in await app.venue.open_orders("BTC")]


async def test_a_dry_run_beside_a_live_daemon_leaves_its_working_order_open(
    tmp_path: Path,
) -> None:
    """`hedgebot check` plans with a dry run while a daemon may hold the book: the daemon's
    resting order, recorded and working, is neither cancelled nor written off by it."""
    app = stack(tmp_path, **TIGHT)
    quote = await app.venue.quote("BTC-PERPETUAL")
    label = app.ctx.executor.labels.make("0123456789abcdef", 1)
    resting = OrderRequest(
        label=label,
        instrument_name="BTC-PERPETUAL",
        side=Side.BUY,
        amount=100,
        price=round(quote.bid * 0.9),
        post_only=True,
    )
    app.ledger.record_order(
        resting, cycle_id="c", rebalance_id=None, decision_mid=None, ts=app.clock.now()
    )
    placed = await app.venue.place_order(resting)
    app.ledger.update_order(label, placed, app.clock.now())  # the daemon waits on it
    result = await rebalance_once(app.ctx, "BTC", dry_run=True)
    assert result.status == "skipped"
    assert label in result.reason
    assert [o.label for o in await app.venue.open_orders("BTC")] == [label]
    row = app.ledger.order(label)
    assert row is not None
    assert row.status is OrderStatus.OPEN


async def test_a_dry_run_that_finds_a_fill_not_yet_recorded_skips_without_halting(
    tmp_path: Path,
) -> None:
    """A live daemon's order filled and its fill is not recorded yet (or the hedge was traded
    by hand): the dry run `hedgebot check` makes says so, and leaves the daemon trading."""
    app = stack(tmp_path, **TIGHT)
    first = await rebalance_once(app.ctx, "BTC")  # the baseline and our first hedge
    assert first.status == "traded"
    quote = await app.venue.quote("BTC-PERPETUAL")
    unrecorded = OrderRequest(
        label="manual-1",
        instrument_name="BTC-PERPETUAL",
        side=Side.BUY,
        amount=100,
        price=round(quote.ask * 1.01),
    )
    await app.venue.place_order(unrecorded)
    result = await rebalance_once(app.ctx, "BTC", dry_run=True)
    assert result.status == "skipped"
    assert "not explained by our fills" in result.reason
    assert app.ledger.get_trading_state().state is TradingState.ACTIVE
    live = await rebalance_once(app.ctx, "BTC")
    assert live.status == "skipped"
    assert app.ledger.get_trading_state().state is TradingState.HALTED


async def test_a_declined_confirmation_sends_nothing(tmp_path: Path) -> None:
    app = stack(tmp_path, wrap=CountingVenue, **TIGHT)

    async def no(_: object) -> bool:
        return False

    result = await rebalance_once(app.ctx, "BTC", confirm=no)
    assert result.status == "skipped"
    assert app.venue.count.placed == 0  # type: ignore[attr-defined]


async def test_rebalance_when_submit_times_out_after_accept_then_no_second_order(
    tmp_path: Path,
) -> None:
    clock = FakeClock(NOW)
    app = stack(tmp_path, clock=clock, faults=PaperFaultPlan(outcome_unknown=1.0), **TIGHT)
    first = await rebalance_once(app.ctx, "BTC")
    assert first.status == "traded"
    assert first.execution is not None
    # The order was accepted although the reply was lost: the label lookup adopts it.
    assert first.execution.status is OrderStatus.FILLED
    assert len(app.ledger.orders()) == 1
    second = await rebalance_once(app.ctx, "BTC")
    assert second.status == "no_trade", second.reason
    assert len(app.ledger.orders()) == 1
    fills = app.ledger.fills()
    assert len({f.trade_id for f in fills}) == len(fills)


async def test_a_halted_book_is_denied_and_recorded(tmp_path: Path) -> None:
    app = stack(tmp_path, **TIGHT)
    app.ledger.set_trading_state(TradingState.HALTED, "operator", NOW)
    result = await rebalance_once(app.ctx, "BTC")
    assert result.status == "denied"
    assert app.ledger.last_rebalances(1)[0].status == "denied"


class _PlaceRaises(CountingVenue):
    """Every order placement fails with an error the executor does not handle."""

    async def place_order(self, request: OrderRequest) -> OrderState:
        self.count.placed += 1
        raise AuthError("key lost its trade scope")


async def test_when_execution_raises_the_ledger_row_and_the_result_both_say_failed(
    tmp_path: Path,
) -> None:
    app = stack(tmp_path, wrap=_PlaceRaises, **TIGHT)
    result = await rebalance_once(app.ctx, "BTC")
    assert result.status is RebalanceStatus.FAILED
    row = app.ledger.last_rebalances(1)[0]
    assert row.status is RebalanceStatus.FAILED
    assert "trade scope" in row.reason
    assert row.reason == result.reason


async def test_every_cycle_outcome_is_a_rebalance_status_member(tmp_path: Path) -> None:
    app = stack(tmp_path, **TIGHT)
    result = await rebalance_once(app.ctx, "BTC", dry_run=True)
    assert result.status is RebalanceStatus.DRY_RUN


class _BrokenVol:
    """A volatility source whose forecast no policy can use."""

    def sigma(self, currency: str, now: object, implied: float | None) -> float:
        return -1.0


async def test_a_policy_that_cannot_decide_is_a_recorded_skip_not_a_traceback(
    tmp_path: Path,
) -> None:
    app = stack(
        tmp_path,
        wrap=CountingVenue,
        policy={"kind": "gamma_scaled", "gamma_scaled": {"method": "zakamouline"}},
        hedge={"target_delta": 0.5},
    )
    app.ctx.vol = _BrokenVol()  # type: ignore[assignment]
    result = await rebalance_once(app.ctx, "BTC")
    assert result.status == RebalanceStatus.SKIPPED
    assert "could not decide" in result.reason
    assert app.ledger.last_rebalances(1)[0].status == RebalanceStatus.SKIPPED
    assert app.venue.count.placed == 0  # type: ignore[attr-defined]
