"""The recorded Deribit option chain: read per query for one replay, or once for many.

One replay asks the Parquet file three questions (which snapshots, one snapshot's chain, a few
instruments' history); a rolling replay asks them for every week, so it loads the needed
columns once (about 165 MB for the 2025-12 → 2026-08 file) and filters them in memory.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bot.domain import DataError

Array = npt.NDArray[np.float64]
CHAIN_COLUMNS = (
    "snapshot_file",
    "timestamp",
    "instrument_name",
    "underlying",
    "option_type",
    "strike",
    "expiry_datetime",
    "mark_price",
    "implied_volatility",
    "index_price",
)
Filter = tuple[str, str, Any]  # (column, "=" or "in", value): pyarrow's DNF filter terms


def epochs(stamps: pd.Series) -> Array:
    """Epoch seconds of ISO timestamps; DataError when one does not parse."""
    try:
        parsed = pd.to_datetime(stamps, format="ISO8601", utc=True)
    except (ValueError, TypeError) as exc:
        raise DataError(f"unreadable chain timestamps: {exc}") from exc
    return np.asarray(pd.DatetimeIndex(parsed).as_unit("us").asi8 / 1e6, dtype=np.float64)


class Chain:
    """The chain file at ``path``; ``preload`` reads :data:`CHAIN_COLUMNS` once up front."""

    def __init__(self, path: str, *, preload: bool = False) -> None:
        self.path = path
        self._table: pa.Table | None = self._load(list(CHAIN_COLUMNS)) if preload else None
        self._snapshots: tuple[npt.NDArray[np.object_], Array] | None = None

    def _load(self, columns: list[str], filters: list[Filter] | None = None) -> pa.Table:
        try:
            return pq.read_table(self.path, columns=columns, filters=filters)
        except (OSError, ValueError, KeyError, pa.ArrowException) as exc:
            raise DataError(f"{self.path}: cannot read the option chain: {exc}") from exc

    def rows(self, columns: tuple[str, ...], filters: list[Filter] | None = None) -> pd.DataFrame:
        """The ``columns`` of the rows matching every filter, as a DataFrame."""
        if self._table is None:
            return self._load(list(columns), filters).to_pandas()
        table = self._table
        for name, op, value in filters or []:
            field = pc.field(name)
            table = table.filter(field.isin(list(value)) if op == "in" else field == value)
        return table.select(list(columns)).to_pandas()

    def snapshots(self) -> tuple[npt.NDArray[np.object_], Array]:
        """Every snapshot's file name and time (epoch s), in time order."""
        if self._snapshots is None:
            snaps = self.rows(("snapshot_file", "timestamp")).drop_duplicates("snapshot_file")
            if snaps.empty:
                raise DataError(f"{self.path}: the option chain has no snapshots")
            times = epochs(snaps["timestamp"])
            order = np.argsort(times, kind="stable")
            files = snaps["snapshot_file"].to_numpy(dtype=object)[order]
            self._snapshots = (files, times[order])
        return self._snapshots

    def span(self) -> tuple[float, float]:
        """The first and last snapshot times, epoch s."""
        times = self.snapshots()[1]
        return float(times[0]), float(times[-1])

    def first_snapshot(self, at_or_after: float) -> tuple[str, float] | None:
        """The first snapshot (file name, epoch s) at or after ``at_or_after``, if any."""
        files, times = self.snapshots()
        i = int(np.searchsorted(times, at_or_after, side="left"))
        if i >= times.size:
            return None
        return str(files[i]), float(times[i])
