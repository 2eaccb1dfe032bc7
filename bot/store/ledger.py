"""The ledger: every decision, order, order state change and fill hedgebot made, in SQL.

Writes are small transactions, each complete on return, so a crash between two of them leaves
the record true up to the last one; inside ``with ledger.batch():`` (one cycle) they share one
transaction instead, committed at the end of the block or at the first order recorded
(``bot.store.unit_of_work``). Two guarantees the executor leans on:

- an order is recorded (PENDING) under our label *before* it is sent, and a terminal order
  (filled, cancelled, rejected) is never moved back to a non-terminal status;
- a fill is keyed by the venue's trade id: ingesting it again is a no-op, not a duplicate.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from contextlib import AbstractContextManager
from datetime import datetime

from sqlalchemy import Engine, case, func, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker

from bot.domain import (
    DataError,
    Fill,
    OrderRequest,
    OrderState,
    OrderStatus,
    OrderType,
    RebalanceStatus,
    Side,
    TimeInForce,
    TradingState,
    require_positive,
)
from bot.store.day import DayTotals, day_totals
from bot.store.models import (
    FillModel,
    GreeksSnapshotModel,
    OrderEventModel,
    OrderModel,
    RebalanceModel,
    TradingStateModel,
    fill_columns,
    fill_of,
)
from bot.store.records import (
    OPEN_STATUSES,
    GreeksSnapshot,
    LedgerSummary,
    OrderEventRow,
    OrderRow,
    RebalanceRecord,
    RebalanceRow,
    TradingStateRow,
    greeks_from_json,
    greeks_to_json,
    to_json,
)
from bot.store.report_rows import (
    OrderLink,
    RebalanceColumns,
    read_fills,
    read_order_links,
    read_rebalances,
)
from bot.store.risk_reads import RiskReads, read_risk
from bot.store.summary import summarise
from bot.store.unit_of_work import UnitOfWork
from bot.units import MAX_LABEL_LENGTH

GLOBAL_SCOPE = "global"

_REBALANCE_FIGURES = (
    "index_price",
    "hedge_bid",
    "hedge_ask",
    "hedge_mid",
    "delta_before",
    "target",
    "band_low",
    "band_high",
    "gamma",
    "vega",
    "theta",
    "equity",
    "trade_amount",
    "trade_delta",
    "expected_delta_after",
    "est_cost_usd",
)
_SNAPSHOT_FIGURES = (
    "index_price",
    "delta_coin",
    "delta_usd_target",
    "gamma",
    "dollar_gamma",
    "vega",
    "theta",
    "equity",
    "hedge_position",
)


class LedgerError(Exception):
    """A write the ledger refuses because it would make the record untrue."""


class DuplicateRecord(LedgerError):
    """A label or cycle id that is already recorded."""


class UnknownOrder(LedgerError, LookupError):
    """An update for a label the ledger never recorded."""


class TerminalOrder(LedgerError):
    """An attempt to move a filled, cancelled or rejected order back to a live status."""


class Ledger:
    """Reads and writes of hedgebot's record on one engine (see ``bot.store.db.open_ledger``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._work = UnitOfWork(self._sessions)

    def batch(self, *, from_greeks: bool = False) -> AbstractContextManager[None]:
        """One transaction for the writes inside the block (with ``from_greeks``, from the
        greeks snapshot on: a cycle's); nested blocks join the outer one; an order recorded
        inside commits at once, before it is sent. See :mod:`bot.store.unit_of_work`."""
        return self._work.batch(from_greeks=from_greeks)

    def close(self) -> None:
        """Release pooled connections (the engine reconnects if used again)."""
        self.engine.dispose()

    # -- rebalances and greeks ---------------------------------------------------------------

    def record_rebalance(self, rec: RebalanceRecord) -> int:
        """Store one rebalance; returns its id, which orders sent for it refer to."""
        row = RebalanceModel(
            cycle_id=rec.cycle_id,
            ts=rec.ts,
            currency=rec.currency,
            mode=rec.mode,
            policy=rec.policy,
            params=to_json("params", dict(rec.params)),
            target_mode=str(rec.target_mode),
            status=RebalanceStatus(rec.status).value,
            reason=rec.reason,
            greeks=None if rec.greeks is None else greeks_to_json(rec.greeks),
            instrument=rec.instrument,
            **{name: getattr(rec, name) for name in _REBALANCE_FIGURES},
        )
        try:
            with self._work.write() as session:
                session.add(row)
                session.flush()
                return row.id
        except sa_exc.IntegrityError as exc:
            raise DuplicateRecord(f"rebalance {rec.cycle_id!r} is already recorded") from exc

    def rebalances(self, since: datetime | None = None) -> list[RebalanceRow]:
        """Rebalances oldest first, from ``since`` (inclusive) when given."""
        query = select(RebalanceModel).order_by(RebalanceModel.ts, RebalanceModel.id)
        if since is not None:
            query = query.where(RebalanceModel.ts >= since)
        with self._work.read() as session:
            return [_rebalance_row(r) for r in session.scalars(query)]

    def last_rebalances(self, n: int) -> list[RebalanceRow]:
        """The ``n`` most recent rebalances, newest first."""
        query = (
            select(RebalanceModel)
            .order_by(RebalanceModel.ts.desc(), RebalanceModel.id.desc())
            .limit(max(0, n))
        )
        with self._work.read() as session:
            return [_rebalance_row(r) for r in session.scalars(query)]

    def bad_read_streak(self, currency: str, marker: str, after: datetime | None = None) -> int:
        """Rebalances of ``currency`` whose reason starts with ``marker`` (recorded bad reads)
        since its last read that passed (a cycle that wrote a greeks snapshot), and after
        ``after`` when given: the streak survives a restart because it is counted from the
        record, not kept in memory."""
        last_good_cycle = (
            select(GreeksSnapshotModel.cycle_id)
            .where(GreeksSnapshotModel.currency == currency)
            .order_by(GreeksSnapshotModel.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        last_good = (
            select(func.coalesce(func.max(RebalanceModel.id), 0))
            .where(RebalanceModel.cycle_id == last_good_cycle)
            .scalar_subquery()
        )
        query = select(func.count(RebalanceModel.id)).where(
            RebalanceModel.id > last_good,
            RebalanceModel.currency == currency,
            RebalanceModel.status == RebalanceStatus.SKIPPED.value,
            RebalanceModel.reason.startswith(marker, autoescape=True),
        )
        if after is not None:
            query = query.where(RebalanceModel.ts > after)
        with self._work.read() as session:
            return int(session.scalar(query) or 0)

    def record_greeks(self, snapshot: GreeksSnapshot) -> int:
        row = GreeksSnapshotModel(
            cycle_id=snapshot.cycle_id,
            ts=snapshot.ts,
            currency=snapshot.currency,
            **{name: getattr(snapshot, name) for name in _SNAPSHOT_FIGURES},
        )
        with self._work.write(opens=True) as session:
            session.add(row)
            session.flush()
            return row.id

    def set_rebalance_outcome(
        self, rebalance_id: int, status: RebalanceStatus, reason: str
    ) -> None:
        """Change a recorded rebalance's status and reason (execution raised after the row was
        written): the ledger then says what the caller was told."""
        with self._work.write() as session:
            row = session.get(RebalanceModel, rebalance_id)
            if row is None:
                raise LedgerError(f"no rebalance with id {rebalance_id}")
            row.status, row.reason = RebalanceStatus(status).value, reason

    def last_greeks_snapshot(self, currency: str) -> GreeksSnapshot | None:
        """The newest snapshot of ``currency``: the hedge position last seen at the venue."""
        snaps = self.greeks_snapshots(currency=currency, newest_only=True)
        return snaps[0] if snaps else None

    def greeks_snapshots(
        self,
        since: datetime | None = None,
        *,
        currency: str | None = None,
        newest_only: bool = False,
    ) -> list[GreeksSnapshot]:
        query = select(GreeksSnapshotModel).order_by(GreeksSnapshotModel.ts, GreeksSnapshotModel.id)
        if since is not None:
            query = query.where(GreeksSnapshotModel.ts >= since)
        if currency is not None:
            query = query.where(GreeksSnapshotModel.currency == currency)
        if newest_only:
            query = (
                query.order_by(None)
                .order_by(GreeksSnapshotModel.ts.desc(), GreeksSnapshotModel.id.desc())
                .limit(1)
            )
        with self._work.read() as session:
            return [
                GreeksSnapshot(
                    cycle_id=r.cycle_id,
                    ts=r.ts,
                    currency=r.currency,
                    **{name: getattr(r, name) for name in _SNAPSHOT_FIGURES},
                )
                for r in session.scalars(query)
            ]

    def index_prices(
        self, currency: str, since: datetime, *, after: bool = False
    ) -> list[tuple[datetime, float]]:
        """(time, index price) of the greeks snapshots of ``currency`` from ``since`` (or only
        strictly after it), oldest first: two columns, no ORM objects, for a per-cycle read."""
        ts = GreeksSnapshotModel.ts
        query = (
            select(ts, GreeksSnapshotModel.index_price)
            .where(GreeksSnapshotModel.currency == currency)
            .where(ts > since if after else ts >= since)
            .order_by(ts, GreeksSnapshotModel.id)
        )
        with self._work.read() as session:
            return [(when, float(price)) for when, price in session.execute(query)]

    # -- orders --------------------------------------------------------------------------------

    def record_order(
        self,
        req: OrderRequest,
        *,
        cycle_id: str,
        rebalance_id: int | None,
        decision_mid: float | None,
        ts: datetime,
    ) -> OrderRow:
        """Record ``req`` as PENDING, before it is sent; its label must be new."""
        if not req.label or len(req.label) > MAX_LABEL_LENGTH:
            raise DataError(f"order label must be 1..{MAX_LABEL_LENGTH} characters: {req.label!r}")
        require_positive("order amount", req.amount)
        if req.price is not None:
            require_positive("order price", req.price)
        if decision_mid is not None:
            require_positive("decision mid", decision_mid)
        with self._work.write(durable=True) as session:
            if session.get(OrderModel, req.label) is not None:
                raise DuplicateRecord(f"order label {req.label!r} is already recorded")
            if rebalance_id is not None and session.get(RebalanceModel, rebalance_id) is None:
                raise LedgerError(f"order {req.label!r} refers to unknown rebalance {rebalance_id}")
            row = OrderModel(
                label=req.label,
                cycle_id=cycle_id,
                rebalance_id=rebalance_id,
                venue_order_id=None,
                instrument=req.instrument_name,
                side=Side(req.side).value,
                amount=req.amount,
                price=req.price,
                order_type=OrderType(req.order_type).value,
                post_only=req.post_only,
                reduce_only=req.reduce_only,
                time_in_force=TimeInForce(req.time_in_force).value,
                status=OrderStatus.PENDING.value,
                filled_amount=0.0,
                average_price=None,
                decision_mid=decision_mid,
                created_at=ts,
                updated_at=ts,
            )
            session.add(row)
            session.flush()
            _append_event(session, row, ts, "recorded")
            return _order_row(row)

    def update_order(
        self, label: str, state: OrderState | OrderStatus, ts: datetime, detail: str = ""
    ) -> OrderRow:
        """Apply the venue's word (an ``OrderState``) or our own status (UNKNOWN after a
        timeout) to the order ``label`` and append the change to its events.

        Raises :class:`TerminalOrder` for a move from a terminal to a non-terminal status:
        only a bug or a stale read could ask for one, and obeying would resend a filled hedge.
        """
        status = OrderStatus(state.status if isinstance(state, OrderState) else state)
        with self._work.write() as session:
            row = session.get(OrderModel, label, with_for_update=True)
            if row is None:
                raise UnknownOrder(f"no order labelled {label!r} in the ledger")
            current = OrderStatus(row.status)
            if current.terminal and not status.terminal:
                raise TerminalOrder(
                    f"order {label!r} is {current.value}; refusing to move it to {status.value}"
                )
            if isinstance(state, OrderState):
                if state.label and state.label != label:
                    raise LedgerError(f"state of order {state.label!r} applied to {label!r}")
                row.venue_order_id = state.venue_order_id or row.venue_order_id
                row.filled_amount = state.filled_amount
                row.average_price = state.average_price
            row.status = status.value
            row.updated_at = ts
            _append_event(session, row, ts, detail)
            return _order_row(row)

    def set_venue_order_id(self, label: str, venue_order_id: str, ts: datetime) -> None:
        """Note the venue's id for ``label`` as soon as it is known (before any state)."""
        with self._work.write() as session:
            row = session.get(OrderModel, label)
            if row is None:
                raise UnknownOrder(f"no order labelled {label!r} in the ledger")
            row.venue_order_id = venue_order_id
            row.updated_at = ts

    def order(self, label: str) -> OrderRow | None:
        with self._work.read() as session:
            row = session.get(OrderModel, label)
            return None if row is None else _order_row(row)

    def order_by_venue_id(self, venue_order_id: str) -> OrderRow | None:
        query = select(OrderModel).where(OrderModel.venue_order_id == venue_order_id)
        with self._work.read() as session:
            row = session.scalars(query).first()
            return None if row is None else _order_row(row)

    def orders(
        self, statuses: Collection[OrderStatus] | None = None, *, cycle_id: str | None = None
    ) -> list[OrderRow]:
        """Orders oldest first; only those whose status is in ``statuses`` when given, and
        only those of one cycle when ``cycle_id`` is given."""
        query = select(OrderModel).order_by(OrderModel.created_at, OrderModel.label)
        if statuses is not None:
            query = query.where(OrderModel.status.in_([OrderStatus(s).value for s in statuses]))
        if cycle_id is not None:
            query = query.where(OrderModel.cycle_id == cycle_id)
        with self._work.read() as session:
            return [_order_row(r) for r in session.scalars(query)]

    def order_counts(self) -> dict[str, int]:
        """Orders by status, counted in SQL: what the monitor serves after every cycle, cheap
        on a ledger of any age (``summary`` also scans every rebalance)."""
        query = select(OrderModel.status, func.count()).group_by(OrderModel.status)
        with self._sessions() as session:
            return {str(status): int(n) for status, n in session.execute(query)}

    def orders_created_since(self, since: datetime) -> int:
        """How many orders were recorded at or after ``since``: the order-rate cap's count,
        which a restart does not reset."""
        query = select(func.count()).select_from(OrderModel).where(OrderModel.created_at >= since)
        with self._sessions() as session:
            return int(session.scalar(query) or 0)

    def ordered_amount_since(self, since: datetime, instrument: str) -> float:
        """Amount of ``instrument`` ordered since ``since``: what finished orders filled plus
        the whole amount of orders that may still fill. The daily-notional cap's count."""
        finished = [s.value for s in OrderStatus if s.terminal]
        amount = case(
            (OrderModel.status.in_(finished), OrderModel.filled_amount), else_=OrderModel.amount
        )
        query = select(func.coalesce(func.sum(amount), 0)).where(
            OrderModel.created_at >= since, OrderModel.instrument == instrument
        )
        with self._sessions() as session:
            return float(session.scalar(query) or 0.0)

    def open_orders(self) -> list[OrderRow]:
        """Orders not known to be finished (PENDING, UNKNOWN, OPEN): what recovery looks up."""
        return self.orders(OPEN_STATUSES)

    def order_events(self, label: str) -> list[OrderEventRow]:
        query = (
            select(OrderEventModel)
            .where(OrderEventModel.label == label)
            .order_by(OrderEventModel.id)
        )
        with self._work.read() as session:
            return [
                OrderEventRow(
                    id=e.id,
                    label=e.label,
                    ts=e.ts,
                    status=OrderStatus(e.status),
                    filled_amount=e.filled_amount,
                    detail=e.detail,
                )
                for e in session.scalars(query)
            ]

    # -- fills ---------------------------------------------------------------------------------

    def record_fill(self, fill: Fill) -> bool:
        """Store ``fill``; False (and nothing written) when its trade id is already stored."""
        if not fill.trade_id:
            raise DataError("fill has no trade id")
        require_positive(f"fill {fill.trade_id} amount", fill.amount)
        require_positive(f"fill {fill.trade_id} price", fill.price)
        if fill.index_price is not None:
            require_positive(f"fill {fill.trade_id} index price", fill.index_price)
        try:
            with self._work.write() as session:
                if session.get(FillModel, fill.trade_id) is not None:
                    return False
                session.add(FillModel(**fill_columns(fill)))
            return True
        except sa_exc.IntegrityError:
            # Another writer stored the same trade between our read and our insert.
            if self._has_fill(fill.trade_id):
                return False
            raise

    def _has_fill(self, trade_id: str) -> bool:
        with self._work.read() as session:
            return session.get(FillModel, trade_id) is not None

    def fills(self, since: datetime | None = None, *, instrument: str | None = None) -> list[Fill]:
        """Fills oldest first, from ``since`` (inclusive) when given."""
        query = select(FillModel).order_by(FillModel.ts, FillModel.trade_id)
        if since is not None:
            query = query.where(FillModel.ts >= since)
        if instrument is not None:
            query = query.where(FillModel.instrument == instrument)
        with self._work.read() as session:
            return [fill_of(r) for r in session.scalars(query)]

    def last_fill_time(self, instrument: str | None = None) -> datetime | None:
        query = select(func.max(FillModel.ts))
        if instrument is not None:
            query = query.where(FillModel.instrument == instrument)
        with self._work.read() as session:
            return session.scalar(query)

    def filled_amount_of(self, venue_order_id: str) -> float:
        """Sum of the recorded fills of one venue order: compared with what the venue says the
        order filled, it tells whether every fill has been read."""
        query = select(func.coalesce(func.sum(FillModel.amount), 0)).where(
            FillModel.venue_order_id == venue_order_id
        )
        with self._work.read() as session:
            return float(session.scalar(query) or 0.0)

    def hedge_position_from_fills(self, instrument: str) -> float:
        """Signed sum of our fills in ``instrument`` (buys positive), in its amount unit."""
        signed = case((FillModel.side == Side.BUY.value, FillModel.amount), else_=-FillModel.amount)
        query = select(func.coalesce(func.sum(signed), 0)).where(FillModel.instrument == instrument)
        with self._work.read() as session:
            return float(session.scalar(query) or 0.0)

    def position_change_of_cycle(self, cycle_id: str, instrument: str) -> float:
        """Signed sum of our fills in ``instrument`` of the orders one cycle sent: what the
        hedge position should have moved by since that cycle read it."""
        signed = case((FillModel.side == Side.BUY.value, FillModel.amount), else_=-FillModel.amount)
        labels = select(OrderModel.label).where(OrderModel.cycle_id == cycle_id)
        query = select(func.coalesce(func.sum(signed), 0)).where(
            FillModel.instrument == instrument, FillModel.label.in_(labels)
        )
        with self._sessions() as session:
            return float(session.scalar(query) or 0.0)

    # -- trading state -------------------------------------------------------------------------

    def risk_reads(
        self, currency: str, instrument: str, rate_since: datetime, notional_since: datetime
    ) -> RiskReads:
        """Everything the risk gate reads before an order, in one statement: the overall and
        ``currency``'s trading state, the orders recorded since ``rate_since`` and the amount
        of ``instrument`` ordered since ``notional_since`` (as :meth:`orders_created_since`
        and :meth:`ordered_amount_since` count them)."""
        with self._work.read() as session:
            return read_risk(
                session,
                global_scope=GLOBAL_SCOPE,
                currency_scope=currency,
                instrument=instrument,
                rate_since=rate_since,
                notional_since=notional_since,
            )

    def get_trading_state(self, scope: str = GLOBAL_SCOPE) -> TradingStateRow:
        """The persisted state of ``scope``; ACTIVE (``updated_at`` None) when never set."""
        with self._work.read() as session:
            row = session.get(TradingStateModel, scope)
            if row is None:
                return TradingStateRow(
                    scope=scope, state=TradingState.ACTIVE, reason="never set", updated_at=None
                )
            return TradingStateRow(
                scope=row.scope,
                state=TradingState(row.state),
                reason=row.reason,
                updated_at=row.updated_at,
            )

    def set_trading_state(
        self, state: TradingState | str, reason: str, ts: datetime, scope: str = GLOBAL_SCOPE
    ) -> None:
        try:
            value = TradingState(state).value
        except ValueError:
            allowed = ", ".join(s.value for s in TradingState)
            raise DataError(f"trading state {state!r} is not one of {allowed}") from None
        with self._work.write() as session:
            row = session.get(TradingStateModel, scope)
            if row is None:
                session.add(
                    TradingStateModel(scope=scope, state=value, reason=reason, updated_at=ts)
                )
            else:
                row.state, row.reason, row.updated_at = value, reason, ts

    # -- the cost report's reads: columns, in chunks, no ORM objects ----------------------------

    def report_rebalances(
        self, *, since: datetime | None = None, currency: str | None = None
    ) -> dict[str, RebalanceColumns]:
        """Rebalances as columns per currency for ``hedgebot report`` (see
        ``bot.store.report_rows``)."""
        return read_rebalances(self.engine, since=since, currency=currency)

    def order_links(self) -> list[OrderLink]:
        """Every order's label, venue id, cycle, rebalance, decision mid and currency."""
        return read_order_links(self.engine)

    def report_fills(self, since: datetime | None = None) -> list[Fill]:
        """Fills from ``since`` oldest first, read without ORM objects."""
        return read_fills(self.engine, since)

    # -- summary -------------------------------------------------------------------------------

    def summary(self) -> LedgerSummary:
        """Headline figures, aggregated in SQL (see :class:`LedgerSummary` for their units)."""
        with self._work.read() as session:
            return summarise(session)

    def day_totals(self, since: datetime, currencies: Iterable[str]) -> DayTotals:
        """The heartbeat's figures from ``since``, aggregated in SQL (:mod:`bot.store.day`)."""
        with self._work.read() as session:
            return day_totals(session, since, currencies)


def _append_event(session: Session, row: OrderModel, ts: datetime, detail: str) -> None:
    session.add(
        OrderEventModel(
            label=row.label,
            ts=ts,
            status=row.status,
            filled_amount=row.filled_amount,
            detail=detail,
        )
    )


def _rebalance_row(r: RebalanceModel) -> RebalanceRow:
    return RebalanceRow(
        id=r.id,
        cycle_id=r.cycle_id,
        ts=r.ts,
        currency=r.currency,
        mode=r.mode,
        policy=r.policy,
        params=json.loads(r.params),
        target_mode=r.target_mode,
        status=RebalanceStatus(r.status),
        reason=r.reason,
        instrument=r.instrument,
        greeks=None if r.greeks is None else greeks_from_json(r.greeks),
        **{name: getattr(r, name) for name in _REBALANCE_FIGURES},
    )


def _order_row(r: OrderModel) -> OrderRow:
    return OrderRow(
        label=r.label,
        cycle_id=r.cycle_id,
        rebalance_id=r.rebalance_id,
        venue_order_id=r.venue_order_id,
        instrument=r.instrument,
        side=Side(r.side),
        amount=r.amount,
        price=r.price,
        order_type=OrderType(r.order_type),
        post_only=r.post_only,
        reduce_only=r.reduce_only,
        time_in_force=TimeInForce(r.time_in_force),
        status=OrderStatus(r.status),
        filled_amount=r.filled_amount,
        average_price=r.average_price,
        decision_mid=r.decision_mid,
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


__all__ = [
    "GLOBAL_SCOPE",
    "OPEN_STATUSES",
    "DuplicateRecord",
    "GreeksSnapshot",
    "Ledger",
    "LedgerError",
    "LedgerSummary",
    "OrderEventRow",
    "OrderRow",
    "RebalanceRecord",
    "RebalanceRow",
    "RebalanceStatus",
    "TerminalOrder",
    "TradingState",
    "TradingStateRow",
    "UnknownOrder",
]
