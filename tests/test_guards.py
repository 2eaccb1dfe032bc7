"""Never a wrong trade on a bad read (issue 12, dangers 1, 2 and 6): each read that does not add
up is a recorded skip, N in a row halt, and no order is ever sized on it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from bot.app import build_app
from bot.clock import FakeClock
from bot.cycle import rebalance_once
from bot.domain import Account, Fill, OptionType, Position, RebalanceStatus, TradingState
from bot.greeks import portfolio_greeks
from tests.support.books import NOW, book, option
from tests.support.harness import CountingVenue, stack

TIGHT = {
    "policy": {"kind": "delta_band", "delta_band": {"band": 0.05}},
    "hedge": {"target_delta": 0.5},
}
PERP = "BTC-PERPETUAL"


class Lies(CountingVenue):
    """Honest for ``honest`` cycles' reads, then lies in the way a subclass says."""

    honest = 1

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.lying = False

    async def positions(self, currency: str) -> list[Position]:
        if self.honest > 0:
            self.honest -= 1
        else:
            self.lying = True
        real = await self.inner.positions(currency)
        return self.lie_positions(real) if self.lying else real

    async def account(self, currency: str) -> Account:
        real = await self.inner.account(currency)
        return await self.lie_account(real, currency) if self.lying else real

    def lie_positions(self, real: list[Position]) -> list[Position]:
        return real

    async def lie_account(self, real: Account, currency: str) -> Account:
        return real


class NoPerpNoDeltaTotal(Lies):
    """Deribit's partial read: positions without the perpetual, a summary without delta_total."""

    def lie_positions(self, real: list[Position]) -> list[Position]:
        return [p for p in real if p.instrument.name != PERP]

    async def lie_account(self, real: Account, currency: str) -> Account:
        return replace(real, delta_total=None)


class NoPerpConsistentDelta(Lies):
    """The perpetual is missing and delta_total agrees with the missing read: only the ledger
    can tell."""

    def lie_positions(self, real: list[Position]) -> list[Position]:
        return [p for p in real if p.instrument.name != PERP]

    async def lie_account(self, real: Account, currency: str) -> Account:
        held = [p for p in await self.inner.positions(currency) if p.instrument.name == PERP]
        quote = await self.inner.quote(PERP)
        perp_delta = sum(p.size for p in held) / quote.mark
        return replace(real, delta_total=(real.delta_total or 0.0) - perp_delta)


async def run(app: Any, cycles: int) -> list[Any]:
    results = []
    for _ in range(cycles):
        results.append(await rebalance_once(app.ctx, "BTC"))
        app.clock.advance(60)
    return results


async def test_a_partial_position_read_without_delta_total_never_sizes_a_hedge_and_halts(
    tmp_path: Path,
) -> None:
    settings = {**TIGHT, "risk": {"halt_after_bad_reads": 3}}
    app = stack(tmp_path, clock=FakeClock(NOW), wrap=NoPerpNoDeltaTotal, **settings)
    first = await rebalance_once(app.ctx, "BTC")
    assert first.status is RebalanceStatus.TRADED, first.reason
    placed = app.venue.count.placed
    with capture_logs() as logs:
        later = await run(app, 4)
    assert app.venue.count.placed == placed  # no runaway buys
    assert all(r.status is RebalanceStatus.SKIPPED for r in later)
    assert "delta_total" in later[0].reason
    assert "trading halted" in later[2].reason
    assert app.ledger.get_trading_state().state is TradingState.HALTED
    assert any(e["event"] == "trading_halted" for e in logs)
    rows = app.ledger.last_rebalances(4)
    assert all(r.status is RebalanceStatus.SKIPPED for r in rows)


async def test_a_read_missing_the_hedge_is_refused_by_the_ledger_even_when_the_delta_agrees(
    tmp_path: Path,
) -> None:
    app = stack(tmp_path, clock=FakeClock(NOW), wrap=NoPerpConsistentDelta, **TIGHT)
    first = await rebalance_once(app.ctx, "BTC")
    assert first.status is RebalanceStatus.TRADED, first.reason
    placed = app.venue.count.placed
    app.clock.advance(60)
    second = await rebalance_once(app.ctx, "BTC")
    assert second.status is RebalanceStatus.SKIPPED
    assert "ledger expects" in second.reason
    assert app.venue.count.placed == placed


class BadEquity(Lies):
    equity = 0.0

    async def lie_account(self, real: Account, currency: str) -> Account:
        return replace(real, equity=self.equity)


USD = {"hedge": {"target_mode": "usd"}, "policy": {"delta_band": {"band": 0.05}}}


@pytest.mark.parametrize("equity", [0.0, -5.0, 1_000.0, 40.0])
async def test_a_bad_equity_read_in_usd_mode_is_a_recorded_skip_not_an_order(
    tmp_path: Path, equity: float
) -> None:
    lying = type("Equity", (BadEquity,), {"equity": equity})
    app = stack(tmp_path, clock=FakeClock(NOW), wrap=lying, **USD)
    first = await rebalance_once(app.ctx, "BTC")
    assert first.status is RebalanceStatus.TRADED, first.reason
    placed = app.venue.count.placed
    app.clock.advance(60)
    second = await rebalance_once(app.ctx, "BTC")
    assert second.status is RebalanceStatus.SKIPPED
    assert "equity" in second.reason
    assert app.venue.count.placed == placed
    assert app.ledger.last_rebalances(1)[0].reason == second.reason


@pytest.mark.parametrize("settings", [USD, TIGHT], ids=["usd", "coin"])
async def test_an_honest_book_keeps_hedging_over_a_day_of_price_moves_with_no_false_alarm(
    tmp_path: Path, settings: dict[str, Any]
) -> None:
    app = stack(tmp_path, clock=FakeClock(NOW), wrap=CountingVenue, **settings)
    results = []
    for _ in range(24):
        results.append(await rebalance_once(app.ctx, "BTC"))
        app.clock.advance(3600)
    skipped = [r.reason for r in results if r.status is RebalanceStatus.SKIPPED]
    assert skipped == []
    assert any(r.status is RebalanceStatus.TRADED for r in results)


class FarFromIndex(Lies):
    honest = 0

    async def quote(self, instrument_name: str) -> Any:
        q = await self.inner.quote(instrument_name)
        half = q.index_price / 2
        return replace(q, bid=half - 0.5, ask=half + 0.5, mark=half)


class FromTheFuture(Lies):
    honest = 0
    ahead = 60.0

    async def quote(self, instrument_name: str) -> Any:
        q = await self.inner.quote(instrument_name)
        return replace(q, timestamp=q.timestamp + timedelta(seconds=self.ahead))


@pytest.mark.parametrize(
    ("venue", "words"),
    [(FarFromIndex, "from the index"), (FromTheFuture, "in the future")],
)
async def test_a_perpetual_quoted_far_from_the_index_or_stamped_in_the_future_is_refused(
    tmp_path: Path, venue: Any, words: str
) -> None:
    app = stack(tmp_path, clock=FakeClock(NOW), wrap=venue, **TIGHT)
    result = await rebalance_once(app.ctx, "BTC")
    assert result.status is RebalanceStatus.SKIPPED
    assert words in result.reason
    assert app.venue.count.placed == 0


async def test_a_quote_a_second_ahead_of_our_clock_is_within_tolerance(tmp_path: Path) -> None:
    slightly = type("Slightly", (FromTheFuture,), {"ahead": 1.0})
    app = stack(tmp_path, clock=FakeClock(NOW), wrap=slightly, **TIGHT)
    result = await rebalance_once(app.ctx, "BTC")
    assert result.status is RebalanceStatus.TRADED, result.reason


class HugeFill(CountingVenue):
    async def fills(self, currency: str, since: datetime | None = None) -> list[Fill]:
        return [replace(f, amount=1e18) for f in await self.inner.fills(currency, since)]


async def test_a_fill_larger_than_its_order_halts_trading_and_is_not_recorded(
    tmp_path: Path,
) -> None:
    app = stack(tmp_path, clock=FakeClock(NOW), wrap=HugeFill, **TIGHT)
    with capture_logs() as logs:
        result = await rebalance_once(app.ctx, "BTC")
    assert result.status is RebalanceStatus.FAILED
    assert "larger than its order" in result.reason
    assert app.ledger.last_rebalances(1)[0].status is RebalanceStatus.FAILED
    assert app.ledger.fills() == []
    assert app.ledger.get_trading_state().state is TradingState.HALTED
    assert any(e["event"] == "trading_halted" for e in logs)
    app.clock.advance(60)
    again = await rebalance_once(app.ctx, "BTC")
    assert again.status is not RebalanceStatus.TRADED
    assert app.venue.count.placed == 1


class DeltaOff(Lies):
    """The venue's delta_total differs from ours by ``off`` coin."""

    honest = 0
    off = 0.3

    async def lie_account(self, real: Account, currency: str) -> Account:
        return replace(real, delta_total=(real.delta_total or 0.0) + self.off)


async def test_a_delta_breach_names_both_figures_and_what_the_daemon_did_then_halts(
    tmp_path: Path,
) -> None:
    settings = {**TIGHT, "risk": {"halt_after_bad_reads": 2}}
    app = stack(tmp_path, clock=FakeClock(NOW), wrap=DeltaOff, **settings)
    first, second = await run(app, 2)
    assert first.greeks is not None
    assert f"local {first.greeks.delta_coin:+.4f}" in first.reason
    assert "vs venue" in first.reason
    assert "allowed" in first.reason
    assert "cycle skipped (1 of 2" in first.reason
    assert "trading halted" in second.reason
    assert app.venue.count.placed == 0


@pytest.mark.parametrize(("off", "skipped"), [(0.01, False), (0.3, True)])
async def test_the_delta_tolerance_is_in_coin_plus_a_fraction_of_gross_option_delta(
    tmp_path: Path, off: float, skipped: bool
) -> None:
    # Default BTC tolerance 0.02 coin + 2% of the book's gross option delta (a few coin).
    lying = type("Off", (DeltaOff,), {"off": off})
    app = stack(tmp_path, clock=FakeClock(NOW), wrap=lying, **TIGHT)
    result = await rebalance_once(app.ctx, "BTC")
    assert (result.status is RebalanceStatus.SKIPPED) is skipped, result.reason


async def test_an_order_above_max_order_usd_is_clipped_and_the_rest_follows_in_later_cycles(
    tmp_path: Path,
) -> None:
    settings = {**TIGHT, "risk": {"max_order_usd": 10_000}}
    app = stack(tmp_path, clock=FakeClock(NOW), wrap=CountingVenue, **settings)
    results = []
    while len(results) < 30 and (not results or results[-1].status is RebalanceStatus.TRADED):
        results += await run(app, 1)
    traded = [r for r in results if r.status is RebalanceStatus.TRADED]
    assert len(traded) >= 2
    assert all(abs(r.decision.trade_amount) <= 10_000 for r in traded)
    assert results[-1].status is RebalanceStatus.NO_TRADE, results[-1].reason
    assert all(o.amount <= 10_000 for o in app.ledger.orders())


def test_the_gross_option_delta_adds_the_size_of_each_options_delta_whatever_its_sign() -> None:
    call, put = option(90_000, OptionType.CALL), option(90_000, OptionType.PUT)
    one_call = portfolio_greeks(book(options=((call, -5.0, 0.5),)), NOW)
    one_put = portfolio_greeks(book(options=((put, -5.0, 0.5),)), NOW)
    both = portfolio_greeks(book(options=((call, -5.0, 0.5), (put, -5.0, 0.5))), NOW)
    gross = abs(one_call.options_delta_net) + abs(one_put.options_delta_net)
    assert both.options_delta_gross == pytest.approx(gross)
    assert both.options_delta_gross > abs(both.options_delta_net)


async def test_bad_reads_in_a_row_halt_across_a_restart_of_the_process(tmp_path: Path) -> None:
    settings = {**TIGHT, "risk": {"halt_after_bad_reads": 3}}
    app = stack(tmp_path, clock=FakeClock(NOW), wrap=DeltaOff, **settings)
    _, second = await run(app, 2)
    assert "(2 of 3" in second.reason
    restarted = build_app(app.settings, paper=True, clock=app.clock, venue=app.venue)
    (third,) = await run(restarted, 1)
    assert "3 implausible BTC reads in a row" in third.reason
    assert restarted.ledger.get_trading_state().state is TradingState.HALTED
    assert app.venue.count.placed == 0
