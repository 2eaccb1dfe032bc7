"""The day's figures the heartbeat logs, aggregated in SQL.

The heartbeat comes every ``heartbeat_seconds``; reading the whole day's rebalances, fills and
snapshots as rows each time cost time and memory growing with the day (a quadratic day: 2,880
rebalances of two currencies read again on each of 2,880 beats). These queries return a few
rows whatever the day holds: counts by status, fees by currency, and per currency the equity
and index of the day's first and last snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.domain import RebalanceStatus
from bot.store.models import FillModel, GreeksSnapshotModel, RebalanceModel


@dataclass(frozen=True)
class DayEquity:
    """A currency's first and last snapshot of the day: equity (coin) and the last index."""

    snapshots: int
    first_equity: float
    last_equity: float
    last_index_price: float


@dataclass(frozen=True)
class DayTotals:
    by_status: dict[RebalanceStatus, int]
    fees: dict[str, float]  # by fee currency
    equity: dict[str, DayEquity]  # by currency, only those with a snapshot


def day_totals(session: Session, since: datetime, currencies: Iterable[str]) -> DayTotals:
    """The figures of everything recorded from ``since`` (inclusive)."""
    reb, fill, snap = RebalanceModel, FillModel, GreeksSnapshotModel
    counts = session.execute(
        select(reb.status, func.count()).where(reb.ts >= since).group_by(reb.status)
    )
    by_status = {RebalanceStatus(status): int(n) for status, n in counts}
    fee_rows = session.execute(
        select(fill.fee_currency, func.sum(fill.fee))
        .where(fill.ts >= since)
        .group_by(fill.fee_currency)
    )
    fees = {str(ccy): float(total) for ccy, total in fee_rows}
    equity: dict[str, DayEquity] = {}
    for currency in currencies:
        mine = (snap.ts >= since, snap.currency == currency)
        n = int(session.scalar(select(func.count()).select_from(snap).where(*mine)) or 0)
        if not n:
            continue
        ends = (
            session.execute(
                select(snap.equity, snap.index_price).where(*mine).order_by(*order).limit(1)
            ).one()
            for order in ((snap.ts, snap.id), (snap.ts.desc(), snap.id.desc()))
        )
        (first_equity, _), (last_equity, last_index) = ends
        equity[currency] = DayEquity(n, first_equity, last_equity, last_index)
    return DayTotals(by_status, fees, equity)
