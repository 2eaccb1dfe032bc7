"""A fill far beyond its order's limit, or charged a huge fee, is recorded and halts trading; the
fills recovered at start-up pass the same checks (oversize, price, fee) and halt the same way."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.cycle import rebalance_once
from bot.domain import Fill, Liquidity, OrderRequest, OrderType, Side, TimeInForce, TradingState
from bot.reconcile import ReconciliationFailed, reconcile
from bot.risk import FillBounds, fill_out_of_bounds
from tests.support.books import NOW
from tests.support.harness import CountingVenue, stack

TIGHT = {
    "policy": {"kind": "delta_band", "delta_band": {"band": 0.05}},
    "hedge": {"target_delta": 0.5},
    "execution": {"post_only": False},
}
PERP = "BTC-PERPETUAL"


class LyingFills(CountingVenue):
    """Reports every fill changed by ``lie`` (the venue's record is wrong, or ours is)."""

    def lie(self, fill: Fill) -> Fill:
        return fill

    async def fills(self, currency: str, since: datetime | None = None) -> Any:
        return [self.lie(f) for f in await self.inner.fills(currency, since)]


class FarPrice(LyingFills):
    def lie(self, fill: Fill) -> Fill:
        return replace(fill, price=fill.price * (1.3 if fill.side is Side.BUY else 0.7))


class HugeFee(LyingFills):
    def lie(self, fill: Fill) -> Fill:
        return replace(fill, fee=fill.fee * 1000 + 0.01)


class Oversize(LyingFills):
    def lie(self, fill: Fill) -> Fill:
        return replace(fill, amount=fill.amount * 10)


@pytest.mark.parametrize(
    ("venue", "says"), [(FarPrice, "worse than its order's limit"), (HugeFee, "risk.max_fee_rate")]
)
async def test_a_fill_beyond_its_orders_price_or_fee_is_recorded_then_trading_halts(
    tmp_path: Path, venue: type[LyingFills], says: str
) -> None:
    app = stack(tmp_path, clock=FakeClock(NOW), wrap=venue, **TIGHT)
    result = await rebalance_once(app.ctx, "BTC")
    assert result.status == "failed", result.reason
    assert says in result.reason
    fills = app.ledger.fills()
    assert fills, "the fill happened at the venue: it must be on record"
    state = app.ledger.get_trading_state()
    assert state.state is TradingState.HALTED
    assert says in state.reason
    placed = app.venue.count.placed  # type: ignore[attr-defined]
    app.clock.advance(60)
    later = await rebalance_once(app.ctx, "BTC")
    assert app.venue.count.placed == placed, later.reason  # type: ignore[attr-defined]


async def sent_behind_the_ledgers_back(app: Any) -> str:
    """An order of ours, recorded, that filled at the venue while no process read its fills
    (the process died after sending): start-up is what recovers its fill."""
    label = "hb-0123456789abcdef-1"
    req = OrderRequest(
        label=label,
        instrument_name=PERP,
        side=Side.BUY,
        amount=1000,
        order_type=OrderType.MARKET,
        time_in_force=TimeInForce.IOC,
    )
    quote = await app.venue.quote(PERP)
    app.ledger.record_order(req, cycle_id="c1", rebalance_id=None, decision_mid=quote.mid, ts=NOW)
    await app.venue.inner.place_order(req)
    return label


@pytest.mark.parametrize(
    ("venue", "says", "recorded"),
    [
        (FarPrice, "from the decision mid", True),
        (HugeFee, "risk.max_fee_rate", True),
        (Oversize, "larger than its order", False),
    ],
)
async def test_a_fill_recovered_at_start_up_passes_the_same_checks_and_halts_the_same_way(
    tmp_path: Path, venue: type[LyingFills], says: str, recorded: bool
) -> None:
    app = stack(tmp_path, clock=FakeClock(NOW), wrap=venue, **TIGHT)
    await sent_behind_the_ledgers_back(app)
    with pytest.raises(ReconciliationFailed, match=says):
        await reconcile(app.ctx, "BTC")
    state = app.ledger.get_trading_state()
    assert state.state is TradingState.HALTED
    assert says in state.reason
    assert bool(app.ledger.fills()) is recorded


async def test_an_honest_fill_recovered_at_start_up_is_recorded_without_a_halt(
    tmp_path: Path,
) -> None:
    app = stack(tmp_path, clock=FakeClock(NOW), wrap=LyingFills, **TIGHT)
    await sent_behind_the_ledgers_back(app)
    result = await reconcile(app.ctx, "BTC")
    assert result.fills_added == 1
    assert app.ledger.get_trading_state().state is TradingState.ACTIVE


def fill(price: float, fee: float = 0.0, side: Side = Side.BUY) -> Fill:
    return Fill("t1", "o1", "hb-x-1", PERP, side, 10_000, price, fee, "BTC", Liquidity.TAKER, NOW)


@pytest.mark.parametrize(
    ("f", "limit", "bad"),
    [
        (fill(100_050), 100_000, False),  # 5 bps worse: within 10 bps
        (fill(100_200), 100_000, True),
        (fill(99_000), 100_000, False),  # better than the limit
        (fill(99_800, side=Side.SELL), 100_000, True),
        (fill(100_000, fee=0.1 * 0.0005), 100_000, False),  # the taker fee
        (fill(100_000, fee=-0.1 * 0.0001), 100_000, False),  # a maker rebate
        (fill(100_000, fee=0.1 * 0.01), 100_000, True),  # 1% of 0.1 BTC notional
    ],
)
def test_the_fill_bounds_judge_price_against_the_limit_and_fee_against_the_notional(
    f: Fill, limit: float, bad: bool
) -> None:
    problem = fill_out_of_bounds(f, f.side, limit, None, inverse=True, bounds=FillBounds())
    assert (problem is not None) is bad, problem


class NanIndexFill(LyingFills):
    def lie(self, fill: Fill) -> Fill:
        return replace(fill, index_price=float("nan"))


async def test_a_fill_with_a_nan_index_price_is_recorded_without_it_not_left_unrecorded(
    tmp_path: Path,
) -> None:
    app = stack(tmp_path, clock=FakeClock(NOW), wrap=NanIndexFill, **TIGHT)
    result = await rebalance_once(app.ctx, "BTC")
    assert result.status == "traded", result.reason
    (recorded,) = app.ledger.fills()
    assert recorded.index_price is None
    assert app.ledger.open_orders() == []


def test_a_fee_charged_in_dollars_is_judged_against_the_dollar_notional() -> None:
    usd_fee = replace(fill(100_000), fee=10_000 * 0.0005, fee_currency="USDC")
    assert (
        fill_out_of_bounds(usd_fee, Side.BUY, 100_000, None, inverse=True, bounds=FillBounds())
        is None
    )
    too_much = replace(usd_fee, fee=10_000 * 0.02)
    problem = fill_out_of_bounds(
        too_much, Side.BUY, 100_000, None, inverse=True, bounds=FillBounds()
    )
    assert problem is not None
    assert "USDC" in problem


class ReportedTwice(LyingFills):
    """Every trade comes back twice under two trade ids: each fill fits its order, the sum not."""

    async def fills(self, currency: str, since: datetime | None = None) -> Any:
        out: list[Fill] = []
        for fill in await self.inner.fills(currency, since):
            out += [fill, replace(fill, trade_id=f"{fill.trade_id}-again")]
        return out


async def test_fills_that_add_up_to_more_than_their_order_are_recorded_then_trading_halts(
    tmp_path: Path,
) -> None:
    app = stack(tmp_path, clock=FakeClock(NOW), wrap=ReportedTwice, **TIGHT)
    result = await rebalance_once(app.ctx, "BTC")
    assert result.status == "failed", result.reason
    assert "add up to" in result.reason
    assert len(app.ledger.fills()) == 2, "both were reported: both are on record"
    assert app.ledger.get_trading_state().state is TradingState.HALTED
    placed = app.venue.count.placed  # type: ignore[attr-defined]
    app.clock.advance(60)
    later = await rebalance_once(app.ctx, "BTC")
    assert app.venue.count.placed == placed, later.reason  # type: ignore[attr-defined]
