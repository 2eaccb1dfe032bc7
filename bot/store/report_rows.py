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
from datetime import UTC, datetime
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


@dataclass
class RebalanceColumns:
    """Rebalances oldest first (by time, then id), one entry per row in every column.

    ``numbers`` holds :data:`REBALANCE_NUMBERS` (NaN: not recorded); ``iv`` the mean IV stored
    with the greeks (NaN: none); ``snapshot_hedge`` the hedge position of the cycle's greeks
    snapshot (NaN: no snapshot from ``since``).
    """

    id: npt.NDArray[np.int64]
    ts: list[datetime]
    text: dict[str, list[Any]]
    numbers: dict[str, FloatArray]
    iv: FloatArray
    snapshot_hedge: FloatArray

    def __len__(self) -> int:
        return len(self.ts)

    def take(self, rows: npt.NDArray[np.intp]) -> RebalanceColumns:
        """The rows at ``rows`` (positions), in that order."""
        picked = rows.tolist()
        return RebalanceColumns(
            id=self.id[rows],
            ts=[self.ts[i] for i in picked],
            text={k: [v[i] for i in picked] for k, v in self.text.items()},
            numbers={k: v[rows] for k, v in self.numbers.items()},
            iv=self.iv[rows],
            snapshot_hedge=self.snapshot_hedge[rows],
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


def _stamps(values: Sequence[Any]) -> list[datetime]:
    """Aware UTC datetimes of SQLite's UTC text (``YYYY-MM-DD HH:MM:SS.ffffff``) or of the
    driver's datetimes."""
    parse = datetime.fromisoformat
    return [
        parse(v).replace(tzinfo=UTC)
        if isinstance(v, str)
        else v.replace(tzinfo=UTC)
        if v.tzinfo is None
        else v.astimezone(UTC)
        for v in values
    ]


def _ivs(values: Sequence[Any]) -> FloatArray:
    if all(v is None or isinstance(v, int | float) for v in values):
        return _floats(values)
    return np.fromiter((_iv_of(v) for v in values), np.float64, count=len(values))


def _iv_of(greeks: str | None) -> float:
    if not greeks:
        return float("nan")
    iv = json.loads(greeks).get("iv")
    return float("nan") if iv is None else float(iv)


def _partitions(engine: Engine, query: Executable) -> Iterator[Sequence[Any]]:
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=CHUNK_ROWS).execute(query)
        yield from result.partitions()


def read_rebalances(
    engine: Engine, *, since: datetime | None = None, currency: str | None = None
) -> RebalanceColumns:
    """Rebalances from ``since`` (inclusive), of ``currency`` when given, with the hedge
    position of their cycle's newest greeks snapshot from ``since``."""
    r, s = RebalanceModel, GreeksSnapshotModel
    newest = select(s.cycle_id, func.max(s.id).label("snapshot_id")).group_by(s.cycle_id)
    if since is not None:
        newest = newest.where(s.ts >= since)
    last = newest.subquery()
    query = (
        select(
            r.id,
            _stamp_column(engine.dialect.name),
            *(getattr(r, name) for name in _REBALANCE_TEXT),
            _iv_column(engine.dialect.name),
            *(type_coerce(getattr(r, name), Float).label(name) for name in REBALANCE_NUMBERS),
            type_coerce(s.hedge_position, Float).label("snapshot_hedge"),
        )
        .outerjoin(last, last.c.cycle_id == r.cycle_id)
        .outerjoin(s, s.id == last.c.snapshot_id)
        .order_by(r.ts, r.id)
    )
    if since is not None:
        query = query.where(r.ts >= since)
    if currency is not None:
        query = query.where(r.currency == currency)
    ids: list[npt.NDArray[np.int64]] = []
    ts: list[datetime] = []
    text: dict[str, list[Any]] = {k: [] for k in _REBALANCE_TEXT}
    numbers: dict[str, list[FloatArray]] = {k: [] for k in REBALANCE_NUMBERS}
    ivs: list[FloatArray] = []
    hedges: list[FloatArray] = []
    intern = _Interner()
    n_text = len(_REBALANCE_TEXT)
    for part in _partitions(engine, query):
        cols = list(zip(*part, strict=True))
        ids.append(np.asarray(cols[0], dtype=np.int64))
        ts.extend(_stamps(cols[1]))
        for k, name in enumerate(_REBALANCE_TEXT):
            values = cols[2 + k]
            text[name].extend(values if name == "cycle_id" else intern(values))
        ivs.append(_ivs(cols[2 + n_text]))
        for k, name in enumerate(REBALANCE_NUMBERS):
            numbers[name].append(_floats(cols[3 + n_text + k]))
        hedges.append(_floats(cols[-1]))
        del cols
    empty = np.zeros(0)
    return RebalanceColumns(
        id=np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64),
        ts=ts,
        text=text,
        numbers={k: np.concatenate(v) if v else empty for k, v in numbers.items()},
        iv=np.concatenate(ivs) if ivs else empty,
        snapshot_hedge=np.concatenate(hedges) if hedges else empty,
    )


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
