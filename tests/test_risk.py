"""The risk gate: every limit denies, a halted state denies, a failing guard fails closed; the
caps are counted from the ledger, so a restart does not reset them."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from bot.clock import FakeClock
from bot.config import RiskSettings
from bot.domain import (
    Fill,
    HedgeDecision,
    Liquidity,
    OrderRequest,
    OrderState,
    OrderStatus,
    OrderType,
    RebalanceStatus,
    Side,
    TradingState,
)
from bot.greeks import portfolio_greeks
from bot.risk import BAD_READ, FillExceedsOrder, RiskGate, check_fill
from bot.store.db import open_ledger
from bot.store.ledger import GreeksSnapshot, Ledger, RebalanceRecord
from bot.store.risk_reads import RiskReads
from tests.support.books import NOW, book


def decision(amount: float) -> HedgeDecision:
    return HedgeDecision(amount, amount / 90_000, 0.5, 0.0, -0.1, 0.1, "outside_band", "delta_band")


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return open_ledger(f"sqlite:///{tmp_path}/risk.db", create=True)


def gate(
    ledger: Ledger, state: TradingState = TradingState.ACTIVE, **limits: Any
) -> tuple[RiskGate, FakeClock]:
    clock = FakeClock(NOW)
    if state is not TradingState.ACTIVE:
        ledger.set_trading_state(state, "test", NOW - timedelta(hours=1))
    return RiskGate(RiskSettings(**limits), clock, ledger), clock


def record_order(ledger: Ledger, clock: FakeClock, n: int, amount: float = 100.0) -> str:
    label = f"hb-test-{n}"
    req = OrderRequest(label, "BTC-PERPETUAL", Side.SELL, amount, OrderType.LIMIT, 90_000.0)
    ledger.record_order(req, cycle_id="c", rebalance_id=None, decision_mid=90_000.0, ts=clock.now())
    return label


def test_an_order_within_every_limit_is_allowed(ledger: Ledger) -> None:
    g, _ = gate(ledger)
    verdict = g.check(decision(-45_000), book())
    assert verdict.allowed
    assert verdict.decision == decision(-45_000)


def test_an_order_above_the_notional_limit_is_clipped_to_it_by_default(ledger: Ledger) -> None:
    g, _ = gate(ledger, max_order_usd=10_000)
    with capture_logs() as logs:
        verdict = g.check(decision(-45_000), book())
    assert verdict.allowed
    assert verdict.decision is not None
    assert verdict.decision.trade_amount == -10_000
    assert verdict.decision.trade_delta == pytest.approx(-10_000 / 90_000)
    assert any("clipped" in w for w in verdict.decision.warnings)
    assert any(e["event"] == "order_clipped" for e in logs)


def test_a_clip_lands_on_the_instruments_step(ledger: Ledger) -> None:
    g, _ = gate(ledger, max_order_usd=10_005)
    verdict = g.check(decision(45_000), book())
    assert verdict.decision is not None
    assert verdict.decision.trade_amount == 10_000


def test_an_order_above_the_notional_limit_is_denied_when_the_settings_say_deny(
    ledger: Ledger,
) -> None:
    g, _ = gate(ledger, max_order_usd=10_000, oversize="deny")
    verdict = g.check(decision(-45_000), book())
    assert not verdict.allowed
    assert "exceeds max" in verdict.reason


def test_a_max_order_below_the_instruments_minimum_denies_instead_of_clipping_to_zero(
    ledger: Ledger,
) -> None:
    g, _ = gate(ledger, max_order_usd=5)
    verdict = g.check(decision(-45_000), book())
    assert not verdict.allowed
    assert "minimum" in verdict.reason


def test_an_unlimited_order_cap_lets_a_large_order_through_unclipped(ledger: Ledger) -> None:
    g, _ = gate(
        ledger,
        max_order_usd="unlimited",
        max_position_usd="unlimited",
        max_daily_notional_usd="unlimited",
    )
    verdict = g.check(decision(-150_000_000), book())
    assert verdict.allowed
    assert verdict.decision is not None
    assert verdict.decision.trade_amount == -150_000_000


def test_an_order_growing_the_position_past_its_limit_is_denied_but_reducing_it_is_not(
    ledger: Ledger,
) -> None:
    g, _ = gate(ledger, max_position_usd=50_000)
    assert not g.check(decision(-20_000), book(hedge=-40_000)).allowed
    assert g.check(decision(20_000), book(hedge=-80_000)).allowed


def test_the_position_cap_holds_for_the_ledgers_view_when_the_read_misses_the_hedge(
    ledger: Ledger,
) -> None:
    # The read lost the perpetual (position 0), the ledger knows we hold -40,000.
    g, _ = gate(ledger, max_position_usd=50_000)
    verdict = g.check(decision(-20_000), book(hedge=0.0), ledger_position=-40_000)
    assert not verdict.allowed
    assert "by the ledger" in verdict.reason


def test_halted_trading_denies_everything(ledger: Ledger) -> None:
    g, _ = gate(ledger, TradingState.HALTED)
    verdict = g.check(decision(10), book())
    assert not verdict.allowed
    assert "halted" in verdict.reason


def test_reducing_state_allows_only_orders_that_shrink_the_hedge(ledger: Ledger) -> None:
    g, _ = gate(ledger, TradingState.REDUCING)
    assert g.check(decision(10_000), book(hedge=-40_000)).allowed
    assert not g.check(decision(-10_000), book(hedge=-40_000)).allowed


def test_stale_book_is_denied(ledger: Ledger) -> None:
    g, clock = gate(ledger, max_data_age_seconds=30)
    b = book()
    clock.advance(31)
    verdict = g.check(decision(-100), b)
    assert not verdict.allowed
    assert "old" in verdict.reason


def test_order_rate_is_counted_from_the_ledger_and_recovers_after_a_minute(
    ledger: Ledger,
) -> None:
    g, clock = gate(ledger, max_orders_per_minute=2)
    for n in range(2):
        assert g.check(decision(-100), book(as_of=clock.now())).allowed
        record_order(ledger, clock, n)
    assert not g.rate_ok()
    assert not g.check(decision(-100), book(as_of=clock.now())).allowed
    clock.advance(61)
    assert g.check(decision(-100), book(as_of=clock.now())).allowed


def test_a_restart_does_not_reset_the_order_rate_cap(ledger: Ledger) -> None:
    _g, clock = gate(ledger, max_orders_per_minute=2)
    for n in range(2):
        record_order(ledger, clock, n)
    restarted = RiskGate(RiskSettings(max_orders_per_minute=2), clock, ledger)
    verdict = restarted.check(decision(-100), book(as_of=clock.now()))
    assert not verdict.allowed
    assert "rate" in verdict.reason


def test_the_daily_notional_cap_counts_the_ledgers_orders_of_the_last_24_hours(
    ledger: Ledger,
) -> None:
    g, clock = gate(ledger, max_daily_notional_usd=100_000)
    open_label = record_order(ledger, clock, 1, amount=60_000)  # may still fill: counts whole
    filled = record_order(ledger, clock, 2, amount=50_000)
    state = OrderState(
        filled, "v2", "BTC-PERPETUAL", Side.SELL, 50_000, 30_000, OrderStatus.CANCELLED,
        90_000.0, 90_000.0, OrderType.LIMIT, clock.now(),
    )  # fmt: skip
    ledger.update_order(filled, state, clock.now())
    assert ledger.order(open_label) is not None
    verdict = g.check(decision(-20_000), book(as_of=clock.now()))
    assert not verdict.allowed  # 60,000 open + 30,000 filled + 20,000 > 100,000
    assert "24 hours" in verdict.reason
    assert g.check(decision(-10_000), book(as_of=clock.now())).allowed
    clock.advance(24 * 3600 + 1)
    assert g.check(decision(-20_000), book(as_of=clock.now())).allowed


def test_a_guard_that_raises_denies_the_order(tmp_path: Path) -> None:
    class Unreadable(Ledger):
        def risk_reads(
            self, currency: str, instrument: str, rate_since: datetime, notional_since: datetime
        ) -> RiskReads:
            raise RuntimeError("state table unreadable")

    ledger = open_ledger(f"sqlite:///{tmp_path}/x.db", create=True)
    g = RiskGate(RiskSettings(), FakeClock(NOW), Unreadable(ledger.engine))
    verdict = g.check(decision(-100), book())
    assert not verdict.allowed
    assert "unreadable" in verdict.reason


@pytest.mark.parametrize("amount", [1e12, -1e12])
def test_absurd_orders_never_pass_whole(ledger: Ledger, amount: float) -> None:
    g, _ = gate(ledger, oversize="deny")
    assert not g.check(decision(amount), book()).allowed
    clipping, _ = gate(ledger)
    verdict = clipping.check(decision(amount), book())
    assert verdict.decision is None or abs(verdict.decision.trade_amount) <= 2_000_000


def test_book_age_uses_the_clock_not_the_wall(ledger: Ledger) -> None:
    g, _ = gate(ledger, max_data_age_seconds=30)
    b = book(as_of=NOW - timedelta(seconds=29))
    assert g.check(decision(-100), b).allowed


def test_a_nan_trade_is_denied(ledger: Ledger) -> None:
    g, _ = gate(ledger)
    verdict = g.check(decision(float("nan")), book())
    assert not verdict.allowed
    assert "not a number" in verdict.reason


def skipped(ledger: Ledger, reason: str, n: int, *, read_ok: bool = False) -> None:
    """Record a cycle's rebalance row (a bad-read skip, or with ``read_ok`` a read that passed
    and wrote its greeks snapshot), as the cycle does."""
    cycle = f"c{n}"
    status = RebalanceStatus.NO_TRADE if read_ok else RebalanceStatus.SKIPPED
    rec = RebalanceRecord(
        cycle_id=cycle,
        ts=NOW,
        currency="BTC",
        mode="daemon",
        policy="delta_band",
        target_mode="coin",
        status=status,
        reason=reason,
    )
    ledger.record_rebalance(rec)
    if read_ok:
        g = portfolio_greeks(book(), NOW)
        ledger.record_greeks(GreeksSnapshot.of(g, cycle_id=cycle, ts=NOW, hedge_position=0.0))


def test_n_implausible_reads_in_a_row_halt_trading_and_say_so(ledger: Ledger) -> None:
    g, _ = gate(ledger, halt_after_bad_reads=3)
    skipped(ledger, note := g.read_failed("BTC", "a"), 1)
    assert "skipped (1 of 3" in note
    skipped(ledger, "", 2, read_ok=True)  # a good read in between resets the count
    skipped(ledger, note := g.read_failed("BTC", "b"), 3)
    assert "skipped (1 of 3" in note
    skipped(ledger, "orders of unknown outcome pending: x", 4)  # neither good nor bad
    skipped(ledger, note := g.read_failed("BTC", "c"), 5)
    assert "skipped (2 of 3" in note
    assert ledger.get_trading_state().state is TradingState.ACTIVE
    with capture_logs() as logs:
        note = g.read_failed("BTC", "d")
    assert "3 implausible BTC reads in a row" in note
    state = ledger.get_trading_state()
    assert state.state is TradingState.HALTED
    assert "3 implausible" in state.reason
    assert any(e["event"] == "trading_halted" for e in logs)


def test_the_bad_read_streak_survives_a_restart_because_it_is_counted_from_the_ledger(
    ledger: Ledger,
) -> None:
    first, _ = gate(ledger, halt_after_bad_reads=3)
    skipped(ledger, first.read_failed("BTC", "a"), 1)
    skipped(ledger, first.read_failed("BTC", "b"), 2)
    restarted, _ = gate(ledger, halt_after_bad_reads=3)  # a new process, nothing in memory
    note = restarted.read_failed("BTC", "c")
    assert "3 implausible BTC reads in a row" in note
    assert ledger.get_trading_state().state is TradingState.HALTED
    assert ledger.bad_read_streak("BTC", BAD_READ) == 2
    assert ledger.bad_read_streak("ETH", BAD_READ) == 0  # each currency has its own streak


FILL = Fill(
    "t1", "v1", "hb-x-1", "BTC-PERPETUAL", Side.BUY, 5_340.0, 90_000.0, 0.0, "BTC",
    Liquidity.TAKER, NOW,
)  # fmt: skip


@pytest.mark.parametrize(
    ("amount", "price"),
    [(1e18, 90_000.0), (5_350.0, 90_000.0), (float("nan"), 90_000.0), (-10.0, 90_000.0),
     (5_340.0, float("inf")), (5_340.0, 0.0), ("5340", 90_000.0)],
)  # fmt: skip
def test_a_fill_larger_than_its_order_or_not_a_positive_number_is_refused(
    amount: Any, price: Any
) -> None:
    with pytest.raises(FillExceedsOrder):
        check_fill(replace(FILL, amount=amount, price=price), order_amount=5_340.0)


def test_a_fill_of_its_whole_order_passes() -> None:
    check_fill(FILL, order_amount=5_340.0)


def test_an_operators_resume_starts_the_bad_read_streak_afresh(ledger: Ledger) -> None:
    g, clock = gate(ledger, halt_after_bad_reads=2)
    skipped(ledger, g.read_failed("BTC", "a"), 1)
    assert "2 implausible" in g.read_failed("BTC", "b")
    skipped(ledger, "implausible read: b", 2)
    clock.advance(60)
    ledger.set_trading_state(TradingState.ACTIVE, "resumed by the operator", clock.now())
    clock.advance(60)
    assert "skipped (1 of 2" in g.read_failed("BTC", "c")


def test_risk_reads_in_one_statement_agree_with_the_separate_queries(ledger: Ledger) -> None:
    g, clock = gate(ledger)
    record_order(ledger, clock, 1, amount=60_000)
    clock.advance(120)
    record_order(ledger, clock, 2, amount=50_000)
    ledger.set_trading_state(TradingState.REDUCING, "test", clock.now(), scope="BTC")
    minute_ago, day_ago = clock.now() - timedelta(minutes=1), clock.now() - timedelta(days=1)
    reads = ledger.risk_reads("BTC", "BTC-PERPETUAL", minute_ago, day_ago)
    assert reads.orders_since == ledger.orders_created_since(minute_ago) == 1
    assert reads.ordered_amount == ledger.ordered_amount_since(day_ago, "BTC-PERPETUAL") == 110_000
    assert reads.state is ledger.get_trading_state().state is TradingState.ACTIVE
    assert reads.currency_state is TradingState.REDUCING
    assert ledger.risk_reads("ETH", "ETH-PERPETUAL", minute_ago, day_ago).ordered_amount == 0.0
    assert g.state("BTC") is TradingState.REDUCING


def test_a_book_replaced_with_other_positions_sums_its_own_hedge_position() -> None:
    held = book(hedge=30_000.0)
    assert held.hedge_position() == held.hedge_position() == 30_000.0  # summed once, kept
    more = replace(held, positions=(*held.positions, *book(hedge=20_000.0).positions))
    assert more.hedge_position() == 50_000.0
    assert replace(held, positions=()).hedge_position() == 0.0
