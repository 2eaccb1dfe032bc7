"""The ledger's headline figures, aggregated in SQL so they cost the same on a year of rows.

Units and signs are documented on :class:`bot.store.records.LedgerSummary`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select, type_coerce, union_all
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from bot.domain import Side
from bot.store.models import FillModel, Number, OrderModel, RebalanceModel
from bot.store.records import LedgerSummary


def summarise(session: Session) -> LedgerSummary:
    reb, fill, order = RebalanceModel, FillModel, OrderModel

    def counts(column: Any) -> dict[str, int]:
        rows = session.execute(select(column, func.count()).group_by(column).order_by(column))
        return {str(key): int(n) for key, n in rows}

    def totals(key: Any, value: Any) -> dict[str, float]:
        rows = session.execute(select(key, func.sum(value)).group_by(key).order_by(key))
        return {str(k): float(v) for k, v in rows}

    delta = session.execute(
        select(
            func.min(reb.delta_before),
            func.max(reb.delta_before),
            func.min(reb.expected_delta_after),
            func.max(reb.expected_delta_after),
            func.coalesce(func.sum(reb.est_cost_usd), 0),
        )
    ).one()

    sign = case((fill.side == Side.BUY.value, 1), else_=-1)
    weighted = _as_number(sign * (fill.price - order.decision_mid) / order.decision_mid)
    slip = session.execute(
        select(func.sum(_as_number(weighted * fill.amount)), func.sum(fill.amount))
        .select_from(fill)
        .join(order, order.label == fill.label)
        .where(order.decision_mid.is_not(None))
    ).one()
    slippage = None if not slip[1] else float(slip[0]) / float(slip[1]) * 1e4

    stamps = union_all(select(reb.ts.label("ts")), select(fill.ts.label("ts"))).subquery()
    first, last = session.execute(select(func.min(stamps.c.ts), func.max(stamps.c.ts))).one()

    return LedgerSummary(
        rebalances_by_status=counts(reb.status),
        orders_by_status=counts(order.status),
        fills=int(session.scalar(select(func.count()).select_from(fill)) or 0),
        fees=totals(fill.fee_currency, fill.fee),
        traded_notional=totals(fill.instrument, fill.amount),
        est_cost_usd=_opt(delta[4]) or 0.0,
        delta_before_min=_opt(delta[0]),
        delta_before_max=_opt(delta[1]),
        expected_delta_after_min=_opt(delta[2]),
        expected_delta_after_max=_opt(delta[3]),
        slippage_bps=slippage,
        first_ts=first,
        last_ts=last,
    )


def _as_number(expr: ColumnElement[Any]) -> ColumnElement[float]:
    """Read an arithmetic expression over NUMERIC columns back as float on every backend."""
    return type_coerce(expr, Number())


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)
