"""What every hedging policy takes and gives: arrays in, arrays out.

A policy is a pure function ``policy(state, params, lot) -> HedgeOrders``. ``state`` holds one
value per book (one live book, or 100,000 backtest paths), so the daemon and the backtest run the
same code. Deltas are in coin, gamma in coin per USD, prices in USD, times in seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]


class Reason(IntEnum):
    """Why a policy traded or did not, one code per book."""

    IN_BAND = 0  # delta within the band: no trade
    OUTSIDE_BAND = 1  # delta beyond the band: trade
    SCHEDULED = 2  # time-band interval elapsed: trade to target
    NOT_DUE = 3  # time-band interval not elapsed: no trade
    BELOW_MIN_LOT = 4  # a trade was wanted but rounds below the instrument's minimum

    @property
    def text(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class LotSpec:
    """How the hedge instrument is sized: ``step`` and ``min_amount`` in its amount unit.

    Inverse instruments (BTC-PERPETUAL) trade in USD, so one step is ``step / price`` coin of
    delta; linear ones trade in coin.
    """

    step: float
    min_amount: float
    inverse: bool = True

    def __post_init__(self) -> None:
        if not (self.step > 0 and self.min_amount > 0):
            raise ValueError("lot step and minimum must be positive")

    def coin_per_step(self, price: Array) -> Array:
        """Coin delta of one step at ``price``."""
        return self.step / price if self.inverse else np.full_like(price, self.step)


@dataclass(frozen=True)
class HedgeState:
    """One row per book; every field broadcasts to the same shape ``(n,)``.

    ``now`` and ``last_rebalance`` are seconds on any common clock (``-inf`` when never).
    ``sigma`` is annual volatility and ``tau`` years to the book's nearest expiry: only the
    gamma-scaled policy reads them.
    """

    delta: Array
    target: Array
    gamma: Array
    price: Array
    now: Array
    last_rebalance: Array
    sigma: Array
    tau: Array


@dataclass(frozen=True)
class HedgeOrders:
    """A policy's answer per book.

    ``amount`` is signed, in the instrument's amount unit, a multiple of the lot step and either
    zero or at least the minimum. ``delta_change`` is the coin delta that amount adds.
    ``band_low``/``band_high`` are the absolute deltas the policy tolerates. ``warnings`` are
    said once per call, e.g. when a band was widened to one lot to prevent ping-pong.
    """

    amount: Array
    delta_change: Array
    band_low: Array
    band_high: Array
    reason: npt.NDArray[np.int8]
    warnings: tuple[str, ...] = ()


def reason_codes(
    default: Reason, levels: Sequence[tuple[npt.NDArray[np.bool_], Reason]]
) -> npt.NDArray[np.int8]:
    """Per book, the reason of the last level whose mask holds, else ``default``.

    Each mask must lie within the one before it (a trade is wanted only where one is due, and
    is below the minimum only where wanted), so the code is ``default`` plus, per level, the
    step from the previous code where its mask holds: nested ``np.where`` gives the same codes,
    but its per-element branches cost several times these passes over one byte per book.
    """
    code: npt.NDArray[np.int8] | None = None
    before = int(default)
    for mask, reason in levels:
        step, before = int(reason) - before, int(reason)
        if step:
            term = np.multiply(np.asarray(mask).view(np.int8), step, dtype=np.int8)
            code = term if code is None else np.add(code, term, dtype=np.int8)
    if code is None:
        return np.array(before, dtype=np.int8)
    return np.add(code, int(default), dtype=np.int8)
