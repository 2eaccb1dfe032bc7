"""The ledger's columns that ``hedgebot report`` needs, read once, in chunks, as arrays.

A year of rebalances is a million rows: ORM objects for each would cost gigabytes and minutes.
These reads are SQLAlchemy Core selects of only the needed columns, filtered (``since``,
``currency``) in SQL and streamed in partitions (``yield_per``) into numpy columns, so memory is
a few dozen bytes per row. The SQL is portable (SQLite and PostgreSQL): plain joins, a
``GROUP BY`` and ``MAX``. Numbers are read without the ``Number`` type's per-value conversion
(``type_coerce`` to ``Float``): NULL becomes NaN, which the ledger can never store (it refuses
non-finite numbers), so NaN here means "not recorded".
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import JSON, Engine, Executable, Float, String, cast, func, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

from bot.domain import Fill
from bot.store.models import (
    FillModel,
    GreeksSnapshotModel,
    OrderModel,
    RebalanceModel,
    fill_of,
)

FloatArray = npt.NDArray[np.float64]
CHUNK_ROWS = 50_000

REBALANCE_NUMBERS = (
    "index_price",
    "hedge_mid",
    "delta_before",
    "band_low",
    "band_high",
    "gamma",
    "vega",
    "theta",
    "equity",
    "trade_amount",
    "trade_delta",
)
_REBALANCE_TEXT = ("cycle_id", "currency", "target_mode", "status", "reason", "instrument")


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def stamps_of(micros: npt.NDArray[np.int64]) -> list[datetime]:
    """Aware UTC datetimes of microseconds since the epoch."""
    naive = micros.astype("datetime64[us]").astype(object)
    return [d.replace(tzinfo=UTC) for d in naive]


@dataclass
class RebalanceColumns:
    """Rebalances of one currency oldest first (by time, then id), one entry per row in every
    column.

    ``ts_us`` is the time in microseconds since the epoch (UTC); ``numbers`` holds
    :data:`REBALANCE_NUMBERS` (NaN: not recorded); ``iv`` the mean IV stored with the greeks
    (NaN: none); ``snapshot_hedge`` the hedge position of the cycle's greeks snapshot (NaN: no
    snapshot from ``since``).
    """

    id: npt.NDArray[np.int64]
    ts_us: npt.NDArray[np.int64]
    cycle_id: npt.NDArray[np.str_]
    text: dict[str, list[Any]]  # currency, target_mode, status, reason, instrument
    numbers: dict[str, FloatArray]
    iv: FloatArray
    snapshot_hedge: FloatArray

    def __len__(self) -> int:
        return len(self.ts_us)


@dataclass
class _Chunks:
    """One currency's columns as they arrive, chunk by chunk."""

    ids: list[npt.NDArray[np.int64]] = field(default_factory=list)
    ts_us: list[npt.NDArray[np.int64]] = field(default_factory=list)
    cycle_ids: list[npt.NDArray[np.str_]] = field(default_factory=list)
    text: dict[str, list[Any]] = field(default_factory=lambda: {k: [] for k in _REBALANCE_TEXT[1:]})
    numbers: dict[str, list[FloatArray]] = field(
        default_factory=lambda: {k: [] for k in REBALANCE_NUMBERS}
    )
    iv: list[FloatArray] = field(default_factory=list)
    hedge: list[FloatArray] = field(default_factory=list)

    def columns(self) -> RebalanceColumns:
        return RebalanceColumns(
            id=np.concatenate(self.ids),
            ts_us=np.concatenate(self.ts_us),
            cycle_id=np.concatenate(self.cycle_ids),
            text=self.text,
            numbers={k: np.concatenate(v) for k, v in self.numbers.items()},
            iv=np.concatenate(self.iv),
            snapshot_hedge=np.concatenate(self.hedge),
        )


@dataclass(frozen=True)
class OrderLink:
    """What a fill's order tells the report: its cycle, rebalance and decision mid."""

    label: str
    venue_order_id: str | None
    cycle_id: str
    rebalance_id: int | None
    decision_mid: float | None
    currency: str | None  # of its rebalance, when it has one


@dataclass
class _Interner:
    """One string object per distinct value: a million status strings cost one."""

    pool: dict[Any, Any] = field(default_factory=dict)

    def __call__(self, values: Sequence[Any]) -> list[Any]:
        setdefault = self.pool.setdefault
        return [setdefault(v, v) for v in values]


def _floats(values: Sequence[Any]) -> FloatArray:
    # numpy turns None into NaN and Decimal (PostgreSQL NUMERIC) into float.
    return np.asarray(values, dtype=np.float64)


def _iv_column(dialect: str) -> ColumnElement[Any]:
    """The ``iv`` key of the stored greeks, extracted by the database where it can (SQLite's
    ``JSON_EXTRACT``, PostgreSQL's ``->>``), else the whole JSON text for :func:`_iv_of`."""
    greeks = RebalanceModel.greeks
    if dialect == "sqlite":
        extracted: ColumnElement[Any] = type_coerce(greeks, JSON)["iv"].as_float()
        return extracted.label("iv")
    if dialect == "postgresql":
        extracted = cast(greeks, JSONB)["iv"].as_float()
        return extracted.label("iv")
    return greeks.label("iv")


def _stamp_column(dialect: str) -> ColumnElement[Any]:
    """``ts`` as SQLite's stored text (parsed by :func:`_stamps`, much faster than the
    generic datetime processor), elsewhere as the driver's datetime."""
    ts = RebalanceModel.ts
    if dialect == "sqlite":
        return type_coerce(ts, String).label("ts")
    return ts.label("ts")


def _micros(values: Sequence[Any]) -> npt.NDArray[np.int64]:
    """Microseconds since the epoch of SQLite's UTC text (``YYYY-MM-DD HH:MM:SS.ffffff``,
    parsed by numpy) or of the driver's datetimes (naive ones are UTC)."""
    if values and isinstance(values[0], str):  # one driver, one type for the whole column
        return np.asarray(values, dtype="datetime64[us]").astype(np.int64)
    aware = (v if v.tzinfo else v.replace(tzinfo=UTC) for v in values)
    return np.asarray([(v - EPOCH) // MICROSECOND for v in aware], dtype=np.int64)


def _ivs(values: Sequence[Any]) -> FloatArray:
    if all(v is None or isinstance(v, int | float) for v in values):
        return _floats(values)
    return np.fromiter((_iv_of(v) for v in values), np.float64, count=len(values))


def _iv_of(greeks: str | None) -> float:
    if not greeks:
        return float("nan")
    iv = json.loads(greeks).get("iv")
    return float("nan") if iv is None else float(iv)


def _partitions(
    engine: Engine, query: Executable, *, plain: bool = False
) -> Iterator[Sequence[Any]]:
    """The rows of ``query`` in partitions of :data:`CHUNK_ROWS`, streamed.

    ``plain``: the select's columns need no result processing (numbers and stamps coerced to
    plain types); on SQLite the rows then come straight from the driver's cursor, as
    SQLAlchemy's row objects were a fifth of the report's time over a million rows. Otherwise,
    and on PostgreSQL (a server-side cursor), SQLAlchemy streams them."""
    with engine.connect() as conn:
        if plain and engine.dialect.name == "sqlite":
            # Not with yield_per: its buffering strategy reads rows ahead from the cursor.
            result = conn.execute(query)
            cursor = result.cursor
            while rows := cursor.fetchmany(CHUNK_ROWS):
                yield rows
            result.close()
            return
        yield from conn.execution_options(yield_per=CHUNK_ROWS).execute(query).partitions()


def read_rebalances(
    engine: Engine, *, since: datetime | None = None, currency: str | None = None
) -> dict[str, RebalanceColumns]:
    """Rebalances from ``since`` (inclusive), of ``currency`` when given, by currency, with
    the hedge position of their cycle's newest greeks snapshot from ``since``."""
    r, s = RebalanceModel, GreeksSnapshotModel
    dialect = engine.dialect.name
    recent = () if since is None else (s.ts >= since,)
    snapshot_hedge = type_coerce(s.hedge_position, Float)
    columns = (
        r.id,
        _stamp_column(dialect),
        *(getattr(r, name) for name in _REBALANCE_TEXT),
        _iv_column(dialect),
        *(type_coerce(getattr(r, name), Float).label(name) for name in REBALANCE_NUMBERS),
    )
    if dialect == "sqlite":
        # Looked up per row through the cycle_id index: a third faster on SQLite than grouping
        # the whole snapshot table first and joining.
        newest = (
            select(snapshot_hedge).where(s.cycle_id == r.cycle_id, *recent).order_by(s.id.desc())
        )
        query = select(*columns, newest.limit(1).scalar_subquery().label("snapshot_hedge"))
    else:
        last = (
            select(s.cycle_id, func.max(s.id).label("snapshot_id"))
            .where(*recent)
            .group_by(s.cycle_id)
            .subquery()
        )
        query = (
            select(*columns, snapshot_hedge.label("snapshot_hedge"))
            .outerjoin(last, last.c.cycle_id == r.cycle_id)
            .outerjoin(s, s.id == last.c.snapshot_id)
        )
    query = query.order_by(r.ts, r.id)
    if since is not None:
        query = query.where(r.ts >= since)
    if currency is not None:
        query = query.where(r.currency == currency)
    by_ccy: dict[str, _Chunks] = {}
    intern = _Interner()
    n_text = len(_REBALANCE_TEXT)
    for part in _partitions(engine, query, plain=True):
        cols = list(zip(*part, strict=True))
        del part
        currencies = np.asarray(intern(cols[3]), dtype=object)
        ids = np.asarray(cols[0], dtype=np.int64)
        ts_us = _micros(cols[1])
        cycle_ids = np.asarray(cols[2], dtype=np.str_)
        text = {
            name: np.asarray(intern(cols[2 + k]), dtype=object)
            for k, name in enumerate(_REBALANCE_TEXT[1:], start=1)
        }
        iv = _ivs(cols[2 + n_text])
        numbers = {name: _floats(cols[3 + n_text + k]) for k, name in enumerate(REBALANCE_NUMBERS)}
        hedge = _floats(cols[-1])
        del cols
        names = sorted(set(currencies.tolist()))
        for ccy in names:
            acc = by_ccy.setdefault(ccy, _Chunks())
            mine: Any = slice(None) if len(names) == 1 else currencies == ccy
            acc.ids.append(ids[mine])
            acc.ts_us.append(ts_us[mine])
            # Cycle ids are one string per row: kept in a numpy array, not as a million small
            # objects that would pin the memory of every chunk read around them.
            acc.cycle_ids.append(cycle_ids[mine])
            for name, values in text.items():
                acc.text[name].extend(values[mine].tolist())
            acc.iv.append(iv[mine])
            for name, column in numbers.items():
                acc.numbers[name].append(column[mine])
            acc.hedge.append(hedge[mine])
    return {ccy: by_ccy.pop(ccy).columns() for ccy in sorted(by_ccy)}


def read_order_links(engine: Engine) -> list[OrderLink]:
    """Every order oldest first, with its rebalance's currency (one join, no ORM)."""
    o, r = OrderModel, RebalanceModel
    query = (
        select(
            o.label,
            o.venue_order_id,
            o.cycle_id,
            o.rebalance_id,
            o.decision_mid,
            r.currency,
        )
        .outerjoin(r, r.id == o.rebalance_id)
        .order_by(o.created_at, o.label)
    )
    links: list[OrderLink] = []
    for part in _partitions(engine, query):
        links.extend(OrderLink(*row) for row in part)
    return links


def read_fills(engine: Engine, since: datetime | None = None) -> list[Fill]:
    """The fills from ``since`` (inclusive), oldest first (Core rows, no ORM objects)."""
    f = FillModel
    query = select(*f.__table__.columns).order_by(f.ts, f.trade_id)
    if since is not None:
        query = query.where(f.ts >= since)
    fills: list[Fill] = []
    for part in _partitions(engine, query):
        fills.extend(fill_of(row) for row in part)
    return fills
