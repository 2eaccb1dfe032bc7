"""The compiled inner loop of the book's valuation: delta and gamma of one leg.

Per path-step it adds ``size · N(d1)`` (put: ``N(d1) − 1``) to the delta and
``size · φ(d1) / (S σ √τ)`` to the gamma, where plain numpy would make a dozen passes over
memory. Same formulas as :func:`bot.backtest.book.bs_greeks` (Black–Scholes on spot with a
rate), which stays the reference. As in :mod:`bot.black76_kernel`: numpy's SIMD loops take
the log of S/K and the exp of −d1²/2 (several path-steps per instruction, where numba calls
libm once per path-step), and that one exp serves both N(d1), through the rational normal CDF
:func:`bot.black76_kernel.ncdf`, and φ(d1): libm's ``erfc``, ``log`` and ``exp`` per path-step
cost half again as much. N(d1) is taken in three loops per row, the branch-free Hart tail for
every path (which vectorises), ``ncdf`` again only where |d1| is beyond it, then the sums: the
numbers of ``ncdf`` per path-step. numba compiles it once, cached.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
import numpy.typing as npt

from bot.black76_kernel import HART_MAX, hart_tail, ncdf

Array = npt.NDArray[np.float64]
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@numba.njit(cache=True, nogil=True)
def _exponent(x: Array, q: Array, tau: Array, sigma: float, rate: float) -> None:
    """``x``: ln(S/K) in, d1 out; ``q = −d1²/2``."""
    rows, paths = x.shape
    for r in range(rows):
        vol_t = sigma * math.sqrt(tau[r])
        growth = rate * tau[r]
        inv_vol = 1.0 / vol_t
        half_vol = 0.5 * vol_t
        for p in range(paths):
            d1 = (x[r, p] + growth) * inv_vol + half_vol
            x[r, p] = d1
            q[r, p] = -0.5 * d1 * d1


# error_model="numpy": a division by zero would give inf rather than raise, so no check per
# division keeps the loops from vectorising (none divides by zero: taus and prices are positive).
@numba.njit(cache=True, nogil=True, error_model="numpy")
def _add_leg(
    prices: Array,
    d1: Array,
    e1: Array,
    tau: Array,
    sigma: float,
    is_call: bool,
    size: float,
    delta: Array,
    gamma: Array,
    with_gamma: bool,
    fresh: bool,
) -> None:
    """Add the leg given ``d1`` and ``e1 = exp(−d1²/2)``; a put's ``N(d1) − 1`` is taken as
    ``−N(−d1)``, without the cancellation. ``fresh``: add to 0.0, not to what is there."""
    rows, paths = prices.shape
    w = 1.0 if is_call else -1.0
    near = np.empty(paths)
    for r in range(rows):
        inv_vol = 1.0 / (sigma * math.sqrt(tau[r]))
        d_row, e_row, s_row = d1[r], e1[r], prices[r]
        # N(w·d1) as :func:`ncdf` takes it where |d1| < HART_MAX, for every path: without the
        # branch to the far tail the loop vectorises (Hart's formula is the dearest part).
        for p in range(paths):
            d = w * d_row[p]
            tail = hart_tail(abs(d), e_row[p])
            near[p] = 1.0 - tail if d > 0.0 else tail
        for p in range(paths):  # the far tail where it applies: ncdf's numbers everywhere
            d = w * d_row[p]
            if abs(d) >= HART_MAX:
                near[p] = ncdf(d, e_row[p])
        delta_row = delta[r]
        for p in range(paths):
            before = 0.0 if fresh else delta_row[p]
            delta_row[p] = before + size * w * near[p]
        if with_gamma:
            gamma_row = gamma[r]
            for p in range(paths):
                before = 0.0 if fresh else gamma_row[p]
                gamma_row[p] = before + size * e_row[p] * _INV_SQRT_2PI * inv_vol / s_row[p]


def add_leg(
    prices: Array,
    strike: Array,
    tau: Array,
    sigma: float,
    is_call: bool,
    rate: float,
    size: float,
    delta: Array,
    gamma: Array,
    *,
    with_gamma: bool,
    work: tuple[Array, Array] | None = None,
    fresh: bool = False,
) -> None:
    """Add one live leg's delta and gamma (``size`` units) to ``delta``/``gamma`` in place;
    ``fresh``: to zeros instead (``0.0 + leg``, the numbers of zeroing them first, one pass
    over the block fewer).

    ``prices``, ``delta`` and ``gamma`` are ``(rows, paths)``, ``strike`` ``(paths,)`` and
    ``tau`` ``(rows,)`` years, all positive. ``work``: two scratch arrays of that shape (a
    caller that values block after block passes the same ones, warm in the cache)."""
    exponent: Any = _exponent
    kernel: Any = _add_leg
    s = np.ascontiguousarray(prices, dtype=np.float64)
    t = np.ascontiguousarray(tau, dtype=np.float64)
    x, q = (np.empty_like(s), np.empty_like(s)) if work is None else work
    np.divide(s, np.asarray(strike, dtype=np.float64), out=x)
    np.log(x, out=x)
    exponent(x, q, t, float(sigma), float(rate))
    np.exp(q, out=q)
    args = (float(sigma), bool(is_call), float(size), delta, gamma, bool(with_gamma), bool(fresh))
    kernel(s, x, q, t, *args)
