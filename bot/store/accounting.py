"""The ledger's own account of the hedge: baselines, and which orders are not yet accounted for.

Kept apart from :mod:`bot.store.ledger` (orders and fills as written) because these are
questions asked of the record, not writes to it: where fill recovery must start reading, and
what the hedge position should be if every fill since a baseline is on record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, case, func, or_, select
from sqlalchemy.orm import sessionmaker

from bot.domain import Side
from bot.store.models import FillModel, HedgeBaselineModel, OrderModel
from bot.store.records import OPEN_STATUSES
from bot.store.session import transaction

_EPSILON = 1e-9


@dataclass(frozen=True)
class Baseline:
    """The hedge position read at ``ts`` and the signed total of our fills then."""

    instrument: str
    position: float
    fills_total: float
    ts: datetime
    reason: str


class LedgerAccounts:
    """Read-mostly questions of the ledger on one engine."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def fills_total(self, instrument: str) -> float:
        """Signed sum of our recorded fills in ``instrument`` (buys positive)."""
        signed = case((FillModel.side == Side.BUY.value, FillModel.amount), else_=-FillModel.amount)
        query = select(func.coalesce(func.sum(signed), 0)).where(FillModel.instrument == instrument)
        with self._sessions() as session:
            return float(session.scalar(query) or 0.0)

    def baseline(self, instrument: str) -> Baseline | None:
        with self._sessions() as session:
            row = session.get(HedgeBaselineModel, instrument)
            if row is None:
                return None
            return Baseline(row.instrument, row.position, row.fills_total, row.ts, row.reason)

    def set_baseline(self, instrument: str, position: float, ts: datetime, reason: str) -> Baseline:
        """Record ``position`` (read at the venue now) against our fills' total now."""
        total = self.fills_total(instrument)
        with transaction(self._sessions) as session:
            row = session.get(HedgeBaselineModel, instrument)
            if row is None:
                session.add(
                    HedgeBaselineModel(
                        instrument=instrument,
                        position=position,
                        fills_total=total,
                        ts=ts,
                        reason=reason,
                    )
                )
            else:
                row.position, row.fills_total, row.ts, row.reason = position, total, ts, reason
        return Baseline(instrument, position, total, ts, reason)

    def oldest_unaccounted_order(self, instrument_prefix: str) -> datetime | None:
        """Creation time of the oldest order of ``instrument_prefix…`` whose fills may not all
        be on record: not terminal, or terminal with fewer recorded fills than it filled."""
        recorded = (
            select(func.coalesce(func.sum(FillModel.amount), 0))
            .where(FillModel.venue_order_id == OrderModel.venue_order_id)
            .scalar_subquery()
        )
        query = select(func.min(OrderModel.created_at)).where(
            OrderModel.instrument.startswith(instrument_prefix, autoescape=True),
            or_(
                OrderModel.status.in_([s.value for s in OPEN_STATUSES]),
                OrderModel.filled_amount > recorded + _EPSILON,
            ),
        )
        with self._sessions() as session:
            return session.scalar(query)


__all__ = ["Baseline", "LedgerAccounts"]
