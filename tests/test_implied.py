"""The vectorized Black-76 implied-vol solve that fills a missing ``mark_iv``."""

from __future__ import annotations

import numpy as np

from bot.greeks import black76
from bot.implied import implied_vol


def test_implied_vol_recovers_the_vol_of_every_identifiable_price_at_once() -> None:
    rng = np.random.default_rng(1)
    n = 500
    forward = np.full(n, 90_000.0)
    strike = rng.uniform(50_000, 150_000, n)
    tau = rng.uniform(1 / 365, 1.0, n)
    sigma = rng.uniform(0.2, 1.5, n)
    call = rng.random(n) < 0.5
    g = black76(forward, strike, tau, sigma, call)
    solved = implied_vol(g.price_usd, forward, strike, tau, call)
    # deep in the money with no time value left at float precision, no vol is identifiable
    identifiable = g.vega > 1e-4
    assert identifiable.sum() > 0.95 * n
    assert np.max(np.abs(solved - sigma)[identifiable]) < 1e-8


def test_prices_no_vol_reaches_are_nan_not_a_guess() -> None:
    forward, strike, tau = 30_000.0, 25_000.0, 0.1
    below_intrinsic = 4_000.0  # a call worth less than F - K
    above_forward = 31_000.0  # a call worth more than the forward
    solved = implied_vol(
        [below_intrinsic, above_forward, 0.0, -1.0, np.nan, 5_500.0, 5_500.0],
        forward,
        strike,
        [tau, tau, tau, tau, tau, 0.0, -0.1],  # the last two have expired
        True,
    )
    assert np.isnan(solved).all()


def test_a_recorded_deribit_mark_gives_a_plausible_iv() -> None:
    # BTC-24JUN22-30000-C on 2022-06-04 10:30 UTC: mark 0.05317014 BTC, forward 29,755.49
    tau = (19 * 24 + 21.5) / 24 / 365
    iv = implied_vol(0.05317014 * 29_755.49, 29_755.49, 30_000.0, tau, True)
    assert 0.55 < float(iv[0]) < 0.70
