"""The daemon's heartbeat figures: the day's cycles by outcome, fees and P&L, from the ledger.

The day is the UTC calendar day of the clock. P&L is each currency's account equity now
against its first snapshot of the day, in coin and in USD at the latest index (equity moves by
premium, hedge P&L, fees and funding alike, so it is the number a trader checks first). The
ledger aggregates them in SQL, so a beat costs the same at midnight and at 23:59.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from bot.store.ledger import Ledger


def day_figures(ledger: Ledger, currencies: Iterable[str], day_start: datetime) -> dict[str, Any]:
    """Plain fields for the ``heartbeat`` log event (JSON logs keep all of them)."""
    day = ledger.day_totals(day_start, currencies)
    pnl: dict[str, dict[str, float]] = {}
    for currency, e in day.equity.items():
        if e.snapshots >= 2:
            coin = e.last_equity - e.first_equity
            pnl[currency] = {"coin": coin, "usd": coin * e.last_index_price}
    return {
        "day": day_start.date().isoformat(),
        "cycles_today": sum(day.by_status.values()),
        "by_status_today": dict(sorted(day.by_status.items())),
        "fees_today": day.fees,
        "pnl_today": pnl,
    }
