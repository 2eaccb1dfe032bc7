"""Clock hedging: every ``interval_seconds``, trade the book back to its target.

The classic discrete hedge (Derman–Kamal: hedge-error std ∝ 1/√N for N rebalances). Between
rebalances it does nothing, whatever delta does.

Its only tolerance is the lot: when due, a book within half a lot of its target rounds to no
trade (``IN_BAND``), and a book exactly half a lot off stays put rather than rounding across the
target, so a book left half a lot off cannot flip sides every interval. That dead zone is
inherent to rounding, not a configured band, so it is never "widened" and never warned about.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from strategies.common import HedgeOrders, HedgeState, LotSpec, Reason
from strategies.lots import TOLERANCE_LOTS, round_to_lots
from strategies.validate import state_arrays

_IN_BAND, _SCHEDULED, _NOT_DUE, _BELOW_MIN_LOT = (
    int(Reason.IN_BAND),
    int(Reason.SCHEDULED),
    int(Reason.NOT_DUE),
    int(Reason.BELOW_MIN_LOT),
)


@dataclass(frozen=True)
class TimeBandParams:
    """``interval_seconds``: time between rebalances, on the clock of ``HedgeState.now``."""

    interval_seconds: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.interval_seconds) and self.interval_seconds > 0):
            raise ValueError(
                f"time_band interval_seconds must be positive and finite, "
                f"got {self.interval_seconds!r}"
            )


def time_band(state: HedgeState, params: TimeBandParams, lot: LotSpec) -> HedgeOrders:
    """Per book: ``SCHEDULED`` trade to target when ``now − last_rebalance ≥ interval``.

    Otherwise ``NOT_DUE``; due but within half a lot of target, ``IN_BAND``; due but the
    rounded trade is below the instrument minimum, ``BELOW_MIN_LOT``. ``band_low``/``band_high``
    report the half-lot dead zone around the target.
    """
    delta, target, price, now, last = state_arrays(
        state, ("delta", "target", "price", "now", "last_rebalance")
    )
    half_lot = 0.5 * lot.coin_per_step(price)
    due = (now - last) >= params.interval_seconds
    gap = target - delta
    wants = due & (np.abs(gap) > half_lot * (1.0 + 2.0 * TOLERANCE_LOTS))
    rounded = round_to_lots(np.where(wants, gap, 0.0), price, lot)
    reason = np.where(
        due,
        np.where(wants, np.where(rounded.below_min, _BELOW_MIN_LOT, _SCHEDULED), _IN_BAND),
        _NOT_DUE,
    ).astype(np.int8)
    return HedgeOrders(
        amount=rounded.amount,
        delta_change=rounded.delta_change,
        band_low=target - half_lot,
        band_high=target + half_lot,
        reason=reason,
    )
