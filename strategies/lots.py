"""Turning a wanted change of coin delta into an order the venue will accept.

Inverse instruments (BTC-PERPETUAL) trade in USD in steps of ``lot.step`` (10 USD), so
``amount = round(delta_change · price / step) · step`` and the delta the order really adds is
``amount / price`` coin. Linear ones trade in coin: ``amount = round(delta_change / step) · step``.

Two roundings, both deterministic:

* nearest (the default) rounds half away from zero, for trades aimed at the target;
* ``outward=True`` rounds the size up to whole lots, for trades aimed at a band edge: the book
  then lands on the edge or just inside it, never a fraction of a lot outside, where the next
  cycle would trade again.

An amount below the instrument's minimum becomes zero and is flagged, never sent.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from strategies.common import Array, LotSpec

# Differences below a millionth of a lot are float noise, not delta: rounding and band tests
# ignore them so a book that landed exactly on a band edge or a half lot does not trade again.
TOLERANCE_LOTS = 1e-6


@dataclass(frozen=True)
class Rounded:
    """A wanted change rounded to lots, per book.

    ``amount`` is signed in the instrument's unit; ``delta_change`` is the coin delta that
    amount adds; ``below_min`` marks books that wanted a trade whose rounded size is below the
    instrument's minimum (their amount is zero).
    """

    amount: Array
    delta_change: Array
    below_min: npt.NDArray[np.bool_]


def round_half_away(x: Array) -> Array:
    """Round to the nearest integer, halves away from zero (2.5 → 3, −2.5 → −3); zero is +0.0.

    ``rint`` rounds to the nearest integer exactly (there is no ``x + 0.5`` to round, so values
    just below a half, 0.49999999999999994, stay below it) and differs only on exact halves,
    which it sends to even. ``x − rint(x)`` is exact, so those halves are found and moved away
    from zero: the numbers of ``trunc(x) ± (|x − trunc(x)| ≥ 0.5)`` in fewer passes.
    """
    return np.asarray(_nearest(x) + 0.0, dtype=np.float64)  # + 0.0: -0.0 (from -0.3) as 0.0


def _nearest(x: Array) -> Array:
    """:func:`round_half_away` but for the sign of a zero result (``-0.3`` gives ``-0.0``)."""
    whole = np.rint(x)
    off = x - whole
    halves = np.abs(off, out=off) == 0.5 if isinstance(off, np.ndarray) else abs(off) == 0.5
    if halves.any():  # rare: exact halves
        whole = np.where(halves, np.trunc(x) + np.sign(x), whole)
    return np.asarray(whole, dtype=np.float64)


@functools.cache
def step_decimals(step: float) -> int:
    """Decimal places of ``step`` (10 → 0, 0.0001 → 4), to strip float noise off amounts."""
    text = np.format_float_positional(step, trim="-")
    return len(text.split(".")[1]) if "." in text else 0


def amount_units(delta_change: Array, price: Array, lot: LotSpec) -> Array:
    """``delta_change`` (coin) in lot steps, unrounded."""
    amount = delta_change * price if lot.inverse else delta_change
    return np.asarray(amount / lot.step, dtype=np.float64)


def round_to_lots(
    delta_change: Array, price: Array, lot: LotSpec, *, outward: bool = False
) -> Rounded:
    """Round a wanted coin-delta change per book to the instrument's lots.

    ``outward=False`` rounds to the nearest lot (halves away from zero); ``outward=True``
    rounds the size up to whole lots, ignoring excesses below :data:`TOLERANCE_LOTS`.
    A zero wanted change is no trade and not flagged.

    When at most half the books want a change (a band policy on most steps), only those rows
    are rounded and the rest are zeros: the same numbers, element by element, for less work.
    """
    wanted, price = _aligned(np.asarray(delta_change, dtype=np.float64), price)
    if wanted.ndim == 1:
        nonzero = wanted != 0.0  # a cheap pass: the row list only when it pays
        count = int(np.count_nonzero(nonzero))
        if 2 * count <= wanted.size:
            amount, change = np.zeros(wanted.shape), np.zeros(wanted.shape)
            below_min = np.zeros(wanted.shape, dtype=np.bool_)
            if count:
                rows = np.flatnonzero(nonzero)
                part = _rounded(wanted[rows], price[rows], lot, outward)
                amount[rows], change[rows] = part.amount, part.delta_change
                below_min[rows] = part.below_min
            return Rounded(amount=amount, delta_change=change, below_min=below_min)
        return _rounded(wanted, price, lot, outward, nonzero)
    return _rounded(wanted, price, lot, outward)


def _aligned(wanted: Array, price: Array) -> tuple[Array, Array]:
    """``wanted`` and ``price`` broadcast to one shape (as they are, when they already share
    one: the common case, where broadcasting would only cost time)."""
    if type(price) is np.ndarray and price.shape == wanted.shape and price.dtype == np.float64:
        return wanted, price
    a, b = np.broadcast_arrays(wanted, price)
    return a, b


def _rounded(
    delta_change: Array,
    price: Array,
    lot: LotSpec,
    outward: bool,
    nonzero: npt.NDArray[np.bool_] | None = None,
) -> Rounded:
    """:func:`round_to_lots` on every row given; ``nonzero``: ``delta_change != 0`` when the
    caller has it."""
    units = amount_units(delta_change, price, lot)
    if outward:
        steps = np.sign(units) * np.ceil(np.maximum(np.abs(units) - TOLERANCE_LOTS, 0.0))
    else:
        steps = _nearest(units)  # a zero's sign is settled below
    # In place from here (``steps`` is this call's own array): the same operations, in order.
    amount = np.asarray(steps)
    np.multiply(amount, lot.step, out=amount)
    np.round(amount, step_decimals(lot.step), out=amount)
    too_small = np.abs(amount) < lot.min_amount
    if too_small.any():
        np.copyto(amount, 0.0, where=too_small)
    amount += 0.0  # turns -0.0 into 0.0
    change = amount / price if lot.inverse else amount
    return Rounded(
        amount=amount,
        delta_change=np.asarray(change, dtype=np.float64),
        below_min=too_small & (delta_change != 0 if nonzero is None else nonzero),
    )
