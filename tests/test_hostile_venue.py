"""A hostile venue lies about the facts that size and price the hedge order: each lie is a
recorded skip, never an order and never a traceback out of the cycle."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from bot.clock import FakeClock
from bot.cycle import rebalance_once
from bot.domain import Account, InstrumentKind, Position, RebalanceStatus, Side, TradingState
from tests.support.books import NOW
from tests.support.harness import CountingVenue, stack

TIGHT = {
    "policy": {"kind": "delta_band", "delta_band": {"band": 0.05}},
    "hedge": {"target_delta": 0.5},
}
PERP = "BTC-PERPETUAL"


def _lie_inst(field: str, value: Any) -> type:
    class V(CountingVenue):
        def fix(self, p: Position) -> Position:
            if p.instrument.name == PERP:
                return replace(p, instrument=replace(p.instrument, **{field: value}))
            return p

        async def positions(self, currency: str) -> list[Position]:
            return [self.fix(p) for p in await self.inner.positions(currency)]

        async def instruments(self, currency: str) -> Any:
            out = []
            for i in await self.inner.instruments(currency):
                out.append(replace(i, **{field: value}) if i.name == PERP else i)
            return out

    return V


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount_step", 0.0),
        ("amount_step", float("nan")),
        ("min_amount", float("nan")),
        ("contract_size", float("nan")),
        ("contract_size", 0.0),
        ("tick_size", 0.0),
        ("tick_size", -1.0),
        ("tick_size", float("nan")),
        ("amount_step", "10"),
        ("expiry", NOW - timedelta(days=1)),
        ("kind", InstrumentKind.OPTION),
    ],
)
async def test_a_hedge_listed_with_a_bad_lot_tick_or_contract_size_or_expired_is_a_skip(
    tmp_path: Path, field: str, value: Any
) -> None:
    app = stack(tmp_path, clock=FakeClock(NOW), wrap=_lie_inst(field, value), **TIGHT)
    result = await rebalance_once(app.ctx, "BTC")
    assert result.status is RebalanceStatus.SKIPPED
    assert field in result.reason or "expired" in result.reason or "option" in result.reason
    assert app.venue.count.placed == 0
    assert app.ledger.last_rebalances(1)[0].status is RebalanceStatus.SKIPPED


class EquityString(CountingVenue):
    async def account(self, currency: str) -> Account:
        a = await self.inner.account(currency)
        return replace(a, equity="1e9")  # type: ignore[arg-type]


class HugeDelta(CountingVenue):
    async def account(self, currency: str) -> Account:
        a = await self.inner.account(currency)
        return replace(a, delta_total=float("inf"))


class NegSize(CountingVenue):
    async def positions(self, currency: str) -> list[Position]:
        return [replace(p, size=float("nan")) for p in await self.inner.positions(currency)]


@pytest.mark.parametrize("wrap", [EquityString, HugeDelta, NegSize])
async def test_a_string_equity_an_infinite_delta_total_or_a_nan_size_is_a_skip(
    tmp_path: Path, wrap: Any
) -> None:
    app = stack(tmp_path, clock=FakeClock(NOW), wrap=wrap, **TIGHT)
    result = await rebalance_once(app.ctx, "BTC")
    assert result.status is RebalanceStatus.SKIPPED
    assert app.venue.count.placed == 0


class QuotesAnotherInstrument(CountingVenue):
    """Asked for the BTC perpetual, answers with the ETH perpetual's book (its own index)."""

    async def quote(self, instrument_name: str) -> Any:
        eth = await self.inner.quote("ETH-PERPETUAL")
        return eth


async def test_a_quote_for_another_instrument_than_the_hedge_is_a_skip(tmp_path: Path) -> None:
    app = stack(
        tmp_path,
        clock=FakeClock(NOW),
        wrap=QuotesAnotherInstrument,
        venue={"currencies": ["BTC", "ETH"]},
        **TIGHT,
    )
    result = await rebalance_once(app.ctx, "BTC")
    assert result.status is RebalanceStatus.SKIPPED, result.reason
    assert "ETH-PERPETUAL" in result.reason
    assert app.venue.count.placed == 0


class AnswersWithTheEthAccount(CountingVenue):
    async def account(self, currency: str) -> Account:
        return await self.inner.account("ETH")


async def test_an_account_summary_of_another_currency_is_a_skip(tmp_path: Path) -> None:
    app = stack(
        tmp_path,
        clock=FakeClock(NOW),
        wrap=AnswersWithTheEthAccount,
        venue={"currencies": ["BTC", "ETH"]},
        risk={"delta_tolerance_coin": {"BTC": 100.0, "ETH": 100.0}},
        **TIGHT,
    )
    result = await rebalance_once(app.ctx, "BTC")
    assert result.status is RebalanceStatus.SKIPPED, result.reason
    assert "'ETH'" in result.reason
    assert app.venue.count.placed == 0


def _fills_lie(field: str, value: Any) -> type:
    class V(CountingVenue):
        async def fills(self, currency: str, since: Any = None) -> Any:
            return [replace(f, **{field: value}) for f in await self.inner.fills(currency, since)]

    return V


@pytest.mark.parametrize(
    ("field", "value"),
    [("instrument_name", "ETH-PERPETUAL"), ("side", Side.SELL), ("fee", float("nan"))],
)
async def test_a_fill_of_another_instrument_or_side_or_with_a_nan_fee_halts_unrecorded(
    tmp_path: Path, field: str, value: Any
) -> None:
    app = stack(tmp_path, clock=FakeClock(NOW), wrap=_fills_lie(field, value), **TIGHT)
    result = await rebalance_once(app.ctx, "BTC")
    assert result.status is not RebalanceStatus.TRADED, result.reason
    assert app.ledger.get_trading_state().state is TradingState.HALTED
    assert app.ledger.fills() == []


class QuotesGarbageMidChase(CountingVenue):
    """Honest on the cycle's read; every later quote of the chase is ten times the market."""

    reads = 0

    async def quote(self, instrument_name: str) -> Any:
        q = await self.inner.quote(instrument_name)
        self.reads += 1
        return (
            q if self.reads == 1 else replace(q, bid=q.bid * 10, ask=q.ask * 10, mark=q.mark * 10)
        )

    async def place_order(self, request: Any) -> Any:
        self.prices = [*getattr(self, "prices", []), request.price]
        return await super().place_order(request)


async def test_a_quote_refreshed_mid_chase_far_from_the_first_never_prices_an_order(
    tmp_path: Path,
) -> None:
    app = stack(
        tmp_path,
        clock=FakeClock(NOW),
        wrap=QuotesGarbageMidChase,
        execution={"post_only": True, "urgent_band_multiple": 100.0},
        **TIGHT,
    )
    first = app.venue.inner
    book_quote = await first.quote(PERP)
    await rebalance_once(app.ctx, "BTC")
    prices = [p for p in app.venue.prices if p is not None]
    assert prices, "the chase sent no priced order"
    assert all(p < book_quote.ask * 1.5 for p in prices), prices


def _order_lie(field: str, value: Any) -> type:
    class V(CountingVenue):
        async def place_order(self, request: Any) -> Any:
            return replace(await super().place_order(request), **{field: value})

    return V


@pytest.mark.parametrize(
    ("field", "value"),
    [("label", "hb-other"), ("filled_amount", "10"), ("filled_amount", -1.0), ("side", Side.SELL)],
)
async def test_an_order_answer_about_another_order_or_with_a_bad_filled_amount_halts(
    tmp_path: Path, field: str, value: Any
) -> None:
    app = stack(tmp_path, clock=FakeClock(NOW), wrap=_order_lie(field, value), **TIGHT)
    result = await rebalance_once(app.ctx, "BTC")
    assert result.status is RebalanceStatus.FAILED, result.reason
    assert field.split("_")[0] in result.reason
    assert app.ledger.get_trading_state().state is TradingState.HALTED
    assert app.venue.count.placed == 1


class CancelAnswersAnotherOrder(CountingVenue):
    """The resting order's cancel is answered with a state of another order, filled."""

    async def cancel_order(self, venue_order_id: str) -> Any:
        state = await self.inner.cancel_order(venue_order_id)
        return replace(state, label="hb-someone-else", filled_amount=state.amount)


async def test_a_cancel_answered_about_another_order_halts_and_sizes_nothing_on_it(
    tmp_path: Path,
) -> None:
    app = stack(
        tmp_path,
        clock=FakeClock(NOW),
        wrap=CancelAnswersAnotherOrder,
        execution={"post_only": True, "urgent_band_multiple": 100.0},
        **TIGHT,
    )
    result = await rebalance_once(app.ctx, "BTC")
    assert result.status is RebalanceStatus.FAILED, result.reason
    assert "not one of ours" in result.reason
    assert app.ledger.get_trading_state().state is TradingState.HALTED
    assert app.venue.count.placed == 1


def _chase_quotes(shift_seconds: float) -> type:
    class V(QuotesGarbageMidChase):
        """Honest on the cycle's read; later quotes 1% lower and stamped ``shift_seconds``
        away from the truth (an old cached touch, or a clock far ahead)."""

        async def quote(self, instrument_name: str) -> Any:
            q = await self.inner.quote(instrument_name)
            self.reads += 1
            if self.reads == 1:
                return q
            return replace(
                q,
                bid=round(q.bid * 0.99, 1),
                ask=round(q.ask * 0.99, 1),
                timestamp=q.timestamp + timedelta(seconds=shift_seconds),
            )

    return V


@pytest.mark.parametrize("shift", [-3600.0, 3600.0])
async def test_a_stale_or_future_stamped_quote_refreshed_mid_chase_never_prices_an_order(
    tmp_path: Path, shift: float
) -> None:
    app = stack(
        tmp_path,
        clock=FakeClock(NOW),
        wrap=_chase_quotes(shift),
        execution={"post_only": True, "urgent_band_multiple": 100.0},
        **TIGHT,
    )
    book_quote = await app.venue.inner.quote(PERP)
    with capture_logs() as logs:
        await rebalance_once(app.ctx, "BTC")
    prices = [p for p in app.venue.prices if p is not None]
    assert len(prices) >= 2, "the chase re-priced no order"
    assert all(p >= book_quote.bid * 0.998 for p in prices), prices
    assert any(e["event"] == "quote_refresh_refused" for e in logs)
