"""The ledger's account of the hedge: baselines, fills' totals, and where fill recovery starts.
On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain import (
    Fill,
    Liquidity,
    OrderRequest,
    OrderState,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from bot.store import Ledger, open_ledger
from bot.store.accounting import LedgerAccounts

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
PERP = "BTC-PERPETUAL"


@pytest.fixture
def ledger(db_url: str) -> Ledger:
    return open_ledger(db_url, create=True)


def order(ledger: Ledger, label: str, ts: datetime, amount: float = 100) -> None:
    req = OrderRequest(
        label=label,
        instrument_name=PERP,
        side=Side.BUY,
        amount=amount,
        order_type=OrderType.MARKET,
        time_in_force=TimeInForce.IOC,
    )
    ledger.record_order(req, cycle_id=label, rebalance_id=None, decision_mid=None, ts=ts)


def fill(label: str, trade_id: str, amount: float, side: Side = Side.BUY) -> Fill:
    return Fill(
        trade_id=trade_id,
        venue_order_id=f"id-{label}",
        label=label,
        instrument_name=PERP,
        side=side,
        amount=amount,
        price=90_000.0,
        fee=0.0,
        fee_currency="BTC",
        liquidity=Liquidity.TAKER,
        timestamp=T0,
    )


def test_the_first_baseline_records_the_position_and_the_fills_total_then(ledger: Ledger) -> None:
    accounts = LedgerAccounts(ledger.engine)
    assert accounts.baseline(PERP) is None
    ledger.record_fill(fill("a", "T1", 300))
    ledger.record_fill(fill("a", "T2", 100, Side.SELL))
    base = accounts.set_baseline(PERP, 5_000.0, T0, "first read")
    assert (base.position, base.fills_total) == (5_000.0, 200.0)
    again = accounts.baseline(PERP)
    assert again is not None
    assert (again.position, again.fills_total, again.ts) == (5_000.0, 200.0, T0)
    accounts.set_baseline(PERP, 4_000.0, T0 + timedelta(hours=1), "rebaselined")
    moved = accounts.baseline(PERP)
    assert moved is not None
    assert moved.position == 4_000.0


def test_recovery_starts_at_the_oldest_order_not_yet_accounted_for(ledger: Ledger) -> None:
    accounts = LedgerAccounts(ledger.engine)
    assert accounts.oldest_unaccounted_order("BTC") is None
    order(ledger, "done", T0)
    ledger.set_venue_order_id("done", "id-done", T0)
    ledger.record_fill(fill("done", "T1", 100))
    ledger.update_order("done", OrderStatus.FILLED, T0)
    assert accounts.oldest_unaccounted_order("BTC") is None  # filled and every fill recorded
    order(ledger, "open", T0 + timedelta(hours=2))
    assert accounts.oldest_unaccounted_order("BTC") == T0 + timedelta(hours=2)
    order(ledger, "short", T0 + timedelta(hours=1))
    ledger.record_fill(fill("short", "T2", 40))
    venue_says = OrderState(
        label="short",
        venue_order_id="id-short",
        instrument_name=PERP,
        side=Side.BUY,
        amount=100,
        filled_amount=100,  # the venue filled 100; the ledger holds fills of 40
        status=OrderStatus.FILLED,
        price=None,
        average_price=90_000.0,
        order_type=OrderType.MARKET,
        timestamp=T0,
    )
    ledger.update_order("short", venue_says, T0)
    assert accounts.oldest_unaccounted_order("BTC") == T0 + timedelta(hours=1)
    assert accounts.oldest_unaccounted_order("ETH") is None
