"""The paper venue's own account in SQL, so paper trading survives a restart like a real one.

These tables are the *venue's* books (balances, positions, orders, trades), kept apart from
the ledger's record of what hedgebot did; restart recovery reconciles the two as it would
against an exchange. Implements ``bot.venues.paper.state.PaperStateStore``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from bot.domain import Fill, OrderState, OrderStatus, OrderType, Side
from bot.store.models import (
    PaperBalanceModel,
    PaperClockModel,
    PaperOrderModel,
    PaperPositionModel,
    PaperTradeModel,
    fill_columns,
    fill_of,
)
from bot.store.session import transaction
from bot.venues.paper.state import PaperChange, PaperPosition, PaperSnapshot, SimTime


class SqlPaperStore:
    """A ``PaperStateStore`` on an engine whose database is at the head revision."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def load(self) -> PaperSnapshot:
        """The whole account; trades oldest first (by time, then trade id)."""
        with self._sessions() as session:
            balances = {b.currency: b.balance for b in session.scalars(select(PaperBalanceModel))}
            positions = {
                p.instrument: PaperPosition(p.instrument, p.size, p.average_price)
                for p in session.scalars(select(PaperPositionModel))
            }
            orders = {
                o.venue_order_id: _order_state(o) for o in session.scalars(select(PaperOrderModel))
            }
            trades = [
                fill_of(t)
                for t in session.scalars(
                    select(PaperTradeModel).order_by(PaperTradeModel.ts, PaperTradeModel.trade_id)
                )
            ]
        return PaperSnapshot(balances=balances, positions=positions, orders=orders, trades=trades)

    def load_time(self) -> SimTime | None:
        with self._sessions() as session:
            row = session.get(PaperClockModel, 1)
            return None if row is None else SimTime(row.start, row.now)

    def save_time(self, time: SimTime) -> None:
        with transaction(self._sessions) as session:
            row = session.get(PaperClockModel, 1)
            if row is None:
                session.add(PaperClockModel(id=1, start=time.start, now=time.now))
            else:
                row.start, row.now = time.start, time.now

    def order(self, venue_order_id: str) -> OrderState | None:
        with self._sessions() as session:
            row = session.get(PaperOrderModel, venue_order_id)
            return None if row is None else _order_state(row)

    def orders_by_label(self, label: str) -> list[OrderState]:
        """Through the index on ``label``: one order per label in practice."""
        with self._sessions() as session:
            query = select(PaperOrderModel).where(PaperOrderModel.label == label)
            return [_order_state(o) for o in session.scalars(query)]

    def trades(self, since: datetime | None = None) -> list[Fill]:
        query = select(PaperTradeModel).order_by(PaperTradeModel.ts, PaperTradeModel.trade_id)
        if since is not None:
            query = query.where(PaperTradeModel.ts >= since)
        with self._sessions() as session:
            return [fill_of(t) for t in session.scalars(query)]

    def save(self, change: PaperChange) -> None:
        """Upsert balances, positions and orders and append new trades, all or nothing."""
        with transaction(self._sessions) as session:
            for currency, balance in change.balances.items():
                _upsert_balance(session, currency, balance)
            for position in change.positions:
                _upsert_position(session, position)
            for order in change.orders:
                _upsert_order(session, order)
            seen: set[str] = set()
            for trade in change.trades:
                if trade.trade_id in seen:
                    continue
                if session.get(PaperTradeModel, trade.trade_id) is not None:
                    continue
                seen.add(trade.trade_id)
                session.add(PaperTradeModel(**fill_columns(trade)))


def _upsert_balance(session: Session, currency: str, balance: float) -> None:
    row = session.get(PaperBalanceModel, currency)
    if row is None:
        session.add(PaperBalanceModel(currency=currency, balance=balance))
    else:
        row.balance = balance


def _upsert_position(session: Session, position: PaperPosition) -> None:
    row = session.get(PaperPositionModel, position.instrument_name)
    if row is None:
        row = PaperPositionModel(instrument=position.instrument_name)
        session.add(row)
    row.size = position.size
    row.average_price = position.average_price


def _upsert_order(session: Session, order: OrderState) -> None:
    row = session.get(PaperOrderModel, order.venue_order_id)
    if row is None:
        row = PaperOrderModel(venue_order_id=order.venue_order_id)
        session.add(row)
    row.label = order.label
    row.instrument = order.instrument_name
    row.side = Side(order.side).value
    row.amount = order.amount
    row.filled_amount = order.filled_amount
    row.status = OrderStatus(order.status).value
    row.price = order.price
    row.average_price = order.average_price
    row.order_type = OrderType(order.order_type).value
    row.ts = order.timestamp
    row.post_only = order.post_only
    row.reduce_only = order.reduce_only


def _order_state(o: PaperOrderModel) -> OrderState:
    return OrderState(
        label=o.label,
        venue_order_id=o.venue_order_id,
        instrument_name=o.instrument,
        side=Side(o.side),
        amount=o.amount,
        filled_amount=o.filled_amount,
        status=OrderStatus(o.status),
        price=o.price,
        average_price=o.average_price,
        order_type=OrderType(o.order_type),
        timestamp=o.ts,
        post_only=o.post_only,
        reduce_only=o.reduce_only,
    )
