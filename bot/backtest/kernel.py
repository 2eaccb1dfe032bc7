"""The compiled inner loop of the book's valuation: delta and gamma of one leg, one pass.

Per path-step it reads the price once and adds ``size · N(d1)`` (or ``N(d1) − 1``) to the delta
and ``size · φ(d1) / (S σ √τ)`` to the gamma, where numpy would make a dozen passes over
memory. Same formulas as :func:`bot.backtest.book.bs_greeks` (Black–Scholes on spot with a
rate), which stays the reference; ``N`` is ``erfc(−x/√2)/2``. numba compiles it once, cached.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)


@numba.njit(cache=True, nogil=True)
def _add_leg(
    prices: Array,
    strike: Array,
    tau: Array,
    sigma: float,
    is_call: bool,
    rate: float,
    size: float,
    delta: Array,
    gamma: Array,
    with_gamma: bool,
) -> None:
    rows, paths = prices.shape
    for r in range(rows):
        vol_t = sigma * math.sqrt(tau[r])
        growth = rate * tau[r]
        inv_vol = 1.0 / vol_t
        for p in range(paths):
            s = prices[r, p]
            d1 = (math.log(s / strike[p]) + growth) * inv_vol + 0.5 * vol_t
            n1 = 0.5 * math.erfc(-d1 * _INV_SQRT_2)
            delta[r, p] += size * (n1 if is_call else n1 - 1.0)
            if with_gamma:
                gamma[r, p] += size * math.exp(-0.5 * d1 * d1) * _INV_SQRT_2PI * inv_vol / s


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
) -> None:
    """Add one live leg's delta and gamma (``size`` units) to ``delta``/``gamma`` in place.

    ``prices``, ``delta`` and ``gamma`` are ``(rows, paths)``, ``strike`` ``(paths,)`` and
    ``tau`` ``(rows,)`` years, all positive."""
    kernel: Any = _add_leg
    kernel(
        np.ascontiguousarray(prices),
        np.ascontiguousarray(strike, dtype=np.float64),
        np.ascontiguousarray(tau, dtype=np.float64),
        float(sigma),
        bool(is_call),
        float(rate),
        float(size),
        delta,
        gamma,
        bool(with_gamma),
    )
