"""The daemon's heartbeat figures: the day's cycles by outcome, fees and P&L, from the ledger.

The day is the UTC calendar day of the clock. P&L is each currency's account equity now
against its first snapshot of the day, in coin and in USD at the latest index (equity moves by
premium, hedge P&L, fees and funding alike, so it is the number a trader checks first).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from bot.store.ledger import Ledger


def day_figures(ledger: Ledger, currencies: Iterable[str], day_start: datetime) -> dict[str, Any]:
    """Plain fields for the ``heartbeat`` log event (JSON logs keep all of them)."""
    counts = Counter(r.status for r in ledger.rebalances(since=day_start))
    fees: dict[str, float] = {}
    for fill in ledger.fills(since=day_start):
        fees[fill.fee_currency] = fees.get(fill.fee_currency, 0.0) + fill.fee
    pnl: dict[str, dict[str, float]] = {}
    for currency in currencies:
        snaps = ledger.greeks_snapshots(day_start, currency=currency)
        if len(snaps) >= 2:
            first, last = snaps[0], snaps[-1]
            coin = last.equity - first.equity
            pnl[currency] = {"coin": coin, "usd": coin * last.index_price}
    return {
        "day": day_start.date().isoformat(),
        "cycles_today": sum(counts.values()),
        "by_status_today": dict(sorted(counts.items())),
        "fees_today": fees,
        "pnl_today": pnl,
    }
