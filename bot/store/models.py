"""The ledger's tables, and the paper venue's own account beside them.

Types are portable: SQLite by default, PostgreSQL in production, any SQLAlchemy URL accepted.

- Money, prices, quantities and greeks are ``NUMERIC(36, 18)`` through :class:`Number`. A float
  is bound as ``Decimal(str(x))`` (its shortest exact decimal, so PostgreSQL keeps 0.00000123,
  not a binary expansion) and read back as ``float``, the domain's unit. Reading as float
  (``asdecimal=False``) is the choice that keeps SQLite quiet: SQLite stores NUMERIC as REAL or
  INTEGER, and SQLAlchemy 2.0 warns whenever it has to turn those into ``Decimal``; here it
  never does. NaN and infinities are refused with :class:`bot.domain.DataError` (SQLite would
  store NaN as NULL).
- Timestamps are :class:`UtcDateTime`: ``TIMESTAMP WITH TIME ZONE`` on PostgreSQL; on SQLite,
  which keeps no zone, stored as UTC text that sorts in time order. Naive datetimes are refused;
  reads are aware UTC.
- Enumerations (statuses, sides) are short strings, checked by the ledger, so a new value needs
  no migration. JSON (policy params, greeks) is text.

The schema is created only by the Alembic revisions in ``migrations/``; a test checks that they
produce exactly these models.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, MetaData, Numeric, String, Text
from sqlalchemy.engine import Dialect, Row
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from bot.domain import DataError, Fill, Liquidity, Side
from bot.units import MAX_LABEL_LENGTH

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_NUMERIC_LIMIT = Decimal(10) ** 18


class Number(TypeDecorator[float]):
    """NUMERIC(36, 18) in SQL, float in Python; see the module docstring for why."""

    impl = Numeric(36, 18, asdecimal=False)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        number = value if isinstance(value, Decimal) else Decimal(str(float(value)))
        if not number.is_finite():
            raise DataError(f"cannot store non-finite number {value!r}")
        if abs(number) >= _NUMERIC_LIMIT:
            # NUMERIC(36, 18) holds 18 digits before the point; PostgreSQL refuses more, SQLite
            # would store it: refuse on every backend, so 1e18 never reaches the record.
            raise DataError(f"cannot store {value!r}: beyond NUMERIC(36, 18)")
        return number

    def process_result_value(self, value: Any, dialect: Dialect) -> float | None:
        # SQLite hands back int for whole numbers (NUMERIC affinity), PostgreSQL Decimal→float.
        return None if value is None else float(value)


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC timestamp on every backend; see the module docstring."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise DataError(f"expected a datetime, got {value!r}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise DataError(f"naive datetime {value.isoformat()}: pass an aware UTC time")
        as_utc = value.astimezone(UTC)
        return as_utc if dialect.name == "postgresql" else as_utc.replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        stamp: datetime = value
        return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class RebalanceModel(Base):
    """One rebalance decision of one currency: what was seen, decided and why."""

    __tablename__ = "rebalances"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cycle_id: Mapped[str] = mapped_column(String(64), unique=True)
    ts: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    currency: Mapped[str] = mapped_column(String(16))
    mode: Mapped[str] = mapped_column(String(16))
    policy: Mapped[str] = mapped_column(String(64))
    params: Mapped[str] = mapped_column(Text)
    target_mode: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(Text)
    index_price: Mapped[float | None] = mapped_column(Number)
    hedge_bid: Mapped[float | None] = mapped_column(Number)
    hedge_ask: Mapped[float | None] = mapped_column(Number)
    hedge_mid: Mapped[float | None] = mapped_column(Number)
    delta_before: Mapped[float | None] = mapped_column(Number)
    target: Mapped[float | None] = mapped_column(Number)
    band_low: Mapped[float | None] = mapped_column(Number)
    band_high: Mapped[float | None] = mapped_column(Number)
    gamma: Mapped[float | None] = mapped_column(Number)
    vega: Mapped[float | None] = mapped_column(Number)
    theta: Mapped[float | None] = mapped_column(Number)
    equity: Mapped[float | None] = mapped_column(Number)
    trade_amount: Mapped[float | None] = mapped_column(Number)
    trade_delta: Mapped[float | None] = mapped_column(Number)
    expected_delta_after: Mapped[float | None] = mapped_column(Number)
    est_cost_usd: Mapped[float | None] = mapped_column(Number)
    greeks: Mapped[str | None] = mapped_column(Text)
    instrument: Mapped[str | None] = mapped_column(String(64))


class OrderModel(Base):
    """An order as we intended it, keyed by our label, which is written before it is sent."""

    __tablename__ = "orders"

    label: Mapped[str] = mapped_column(String(MAX_LABEL_LENGTH), primary_key=True)
    cycle_id: Mapped[str] = mapped_column(String(64), index=True)
    rebalance_id: Mapped[int | None] = mapped_column(ForeignKey("rebalances.id"), index=True)
    venue_order_id: Mapped[str | None] = mapped_column(String(128), index=True)
    instrument: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(String(4))
    amount: Mapped[float] = mapped_column(Number)
    price: Mapped[float | None] = mapped_column(Number)
    order_type: Mapped[str] = mapped_column(String(16))
    post_only: Mapped[bool] = mapped_column(Boolean)
    reduce_only: Mapped[bool] = mapped_column(Boolean)
    time_in_force: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), index=True)
    filled_amount: Mapped[float] = mapped_column(Number)
    average_price: Mapped[float | None] = mapped_column(Number)
    decision_mid: Mapped[float | None] = mapped_column(Number)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OrderEventModel(Base):
    """Every state change of an order, appended, never updated."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    label: Mapped[str] = mapped_column(ForeignKey("orders.label"), index=True)
    ts: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16))
    filled_amount: Mapped[float | None] = mapped_column(Number)
    detail: Mapped[str] = mapped_column(Text)


class FillModel(Base):
    """One execution, keyed by the venue's trade id so ingesting it twice is a no-op."""

    __tablename__ = "fills"

    trade_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    label: Mapped[str] = mapped_column(String(MAX_LABEL_LENGTH), index=True)
    venue_order_id: Mapped[str] = mapped_column(String(128), index=True)
    instrument: Mapped[str] = mapped_column(String(64), index=True)
    side: Mapped[str] = mapped_column(String(4))
    amount: Mapped[float] = mapped_column(Number)
    price: Mapped[float] = mapped_column(Number)
    fee: Mapped[float] = mapped_column(Number)
    fee_currency: Mapped[str] = mapped_column(String(16))
    liquidity: Mapped[str] = mapped_column(String(8))
    ts: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    index_price: Mapped[float | None] = mapped_column(Number)


class GreeksSnapshotModel(Base):
    """The book's greeks as one cycle saw them: the hedge-error side of the cost analysis."""

    __tablename__ = "greeks_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cycle_id: Mapped[str] = mapped_column(String(64), index=True)
    ts: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    currency: Mapped[str] = mapped_column(String(16))
    index_price: Mapped[float] = mapped_column(Number)
    delta_coin: Mapped[float] = mapped_column(Number)
    delta_usd_target: Mapped[float] = mapped_column(Number)
    gamma: Mapped[float] = mapped_column(Number)
    dollar_gamma: Mapped[float] = mapped_column(Number)
    vega: Mapped[float] = mapped_column(Number)
    theta: Mapped[float] = mapped_column(Number)
    equity: Mapped[float] = mapped_column(Number)
    hedge_position: Mapped[float] = mapped_column(Number)


class TradingStateModel(Base):
    """The risk gate's state (active, reducing, halted), one row per scope; survives restarts."""

    __tablename__ = "trading_state"

    scope: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class BookLeaseModel(Base):
    """Who may write to one book (venue account and currency): the single-writer lease.

    Held in the ledger itself so every process that writes to it, from any directory or host,
    meets the same row; a holder renews ``expires_at`` while it lives.
    """

    __tablename__ = "book_leases"

    book: Mapped[str] = mapped_column(String(255), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(16))
    acquired_at: Mapped[datetime] = mapped_column(UtcDateTime)
    renewed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


class HedgeBaselineModel(Base):
    """A hedge position read at the venue and our fills' total at that moment: from then on
    the position may only change by what our recorded fills say."""

    __tablename__ = "hedge_baselines"

    instrument: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[float] = mapped_column(Number)
    fills_total: Mapped[float] = mapped_column(Number)
    ts: Mapped[datetime] = mapped_column(UtcDateTime)
    reason: Mapped[str] = mapped_column(Text)


class LedgerIdentityModel(Base):
    """This ledger's identity (one row): stamped into every order label, so an order of
    another ledger on the same venue account is told apart from one of ours."""

    __tablename__ = "ledger_identity"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ledger_id: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PaperBalanceModel(Base):
    """The paper venue's balance of one currency (coin)."""

    __tablename__ = "paper_balances"

    currency: Mapped[str] = mapped_column(String(16), primary_key=True)
    balance: Mapped[float] = mapped_column(Number)


class PaperPositionModel(Base):
    """The paper venue's position in one instrument (Deribit units)."""

    __tablename__ = "paper_positions"

    instrument: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[float] = mapped_column(Number)
    average_price: Mapped[float] = mapped_column(Number)


class PaperOrderModel(Base):
    """The paper venue's view of one order: every field of ``bot.domain.OrderState``."""

    __tablename__ = "paper_orders"

    venue_order_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    label: Mapped[str] = mapped_column(String(MAX_LABEL_LENGTH), index=True)
    instrument: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(String(4))
    amount: Mapped[float] = mapped_column(Number)
    filled_amount: Mapped[float] = mapped_column(Number)
    status: Mapped[str] = mapped_column(String(16))
    price: Mapped[float | None] = mapped_column(Number)
    average_price: Mapped[float | None] = mapped_column(Number)
    order_type: Mapped[str] = mapped_column(String(16))
    ts: Mapped[datetime] = mapped_column(UtcDateTime)
    post_only: Mapped[bool] = mapped_column(Boolean)
    reduce_only: Mapped[bool] = mapped_column(Boolean)


class PaperClockModel(Base):
    """A lockstep paper or simulated venue's time (one row), so a restart resumes there."""

    __tablename__ = "paper_clock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    start: Mapped[datetime] = mapped_column(UtcDateTime)
    now: Mapped[datetime] = mapped_column(UtcDateTime)


class PaperTradeModel(Base):
    """One paper execution: every field of ``bot.domain.Fill``."""

    __tablename__ = "paper_trades"

    trade_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    venue_order_id: Mapped[str] = mapped_column(String(128))
    label: Mapped[str] = mapped_column(String(MAX_LABEL_LENGTH))
    instrument: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(String(4))
    amount: Mapped[float] = mapped_column(Number)
    price: Mapped[float] = mapped_column(Number)
    fee: Mapped[float] = mapped_column(Number)
    fee_currency: Mapped[str] = mapped_column(String(16))
    liquidity: Mapped[str] = mapped_column(String(8))
    ts: Mapped[datetime] = mapped_column(UtcDateTime)
    index_price: Mapped[float | None] = mapped_column(Number)


def fill_columns(fill: Fill) -> dict[str, Any]:
    """Column values of a ``fills`` or ``paper_trades`` row for ``fill``."""
    return {
        "trade_id": fill.trade_id,
        "venue_order_id": fill.venue_order_id,
        "label": fill.label,
        "instrument": fill.instrument_name,
        "side": Side(fill.side).value,
        "amount": fill.amount,
        "price": fill.price,
        "fee": fill.fee,
        "fee_currency": fill.fee_currency,
        "liquidity": Liquidity(fill.liquidity).value,
        "ts": fill.timestamp,
        "index_price": fill.index_price,
    }


def fill_of(row: FillModel | PaperTradeModel | Row[Any]) -> Fill:
    """The domain ``Fill`` a ``fills`` or ``paper_trades`` row holds."""
    return Fill(
        trade_id=row.trade_id,
        venue_order_id=row.venue_order_id,
        label=row.label,
        instrument_name=row.instrument,
        side=Side(row.side),
        amount=row.amount,
        price=row.price,
        fee=row.fee,
        fee_currency=row.fee_currency,
        liquidity=Liquidity(row.liquidity),
        timestamp=row.ts,
        index_price=row.index_price,
    )
