"""What the risk gate reads from the ledger before every order, in one statement.

The gate checks the trading state (overall and the currency's), the orders of the last minute
and the amount ordered in the last 24 hours. Four ORM queries cost about 1.5 ms on a loaded
two-core machine, more than the rest of a 10-option cycle; one SELECT of four scalar
subqueries, built once and bound per call (SQLAlchemy then reuses its compiled form), costs a
fraction of that and reads one consistent snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ScalarSelect, Select, bindparam, case, func, select
from sqlalchemy.orm import Session

from bot.domain import OrderStatus, TradingState
from bot.store.models import OrderModel, TradingStateModel, UtcDateTime


@dataclass(frozen=True, kw_only=True)
class RiskReads:
    """The ledger's figures behind one risk check."""

    state: TradingState  # overall trading state (ACTIVE when never set)
    currency_state: TradingState  # the currency's own (``hedgebot halt --currency``)
    orders_since: int  # orders recorded at or after ``rate_since``
    ordered_amount: float  # amount of the instrument ordered at or after ``notional_since``


def _state(scope: str) -> ScalarSelect[str]:
    return (
        select(TradingStateModel.state)
        .where(TradingStateModel.scope == bindparam(scope))
        .scalar_subquery()
    )


def _statement() -> Select[str, str, int, float]:
    finished = [s.value for s in OrderStatus if s.terminal]
    # Finished orders count what they filled, the others their whole amount (they may fill).
    amount = case(
        (OrderModel.status.in_(finished), OrderModel.filled_amount), else_=OrderModel.amount
    )
    rate_since = bindparam("rate_since", type_=UtcDateTime)
    notional_since = bindparam("notional_since", type_=UtcDateTime)
    orders = (
        select(func.count())
        .select_from(OrderModel)
        .where(OrderModel.created_at >= rate_since)
        .scalar_subquery()
    )
    ordered = (
        select(func.coalesce(func.sum(amount), 0))
        .where(
            OrderModel.created_at >= notional_since,
            OrderModel.instrument == bindparam("instrument"),
        )
        .scalar_subquery()
    )
    return select(_state("global_scope"), _state("currency_scope"), orders, ordered)


_STATEMENT = _statement()


def read_risk(
    session: Session,
    *,
    global_scope: str,
    currency_scope: str,
    instrument: str,
    rate_since: datetime,
    notional_since: datetime,
) -> RiskReads:
    """The four figures, read in one round trip on ``session``'s connection (a Core
    statement needs none of the ORM's execution steps: a third of the cost)."""
    row = (
        session.connection()
        .execute(
            _STATEMENT,
            {
                "global_scope": global_scope,
                "currency_scope": currency_scope,
                "instrument": instrument,
                "rate_since": rate_since,
                "notional_since": notional_since,
            },
        )
        .one()
    )
    overall, own, orders, amount = row
    return RiskReads(
        state=TradingState(overall) if overall is not None else TradingState.ACTIVE,
        currency_state=TradingState(own) if own is not None else TradingState.ACTIVE,
        orders_since=int(orders or 0),
        ordered_amount=float(amount or 0.0),
    )
