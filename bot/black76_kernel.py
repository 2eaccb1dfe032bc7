"""The compiled Black-76 kernel behind :func:`bot.greeks.black76`: one pass per option.

numba compiles it once (cached beside the module). Small inputs run on the calling thread: on a
busy two-core machine waking a thread pool costs more than the work. Large inputs run on
numba's threads; its default ("workqueue") pool is neither thread- nor fork-safe, so callers of
this process take turns through a lock, and a forked child runs the serial build.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from typing import Any

import numba
import numpy as np
import numpy.typing as npt

from bot.units import DAYS_PER_YEAR

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

PARALLEL_MIN = 20_000  # options; below this one thread is faster
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_LOCK = threading.Lock()
_PARENT_PID = os.getpid()


def run(inputs: Sequence[npt.NDArray[Any]], rate: float, out: Sequence[FloatArray]) -> int:
    """Fill ``out`` (the nine :class:`~bot.greeks.OptionGreeks` fields, flat) from the flat
    ``inputs`` forward, strike, tau, sigma, is_call (each of the output's length or of length
    one); returns how many options had a bad input (0 when all are valid)."""
    serial: Any = _serial
    if out[0].shape[0] < PARALLEL_MIN or os.getpid() != _PARENT_PID:
        return int(serial(*inputs, rate, *out))
    parallel: Any = _parallel
    with _LOCK:
        return int(parallel(*inputs, rate, *out))


@numba.njit(inline="always")
def _at(a: FloatArray, i: int) -> float:
    return a[i] if a.shape[0] > 1 else a[0]  # type: ignore[no-any-return]


@numba.njit(inline="always")
def _option(
    i: int,
    F: FloatArray,
    K: FloatArray,
    T: FloatArray,
    S: FloatArray,
    C: BoolArray,
    rate: float,
    price: FloatArray,
    price_coin: FloatArray,
    delta: FloatArray,
    net_delta: FloatArray,
    gamma: FloatArray,
    vega: FloatArray,
    theta: FloatArray,
    theta_rate: FloatArray,
    rho: FloatArray,
) -> int:
    """Option ``i``; 1 when its inputs are bad (nothing written), else 0.

    Puts use ``w = -1`` in ``w·(F·N(w·d1) - K·N(w·d2))`` rather than put-call parity, so deep
    out-of-the-money puts keep full relative precision; N(x) = erfc(-x/√2)/2.
    """
    f = _at(F, i)
    k = _at(K, i)
    t = _at(T, i)
    s = _at(S, i)
    if not (0.0 < f < np.inf and 0.0 < k < np.inf and 0.0 < s < np.inf and abs(t) < np.inf):
        return 1
    w = 1.0 if (C[i] if C.shape[0] > 1 else C[0]) else -1.0
    if t <= 0.0:
        p = max(w * (f - k), 0.0)
        price[i] = p
        price_coin[i] = p / f
        delta[i] = 0.0
        net_delta[i] = 0.0
        gamma[i] = 0.0
        vega[i] = 0.0
        theta[i] = 0.0
        theta_rate[i] = 0.0
        rho[i] = 0.0
        return 0
    sqt = math.sqrt(t)
    sst = s * sqt
    d1 = math.log(f / k) / sst + 0.5 * sst
    n1 = 0.5 * math.erfc(-w * d1 * _INV_SQRT_2)
    n2 = 0.5 * math.erfc(-w * (d1 - sst) * _INV_SQRT_2)
    pdf = math.exp(-0.5 * d1 * d1) * _INV_SQRT_2PI
    p = max(w * (f * n1 - k * n2), 0.0)
    de = w * n1
    g = pdf / (f * sst)
    fpdf = f * pdf
    v = fpdf * sqt * 0.01
    th = fpdf * s / (-2.0 * sqt)  # analytic dV/dt per year, F held fixed
    r = w * k * t * n2 * 0.01
    if rate != 0.0:
        df = math.exp(-rate * t)
        p *= df
        de *= df
        g *= df
        v *= df
        r *= df
        th = th * df + rate * p  # discounting adds r·V
    th /= DAYS_PER_YEAR
    # Deribit's shown theta: remaining-lifetime scaling under one day, capped at the premium.
    shown = max(min(t * DAYS_PER_YEAR, 1.0) * th, -p)
    pc = p / f
    price[i] = p
    price_coin[i] = pc
    delta[i] = de
    net_delta[i] = de - pc
    gamma[i] = g
    vega[i] = v
    theta[i] = shown
    theta_rate[i] = th
    rho[i] = r
    return 0


@numba.njit(cache=True, nogil=True)
def _serial(
    F: FloatArray,
    K: FloatArray,
    T: FloatArray,
    S: FloatArray,
    C: BoolArray,
    rate: float,
    price: FloatArray,
    price_coin: FloatArray,
    delta: FloatArray,
    net_delta: FloatArray,
    gamma: FloatArray,
    vega: FloatArray,
    theta: FloatArray,
    theta_rate: FloatArray,
    rho: FloatArray,
) -> int:
    bad = 0
    for i in range(price.shape[0]):
        bad += _option(
            i,
            F,
            K,
            T,
            S,
            C,
            rate,
            price,
            price_coin,
            delta,
            net_delta,
            gamma,
            vega,
            theta,
            theta_rate,
            rho,
        )
    return bad


@numba.njit(cache=True, nogil=True, parallel=True)
def _parallel(
    F: FloatArray,
    K: FloatArray,
    T: FloatArray,
    S: FloatArray,
    C: BoolArray,
    rate: float,
    price: FloatArray,
    price_coin: FloatArray,
    delta: FloatArray,
    net_delta: FloatArray,
    gamma: FloatArray,
    vega: FloatArray,
    theta: FloatArray,
    theta_rate: FloatArray,
    rho: FloatArray,
) -> int:
    bad = 0
    for i in numba.prange(price.shape[0]):
        bad += _option(
            i,
            F,
            K,
            T,
            S,
            C,
            rate,
            price,
            price_coin,
            delta,
            net_delta,
            gamma,
            vega,
            theta,
            theta_rate,
            rho,
        )
    return bad
