"""Clock hedging: every ``interval_seconds``, trade the book back to its target.

The classic discrete hedge (Derman–Kamal: hedge-error std ∝ 1/√N for N rebalances). Between
rebalances it does nothing, whatever delta does.

One tolerance is the lot's: when due, a book within half a lot of its target rounds to no
trade (``IN_BAND``), and a book exactly half a lot off stays put rather than rounding across the
target, so a book left half a lot off cannot flip sides every interval. That dead zone is
inherent to rounding, not a configured band, so it is never "widened" and never warned about.

Time has a tolerance too: ``now − last ≥ interval − TIME_TOLERANCE_SECONDS``. Clocks built from
float steps (``k · step`` in a backtest, epoch seconds in the daemon) put an instant that is due
a rounding error early (with ``step = 1/3`` s, 42 of 80 consecutive ``k · step`` differences fall
short of ``step``); without the tolerance that rebalance waits a whole extra step. A millisecond
is far below any check interval and far above the float error of an epoch time (about 2e-7 s),
so it changes no honest decision.
Callers stamp ``last_rebalance`` with the instant the trade was due (the tick), not when the
order finished, so the schedule does not creep by one cycle's run time per rebalance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from strategies.common import Array, HedgeOrders, HedgeState, LotSpec, Reason, reason_codes
from strategies.lots import TOLERANCE_LOTS, round_to_lots
from strategies.validate import state_arrays

TIME_TOLERANCE_SECONDS = 1e-3
"""Slack on the due test, seconds: below it a rebalance counts as due (see the module docstring)."""


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


def is_due(now: Array, last: Array, interval_seconds: float) -> npt.NDArray[np.bool_]:
    """Per book: the interval since ``last`` has elapsed, up to :data:`TIME_TOLERANCE_SECONDS`.

    The one rule for the daemon and the backtest (``-inf`` last: always due).
    """
    return np.asarray((now - last) >= interval_seconds - TIME_TOLERANCE_SECONDS)


def time_band(state: HedgeState, params: TimeBandParams, lot: LotSpec) -> HedgeOrders:
    """Per book: ``SCHEDULED`` trade to target when ``now − last_rebalance ≥ interval`` (up to
    :data:`TIME_TOLERANCE_SECONDS`).

    Otherwise ``NOT_DUE``; due but within half a lot of target, ``IN_BAND``; due but the
    rounded trade is below the instrument minimum, ``BELOW_MIN_LOT``. ``band_low``/``band_high``
    report the half-lot dead zone around the target.
    """
    delta, target, price, now, last = state_arrays(
        state, ("delta", "target", "price", "now", "last_rebalance")
    )
    half_lot = lot.coin_per_step(price)
    half_lot *= 0.5
    band_low, band_high = target - half_lot, target + half_lot
    due = is_due(now, last, params.interval_seconds)
    if not due.any():  # off schedule on every book: nothing to weigh or round
        shape = np.broadcast_shapes(*(np.shape(a) for a in (delta, target, price, now, last)))
        return HedgeOrders(
            amount=np.zeros(shape),
            delta_change=np.zeros(shape),
            band_low=band_low,
            band_high=band_high,
            reason=np.full(shape, int(Reason.NOT_DUE), dtype=np.int8),
        )
    gap = target - delta
    wants = due & (np.abs(gap) > half_lot * (1.0 + 2.0 * TOLERANCE_LOTS))
    every = wants.all() and gap.shape == wants.shape  # then the gap itself is the trade wanted
    rounded = round_to_lots(gap if every else np.where(wants, gap, 0.0), price, lot)
    reason = reason_codes(
        Reason.NOT_DUE,
        (
            (due, Reason.IN_BAND),
            (wants, Reason.SCHEDULED),
            (rounded.below_min, Reason.BELOW_MIN_LOT),
        ),
    )
    return HedgeOrders(
        amount=rounded.amount,
        delta_change=rounded.delta_change,
        band_low=band_low,
        band_high=band_high,
        reason=reason,
    )
