"""The simulated market's volatility smile: one quadratic in log-moneyness for every expiry."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from bot.domain import DataError

FloatArray = npt.NDArray[np.float64]
IV_FLOOR = 0.05  # a smile setting that would give a lower (or negative) vol is floored here


def smile_iv(
    forward: FloatArray | float,
    strike: FloatArray | float,
    volatility: float,
    skew: float,
    curvature: float,
) -> FloatArray:
    """iv = volatility + skew·k + curvature·k², k = log(K/F), floored at ``IV_FLOOR``."""
    f = np.asarray(forward, dtype=np.float64)
    k = np.asarray(strike, dtype=np.float64)
    if not (np.all(np.isfinite(f)) and np.all(np.isfinite(k)) and np.all(f > 0) and np.all(k > 0)):
        raise DataError("smile needs positive finite forwards and strikes")
    m = np.log(k / f)
    iv: FloatArray = np.maximum(volatility + skew * m + curvature * m * m, IV_FLOOR)
    return iv
