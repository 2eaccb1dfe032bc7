"""Implied volatility from option prices: a vectorized Black-76 inversion.

Deribit's ``public/get_book_summary_by_currency`` documents ``mark_iv`` for options, but real
answers (and the documentation's own example) often carry only ``mark_price``. The Greeks need a
vol, so it is recovered from the mark the way Deribit defines it: the Black-76 price on the
expiry's forward (Deribit API docs, "mark_iv: implied volatility for mark price"). An inverse
option's mark is in coin, worth ``mark x forward`` USD.

The Black-76 price is strictly increasing in sigma, so a bisection on a bracket cannot fail to
converge; a few Newton steps (vega) then polish the root. Every array element is solved at once.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from bot.greeks import black76

IV_LOW = 1e-4  # 0.01 %
IV_HIGH = 10.0  # 1000 %
_BISECT = 48  # bracket width x 2^-48: far below a basis point of vol
_NEWTON = 3

FloatArray = npt.NDArray[np.float64]


def implied_vol(
    price_usd: npt.ArrayLike,
    forward: npt.ArrayLike,
    strike: npt.ArrayLike,
    tau: npt.ArrayLike,
    is_call: npt.ArrayLike,
) -> FloatArray:
    """The Black-76 vol (decimal) of each price; NaN where no vol in [0.01 %, 1000 %] reaches
    it (a price below intrinsic value or above the forward, an expired option, bad inputs)."""
    p, f, k, t = (
        np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in (price_usd, forward, strike, tau)
    )
    call = np.atleast_1d(np.asarray(is_call, dtype=np.bool_))
    p, f, k, t, call = np.broadcast_arrays(p, f, k, t, call)
    ok = np.isfinite(p) & np.isfinite(f) & np.isfinite(k) & np.isfinite(t)
    ok &= (p > 0) & (f > 0) & (k > 0) & (t > 0)
    out = np.full(p.shape, np.nan)
    if not ok.any():
        return out
    p, f, k, t, call = p[ok], f[ok], k[ok], t[ok], call[ok]
    lo = np.full(p.shape, IV_LOW)
    hi = np.full(p.shape, IV_HIGH)
    reachable = (black76(f, k, t, lo, call).price_usd <= p) & (
        black76(f, k, t, hi, call).price_usd >= p
    )
    for _ in range(_BISECT):
        mid = 0.5 * (lo + hi)
        above = black76(f, k, t, mid, call).price_usd > p
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    sigma = 0.5 * (lo + hi)
    for _ in range(_NEWTON):
        g = black76(f, k, t, sigma, call)
        vega_per_unit = g.vega * 100.0  # greeks' vega is per vol point
        safe = np.maximum(vega_per_unit, 1e-12)
        step = np.where(vega_per_unit > 1e-12, (g.price_usd - p) / safe, 0.0)
        sigma = np.clip(sigma - step, lo - (hi - lo), hi + (hi - lo))
        sigma = np.clip(sigma, IV_LOW, IV_HIGH)
    out[ok] = np.where(reachable, sigma, np.nan)
    return out
