"""The risk gate: every limit denies, a halted state denies, a failing guard fails closed."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.clock import FakeClock
from bot.config import RiskSettings
from bot.domain import HedgeDecision
from bot.risk import RiskGate
from bot.store.records import TradingState
from tests.support.books import NOW, book


def decision(amount: float) -> HedgeDecision:
    return HedgeDecision(amount, amount / 90_000, 0.5, 0.0, -0.1, 0.1, "outside_band", "delta_band")


def gate(state: TradingState = TradingState.ACTIVE, **limits: float) -> tuple[RiskGate, FakeClock]:
    clock = FakeClock(NOW)
    return RiskGate(RiskSettings(**limits), clock, lambda _currency: state), clock  # type: ignore[arg-type]


def test_an_order_within_every_limit_is_allowed() -> None:
    g, _ = gate()
    assert g.check(decision(-45_000), book()).allowed


def test_an_order_above_the_notional_limit_is_denied() -> None:
    g, _ = gate(max_order_usd=10_000)
    verdict = g.check(decision(-45_000), book())
    assert not verdict.allowed
    assert "exceeds max" in verdict.reason


def test_an_order_growing_the_position_past_its_limit_is_denied_but_reducing_it_is_not() -> None:
    g, _ = gate(max_position_usd=50_000)
    assert not g.check(decision(-20_000), book(hedge=-40_000)).allowed
    assert g.check(decision(20_000), book(hedge=-80_000)).allowed


def test_halted_trading_denies_everything() -> None:
    g, _ = gate(TradingState.HALTED)
    verdict = g.check(decision(10), book())
    assert not verdict.allowed
    assert "halted" in verdict.reason


def test_reducing_state_allows_only_orders_that_shrink_the_hedge() -> None:
    g, _ = gate(TradingState.REDUCING)
    assert g.check(decision(10_000), book(hedge=-40_000)).allowed
    assert not g.check(decision(-10_000), book(hedge=-40_000)).allowed


def test_stale_book_is_denied() -> None:
    g, clock = gate(max_data_age_seconds=30)
    b = book()
    clock.advance(31)
    verdict = g.check(decision(-100), b)
    assert not verdict.allowed
    assert "old" in verdict.reason


def test_order_rate_is_capped_per_minute_and_recovers_after_it() -> None:
    g, clock = gate(max_orders_per_minute=2)
    for _ in range(2):
        assert g.check(decision(-100), book(as_of=clock.now())).allowed
        g.record_sent()
    assert not g.check(decision(-100), book(as_of=clock.now())).allowed
    clock.advance(61)
    assert g.check(decision(-100), book(as_of=clock.now())).allowed


def test_a_guard_that_raises_denies_the_order() -> None:
    def broken(_currency: str) -> TradingState:
        raise RuntimeError("state table unreadable")

    g = RiskGate(RiskSettings(), FakeClock(NOW), broken)
    verdict = g.check(decision(-100), book())
    assert not verdict.allowed
    assert "unreadable" in verdict.reason


@pytest.mark.parametrize("amount", [1e12, -1e12])
def test_absurd_orders_never_pass(amount: float) -> None:
    g, _ = gate()
    assert not g.check(decision(amount), book()).allowed


def test_book_age_uses_the_clock_not_the_wall() -> None:
    g, _ = gate(max_data_age_seconds=30)
    b = book(as_of=NOW - timedelta(seconds=29))
    assert g.check(decision(-100), b).allowed


def test_a_nan_trade_is_denied() -> None:
    g, _ = gate()
    verdict = g.check(decision(float("nan")), book())
    assert not verdict.allowed
    assert "not a number" in verdict.reason
