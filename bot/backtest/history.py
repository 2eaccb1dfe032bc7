"""Loaders for the real price and funding files in ``shared/data/prices``, quirks and all.

Files are read as they are and repaired in memory; every repair is counted in a
:class:`LoadReport` so a backtest on history says what it trusted. What each format needs:

- Binance exports (CryptoDataDownload): newest row first; ``unix`` in milliseconds for newer
  rows and seconds for older ones; ``date`` as ``2021-06-10 00:00:00`` or ``2017-08-17 06-AM``;
  2,649 hours between 2020-08-01 and 2020-11-20 recorded twice (once per unix format); gaps of
  up to 5 h. ``unix`` is the time we trust; the millisecond row wins a duplicate.
- CryptoCompare exports: ISO times with ``+00:00``; in the ETH file some rows' high/low do not
  enclose open/close (the high/low are widened to enclose them).
- Binance funding: ``timestamp,funding_rate`` every 8 h, timestamps with millisecond jitter.

Unusable data (missing columns, NaN or non-positive prices, unreadable times) raises
:class:`bot.domain.DataError` naming the file, column and row.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from bot.domain import DataError
from bot.units import FUNDING_PERIOD_SECONDS

Array = npt.NDArray[np.float64]
Seconds = npt.NDArray[np.int64]

PRICE_COLUMNS = ("open", "high", "low", "close")
_MS_THRESHOLD = 10**11  # a unix value above this is milliseconds (10^11 s is year 5138)


@dataclass(frozen=True)
class LoadReport:
    """What a loader read and what it had to fix."""

    source: str
    rows_read: int
    rows_kept: int
    newest_first: bool = False
    unix_ms_rows: int = 0
    unix_s_rows: int = 0
    date_formats: tuple[tuple[str, int], ...] = ()
    date_label_mismatches: int = 0  # rows whose date text disagrees with their unix time
    duplicates_removed: int = 0
    duplicate_conflicts: int = 0  # duplicated hours whose close prices differ
    gaps: int = 0  # spacings longer than the nominal step
    max_gap_seconds: int = 0
    ohlc_repaired: int = 0  # rows whose high/low did not enclose open/close
    timestamp_jitter_rows: int = 0  # funding times off the whole second

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["date_formats"] = dict(self.date_formats)
        return d


@dataclass(frozen=True)
class PriceHistory:
    """A cleaned, strictly increasing price series; ``times`` in epoch seconds (UTC)."""

    times: Seconds
    open: Array
    high: Array
    low: Array
    close: Array
    step_seconds: int
    report: LoadReport

    def __len__(self) -> int:
        return int(self.times.size)

    def on_grid(self, step_seconds: int, start: int | None = None) -> tuple[Seconds, Array, int]:
        """Close prices on a regular grid of ``step_seconds`` from ``start`` (epoch s).

        Each grid time takes the last close at or before it, as a hedger watching the market
        would during a data gap. Returns grid times, prices and how many grid points had no
        fresh observation (were carried forward). ``step_seconds`` must be a multiple of the
        data's own step: finer grids would invent flat stretches.
        """
        if step_seconds <= 0 or step_seconds % self.step_seconds:
            raise DataError(
                f"grid step {step_seconds}s must be a positive multiple of the data's "
                f"{self.step_seconds}s"
            )
        t0 = int(self.times[0]) if start is None else int(start)
        if t0 < self.times[0] or t0 > self.times[-1]:
            raise DataError(
                f"start {_iso(t0)} is outside the history, {_iso(self.times[0])} to"
                f" {_iso(self.times[-1])} UTC"
            )
        grid = np.arange(t0, int(self.times[-1]) + 1, step_seconds, dtype=np.int64)
        idx = np.searchsorted(self.times, grid, side="right") - 1
        carried = int(np.count_nonzero(self.times[idx] != grid))
        return grid, self.close[idx].copy(), carried


@dataclass(frozen=True)
class FundingSeries:
    """Perpetual funding: ``rate_8h[i]`` applies from ``times[i]`` (epoch s) to the next time."""

    times: Seconds
    rate_8h: Array
    report: LoadReport

    def __post_init__(self) -> None:
        if self.times.size == 0 or self.times.size != self.rate_8h.size:
            raise DataError("funding series needs equally many times and rates, at least one")
        if np.any(np.diff(self.times) <= 0):
            raise DataError("funding times must be strictly increasing")
        if not np.all(np.isfinite(self.rate_8h)):
            raise DataError("funding rates must be finite")

    def rate_at(self, t: npt.ArrayLike) -> Array:
        """The 8-hour rate in force at epoch seconds ``t``; raises outside the series."""
        ts = np.asarray(t, dtype=np.float64)
        last = self.times[-1] + FUNDING_PERIOD_SECONDS
        if np.any(ts < self.times[0]) or np.any(ts > last):
            raise DataError(f"funding asked for times outside {self.times[0]}..{last}")
        idx = np.searchsorted(self.times, ts, side="right") - 1
        return self.rate_8h[idx]


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(float(epoch), UTC).strftime("%Y-%m-%dT%H:%M")


def epoch_seconds(iso: str) -> float:
    """Epoch seconds of an ISO time; a time without a zone is UTC."""
    try:
        ts = datetime.fromisoformat(iso)
    except ValueError as exc:
        raise DataError(f"not an ISO time: {iso!r}") from exc
    return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).timestamp()


def _read_csv(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    try:
        df = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from exc
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing columns {missing} (has {list(df.columns)})")
    if df.empty:
        raise DataError(f"{path}: no rows")
    return df


def _prices(path: Path, df: pd.DataFrame) -> dict[str, Array]:
    """The four price columns as float64, rejecting NaN, infinities and non-positive values."""
    out: dict[str, Array] = {}
    for col in PRICE_COLUMNS:
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values) | (values <= 0)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{path}: column {col!r} has {int(bad.sum())} missing or non-positive values, "
                f"first at data row {row + 1}: {df[col].iloc[row]!r}"
            )
        out[col] = values
    return out


def _repair_ohlc(p: dict[str, Array]) -> int:
    """Widen high/low to enclose open and close; returns how many rows needed it."""
    top = np.maximum(p["open"], p["close"])
    bottom = np.minimum(p["open"], p["close"])
    bad = (p["high"] < top) | (p["low"] > bottom)
    p["high"] = np.maximum(p["high"], top)
    p["low"] = np.minimum(p["low"], bottom)
    return int(bad.sum())


def _to_seconds(values: Any) -> Seconds:
    arr: Seconds = pd.DatetimeIndex(values).as_unit("s").asi8.astype(np.int64)
    return arr


def _parse_dates(path: Path, text: pd.Series, fmt: str) -> Seconds:
    try:
        return _to_seconds(pd.to_datetime(text, format=fmt, utc=True))
    except (ValueError, TypeError) as exc:
        raise DataError(f"{path}: unreadable time in {text.name!r}: {exc}") from exc


def _first_per_time(times: npt.NDArray[Any]) -> tuple[npt.NDArray[np.intp], int]:
    """Row indices in time order keeping the first row of each repeated time, and how many
    repeats were dropped."""
    order = np.argsort(times, kind="stable")
    t_sorted = times[order]
    keep = np.ones(t_sorted.size, dtype=bool)
    keep[1:] = t_sorted[1:] != t_sorted[:-1]
    return order[keep], int(np.count_nonzero(~keep))


def _spacing(times: Seconds) -> tuple[int, int, int]:
    """Nominal step (the most common spacing), count of longer gaps, and the longest."""
    d = np.diff(times)
    if d.size == 0:
        return 3600, 0, 0
    steps, counts = np.unique(d, return_counts=True)
    nominal = int(steps[np.argmax(counts)])
    return nominal, int(np.count_nonzero(d > nominal)), int(d.max())


def load_binance_hourly(path: str | Path) -> PriceHistory:
    """A CryptoDataDownload Binance 1h export (``unix,date,symbol,open,high,low,close,...``)."""
    p = Path(path)
    df = _read_csv(p, ("unix", "date", *PRICE_COLUMNS))
    unix = pd.to_numeric(df["unix"], errors="coerce").to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(unix)) or np.any(unix <= 0):
        raise DataError(f"{p}: column 'unix' has missing or non-positive values")
    is_ms = unix > _MS_THRESHOLD
    seconds = np.where(is_ms, unix / 1000.0, unix)
    if np.any(seconds != np.round(seconds)):
        raise DataError(f"{p}: unix times that are not whole seconds")
    times = seconds.astype(np.int64)

    text = df["date"].astype(str)
    long_fmt = text.str.len().to_numpy() == 19
    labelled = np.empty(len(df), dtype=np.int64)
    labelled[long_fmt] = _parse_dates(p, text[long_fmt], "%Y-%m-%d %H:%M:%S")
    labelled[~long_fmt] = _parse_dates(p, text[~long_fmt], "%Y-%m-%d %I-%p")

    prices = _prices(p, df)
    repaired = _repair_ohlc(prices)
    # Sort by time, millisecond rows first within a time, then keep the first of each time.
    order = np.lexsort((~is_ms, times))
    t_sorted = times[order]
    keep = np.ones(t_sorted.size, dtype=bool)
    keep[1:] = t_sorted[1:] != t_sorted[:-1]
    close_sorted = prices["close"][order]
    first_of_group = np.maximum.accumulate(np.where(keep, np.arange(keep.size), 0))
    conflicts = int(np.count_nonzero(~keep & (close_sorted != close_sorted[first_of_group])))
    rows = order[keep]
    kept_times = times[rows]
    step, gaps, max_gap = _spacing(kept_times)
    report = LoadReport(
        source=str(p),
        rows_read=len(df),
        rows_kept=int(rows.size),
        newest_first=bool(times[0] > times[-1]),
        unix_ms_rows=int(is_ms.sum()),
        unix_s_rows=int((~is_ms).sum()),
        date_formats=(
            ("%Y-%m-%d %H:%M:%S", int(long_fmt.sum())),
            ("%Y-%m-%d %I-%p", int((~long_fmt).sum())),
        ),
        date_label_mismatches=int(np.count_nonzero(labelled != times)),
        duplicates_removed=int(np.count_nonzero(~keep)),
        duplicate_conflicts=conflicts,
        gaps=gaps,
        max_gap_seconds=max_gap,
        ohlc_repaired=repaired,
    )
    return _kept(kept_times, prices, rows, step, report)


def _kept(
    times: Seconds,
    prices: dict[str, Array],
    rows: npt.NDArray[np.intp],
    step: int,
    report: LoadReport,
) -> PriceHistory:
    """The history of the kept ``rows`` (already in time order)."""
    return PriceHistory(
        times=times,
        open=prices["open"][rows],
        high=prices["high"][rows],
        low=prices["low"][rows],
        close=prices["close"][rows],
        step_seconds=step,
        report=report,
    )


def load_cryptocompare_hourly(path: str | Path) -> PriceHistory:
    """A CryptoCompare histohour export (``datetime,open,high,low,close,volume``, ISO UTC)."""
    p = Path(path)
    df = _read_csv(p, ("datetime", *PRICE_COLUMNS))
    times = _parse_dates(p, df["datetime"].astype(str), "ISO8601")
    prices = _prices(p, df)
    repaired = _repair_ohlc(prices)
    rows, removed = _first_per_time(times)
    step, gaps, max_gap = _spacing(times[rows])
    report = LoadReport(
        source=str(p),
        rows_read=len(df),
        rows_kept=int(rows.size),
        newest_first=bool(times[0] > times[-1]),
        date_formats=(("ISO8601", len(df)),),
        duplicates_removed=removed,
        gaps=gaps,
        max_gap_seconds=max_gap,
        ohlc_repaired=repaired,
    )
    return _kept(times[rows], prices, rows, step, report)


def load_prices(path: str | Path) -> PriceHistory:
    """Either price format, told apart by its header."""
    p = Path(path)
    try:
        header = pd.read_csv(p, nrows=0).columns
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{p}: cannot read: {exc}") from exc
    if "unix" in header:
        return load_binance_hourly(p)
    if "datetime" in header:
        return load_cryptocompare_hourly(p)
    raise DataError(f"{p}: neither a Binance (unix,...) nor a CryptoCompare (datetime,...) file")


def load_funding(path: str | Path) -> FundingSeries:
    """Binance perpetual funding (``timestamp,funding_rate``, rate per 8 h), sorted, deduplicated.

    Timestamps carry millisecond jitter (``00:00:00.003``); they are rounded to the second.
    """
    p = Path(path)
    df = _read_csv(p, ("timestamp", "funding_rate"))
    try:
        stamps = pd.to_datetime(df["timestamp"].astype(str), format="ISO8601", utc=True)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{p}: unreadable time in 'timestamp': {exc}") from exc
    ns = pd.DatetimeIndex(stamps).as_unit("ns").asi8
    rounded = np.round(ns / 1e9).astype(np.int64)
    jitter = int(np.count_nonzero(ns % 1_000_000_000))
    rate = pd.to_numeric(df["funding_rate"], errors="coerce").to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(rate)):
        row = int(np.flatnonzero(~np.isfinite(rate))[0])
        raise DataError(f"{p}: funding_rate missing or not a number at data row {row + 1}")
    rows, removed = _first_per_time(rounded)
    _, gaps, max_gap = _spacing(rounded[rows])
    report = LoadReport(
        source=str(p),
        rows_read=len(df),
        rows_kept=int(rows.size),
        newest_first=bool(rounded[0] > rounded[-1]),
        date_formats=(("ISO8601", len(df)),),
        duplicates_removed=removed,
        gaps=gaps,
        max_gap_seconds=max_gap,
        timestamp_jitter_rows=jitter,
    )
    return FundingSeries(times=rounded[rows], rate_8h=rate[rows], report=report)
