"""Per-rebalance report rows kept as columns, handed out as :class:`RebalanceCost` on demand.

A year of two currencies is a million rebalances; a frozen dataclass for each would cost
gigabytes before the first line is printed. :class:`RebalanceTable` is a read-only sequence
over numpy columns that builds the row object when it is indexed or iterated, so the report
keeps its row-by-row interface (``book.rebalances[i].fees_usd``) at a few dozen bytes a row.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import overload

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class RebalanceCost:
    """One rebalance: what it saw and decided, what its fills cost, and the funding paid on the
    hedge until the next rebalance (0 for the last one)."""

    id: int
    cycle_id: str
    ts: datetime
    status: str
    reason: str
    target_mode: str
    index_price: float | None
    delta_before: float | None
    band_low: float | None
    band_high: float | None
    trade_amount: float | None
    filled_amount: float
    delta_held: float | None
    hedge_held: float | None
    fees_coin: float
    fees_usd: float
    slippage_coin: float
    slippage_usd: float
    slippage_bps: float | None
    funding_coin: float
    funding_usd: float

    @property
    def cost_usd(self) -> float:
        return self.fees_usd + self.slippage_usd + self.funding_usd


# Columns that are None when not recorded (NaN in the arrays).
OPTIONAL = (
    "index_price",
    "delta_before",
    "band_low",
    "band_high",
    "trade_amount",
    "delta_held",
    "hedge_held",
    "slippage_bps",
)
# Sums over a rebalance's fills: a rebalance without fills has the integer 0 (an empty sum),
# as the row-by-row report always had.
FILL_SUMS = ("filled_amount", "fees_coin", "fees_usd", "slippage_coin", "slippage_usd")
NUMBERS = (*OPTIONAL, *FILL_SUMS, "funding_coin", "funding_usd")


def _optional(x: float) -> float | None:
    return None if math.isnan(x) else x


@dataclass(frozen=True)
class RebalanceTable(Sequence[RebalanceCost]):
    """Rebalances oldest first as columns (see the module docstring). ``numbers`` holds every
    name of :data:`NUMBERS` (NaN: None); ``has_fills`` marks rows whose fills were summed."""

    id: npt.NDArray[np.int64]
    cycle_id: npt.NDArray[np.str_]
    ts_us: npt.NDArray[np.int64]  # microseconds since the epoch, UTC
    status: Sequence[str]
    reason: Sequence[str]
    target_mode: Sequence[str]
    numbers: dict[str, FloatArray]
    has_fills: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.ts_us)

    @overload
    def __getitem__(self, i: int) -> RebalanceCost: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[RebalanceCost]: ...

    def __getitem__(self, i: int | slice) -> RebalanceCost | Sequence[RebalanceCost]:
        if isinstance(i, slice):
            return [self._row(k) for k in range(*i.indices(len(self)))]
        k = i + len(self) if i < 0 else i
        if not 0 <= k < len(self):
            raise IndexError(i)
        return self._row(k)

    def __iter__(self) -> Iterator[RebalanceCost]:
        return (self._row(k) for k in range(len(self)))

    def _row(self, k: int) -> RebalanceCost:
        nums: dict[str, float | None] = {name: float(self.numbers[name][k]) for name in NUMBERS}
        for name in OPTIONAL:
            nums[name] = _optional(float(self.numbers[name][k]))
        if not self.has_fills[k]:
            nums.update(dict.fromkeys(FILL_SUMS, 0))
        return RebalanceCost(
            id=int(self.id[k]),
            cycle_id=str(self.cycle_id[k]),
            ts=EPOCH + timedelta(microseconds=int(self.ts_us[k])),
            status=self.status[k],
            reason=self.reason[k],
            target_mode=self.target_mode[k],
            **nums,  # type: ignore[arg-type]
        )

    def cost_usd(self) -> FloatArray:
        """Every row's :attr:`RebalanceCost.cost_usd`, as one array."""
        n = self.numbers
        return n["fees_usd"] + n["slippage_usd"] + n["funding_usd"]

    def traded_rows(self) -> npt.NDArray[np.intp]:
        """Positions of the rows that traded (status ``traded``) or had fills."""
        traded = np.asarray([s == "traded" for s in self.status], dtype=np.bool_)
        return np.flatnonzero(traded | (self.numbers["filled_amount"] != 0))
