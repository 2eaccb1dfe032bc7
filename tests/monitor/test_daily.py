"""The daily summary's figures."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from bot.monitor.daily import DailyTotals
from tests.monitor.kit import sample_greeks
from tests.support.books import NOW


def test_a_long_inverse_perpetual_earns_its_usd_notional_times_the_index_return() -> None:
    day = DailyTotals(NOW.date())
    day.book("BTC", replace(sample_greeks(), index_price=90_000.0), hedge_usd=9_000.0)
    day.book("BTC", replace(sample_greeks(delta=-0.2), index_price=91_000.0), hedge_usd=0.0)
    assert abs(day.hedge_pnl_usd["BTC"] - 100.0) < 1e-9  # 9,000 x 1,000 / 90,000
    assert day.max_abs_delta["BTC"] == 0.2
    day.fill("BTC", NOW, fee_usd=4.5, slippage_usd=-1.0)
    day.fill("BTC", NOW.replace(day=6), fee_usd=99.0, slippage_usd=None)  # another day
    numbers = day.summary().numbers["BTC"]
    assert numbers.startswith("fees $4.50, slippage $-1.00, hedge P&L $+100.00")
    assert "1 fills, biggest |delta| 0.2000 BTC" in numbers


def test_the_next_day_starts_empty_but_keeps_the_hedge_it_carries() -> None:
    day = DailyTotals(NOW.date())
    day.book("BTC", sample_greeks(), hedge_usd=9_000.0)
    nxt = day.next_day(date(2026, 1, 6))
    assert nxt.cycles == 0
    assert nxt.fills == {}
    nxt.book("BTC", replace(sample_greeks(), index_price=99_000.0), hedge_usd=9_000.0)
    assert abs(nxt.hedge_pnl_usd["BTC"] - 900.0) < 1e-9
