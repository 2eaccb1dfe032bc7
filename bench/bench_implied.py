"""Implied vol from marks (``bot.implied``): the whole chain solved at once, against a scalar
Brent root-find per option (scipy's ``brentq``, what a per-row solve would do).

A chain of 1,000 BTC options (strikes 50k-150k, 1 day to 1 year, vols 30-120 %), priced by
Black-76 and solved back: the situation of a ``get_book_summary_by_currency`` answer that
carries no ``mark_iv``.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq

from bench.common import Row, seconds_per_call
from bot.greeks import black76
from bot.implied import IV_HIGH, IV_LOW, implied_vol

N = 1000


def _chain() -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(1)
    forward = np.full(N, 90_000.0)
    strike = rng.uniform(50_000, 150_000, N)
    tau = rng.uniform(1 / 365, 1.0, N)
    sigma = rng.uniform(0.3, 1.2, N)
    call = rng.random(N) < 0.5
    price = black76(forward, strike, tau, sigma, call).price_usd
    return price, forward, strike, tau, call


def _scalar(price: np.ndarray, f: np.ndarray, k: np.ndarray, t: np.ndarray, c: np.ndarray) -> None:
    for i in range(N):

        def gap(s: float, i: int = i) -> float:
            return float(black76(f[i], k[i], t[i], s, c[i]).price_usd) - float(price[i])

        if gap(IV_LOW) <= 0 <= gap(IV_HIGH):
            brentq(gap, IV_LOW, IV_HIGH, xtol=1e-10)


def run() -> list[Row]:
    chain = _chain()
    ours = seconds_per_call(lambda: implied_vol(*chain), repeat=3)
    scalar = seconds_per_call(lambda: _scalar(*chain), repeat=1, max_calls=1)
    return [
        Row(
            f"implied vol, {N} options",
            ours * 1e3,
            " ms",
            "brentq per option",
            scalar * 1e3,
            higher_is_better=False,
        )
    ]
