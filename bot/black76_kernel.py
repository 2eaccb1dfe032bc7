"""The compiled Black-76 kernel behind :func:`bot.greeks.black76`.

A check of the inputs, numpy's SIMD log of F/K and exp of -d1²/2 (a few options per
instruction, where numba would call libm once per option), then one compiled pass per option
for every field. N(d1), N(d2) and the pdf share that one exp (rational approximations do the
rest), where ``math.erfc`` would cost two more exps and a series each. The per-option
arithmetic works on scalars only: numba would count references to every array handed to an
inlined helper, on every option (that alone tripled the cost).

Inputs up to PARALLEL_MIN run on the calling thread: on a busy two-core machine waking a
thread pool costs more than the work. Larger inputs run in chunks on numba's threads; its
default ("workqueue") pool is neither thread- nor fork-safe, so callers of this process take
turns through a lock, and a forked child runs the serial build.
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

FIELDS = 9  # rows of ``out``: the fields of bot.greeks.OptionGreeks, in their order
# Options; below this one thread is faster. On a loaded two-core machine, waiting for a second
# thread that another process holds cost 2.4x at 1e5 options and gained nothing at 1e6.
PARALLEL_MIN = 500_000
CHUNK = 8_192  # options per parallel task: a few per thread, each fits in the L2 cache
BLOCK = 4_096  # options per pass of the serial path: inputs and outputs stay in the L2 cache
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)
_INV_DAYS = 1.0 / DAYS_PER_YEAR
_SHARED_EXP_MAX = 1_400.0  # d1² below which exp(-d1²/2) is a normal float (> 1e-304)
_INF = math.inf
_LOCK = threading.Lock()
_PARENT_PID = os.getpid()
# Contraction into fused multiply-adds only: the NaN/inf checks below must keep IEEE semantics.
_FAST: Any = {"contract"}


def run(inputs: Sequence[npt.NDArray[Any]], rate: float, out: FloatArray) -> int:
    """Fill ``out`` (shape (FIELDS, n): the :class:`~bot.greeks.OptionGreeks` fields) from the
    flat ``inputs`` forward, strike, tau, sigma, is_call (each of length n or of length one);
    returns how many options had a bad input (0 when all are valid; else ``out`` is unset).

    The logs and exps run as numpy's SIMD loops (several options per instruction; numba calls
    libm once per option), staged in the last two rows of ``out``, which the per-option pass
    reads before it writes them. Blocks of BLOCK options go through every pass while they are
    in the cache.
    """
    F, K, T, S, C = inputs
    n = out.shape[1]
    stage: Any = _stage
    exponent: Any = _exponent
    fill: Any = _fill
    x, q = out[FIELDS - 2], out[FIELDS - 1]
    parallel = n >= PARALLEL_MIN and os.getpid() == _PARENT_PID
    for start in range(0, n, BLOCK):
        stop = min(n, start + BLOCK)
        bad = int(stage(F, K, T, S, x, start, stop))  # x = F/K
        if bad:
            return bad
        xs, qs = x[start:stop], q[start:stop]
        np.log(xs, out=xs)
        exponent(T, S, x, q, start, stop)  # x = d1, q = -d1²/2
        np.exp(qs, out=qs)
        if not parallel:
            fill(F, K, T, S, C, rate, out, start, stop)
    if parallel:
        threads: Any = _parallel
        with _LOCK:
            threads(F, K, T, S, C, rate, out)
    return 0


@numba.njit(cache=True, nogil=True)
def _stage(
    F: FloatArray, K: FloatArray, T: FloatArray, S: FloatArray, x: FloatArray, start: int, stop: int
) -> int:
    """``x = F/K`` for options ``start`` to ``stop``; returns how many have a forward, strike
    or sigma that is not a positive finite number, or a tau that is not finite."""
    bad = 0
    nf, nk, nt, ns = F.shape[0], K.shape[0], T.shape[0], S.shape[0]
    if nf > 1 and nk > 1 and nt > 1 and ns > 1:  # no broadcasting: a loop without branches
        for i in range(start, stop):
            f, k, t, s = F[i], K[i], T[i], S[i]
            ok = (f > 0.0) & (f < _INF) & (k > 0.0) & (k < _INF) & (s > 0.0) & (s < _INF)
            ok &= (t > -_INF) & (t < _INF)
            x[i] = f / k if ok else 1.0
            bad += 0 if ok else 1
        return bad
    for i in range(start, stop):
        f = F[i] if nf > 1 else F[0]
        k = K[i] if nk > 1 else K[0]
        t = T[i] if nt > 1 else T[0]
        s = S[i] if ns > 1 else S[0]
        if 0.0 < f < _INF and 0.0 < k < _INF and 0.0 < s < _INF and -_INF < t < _INF:
            x[i] = f / k
        else:
            x[i] = 1.0
            bad += 1
    return bad


@numba.njit(inline="always")
def _erfc_scaled(y: float) -> float:
    """erfc(y)·exp(y²) for y > 0.46875: W. J. Cody's rational Chebyshev approximations
    ("Rational Chebyshev approximations for the error function", Math. Comp. 23, 1969; the
    CALERF routine of SPECFUN), in y up to 4 and in 1/y² beyond."""
    if y <= 4.0:
        num = 2.15311535474403846e-8 * y + 5.64188496988670089e-1
        num = num * y + 8.88314979438837594
        num = num * y + 6.61191906371416295e1
        num = num * y + 2.98635138197400131e2
        num = num * y + 8.81952221241769090e2
        num = num * y + 1.71204761263407058e3
        num = num * y + 2.05107837782607147e3
        num = num * y + 1.23033935479799725e3
        den = y + 1.57449261107098347e1
        den = den * y + 1.17693950891312499e2
        den = den * y + 5.37181101862009858e2
        den = den * y + 1.62138957456669019e3
        den = den * y + 3.29079923573345963e3
        den = den * y + 4.36261909014324716e3
        den = den * y + 3.43936767414372164e3
        den = den * y + 1.23033935480374942e3
        return num / den
    z = 1.0 / (y * y)
    num = 1.63153871373020978e-2 * z + 3.05326634961232344e-1
    num = num * z + 3.60344899949804439e-1
    num = num * z + 1.25781726111229246e-1
    num = num * z + 1.60837851487422766e-2
    num = num * z + 6.58749161529837803e-4
    den = z + 2.56852019228982242
    den = den * z + 1.87295284992346047
    den = den * z + 5.27905102951428412e-1
    den = den * z + 6.05183413124413191e-2
    den = den * z + 2.33520497626869185e-3
    return (_INV_SQRT_PI - z * num / den) / y


HART_MAX = 3.0  # |d| below which :func:`ncdf` takes Hart's tail, beyond it Cody's erfc


@numba.njit(inline="always")
def hart_tail(y: float, e: float) -> float:
    """N(−y) for ``0 ≤ y <`` :data:`HART_MAX`, given ``e = exp(−y²/2)``: Hart's rational
    approximation (see :func:`ncdf`). Branch-free, so a loop of it vectorises."""
    a = 3.52624965998911e-02 * y + 0.700383064443688
    a = a * y + 6.37396220353165
    a = a * y + 33.912866078383
    a = a * y + 112.079291497871
    a = a * y + 221.213596169931
    a = a * y + 220.206867912376
    b = 8.83883476483184e-02 * y + 1.75566716318264
    b = b * y + 16.064177579207
    b = b * y + 86.7807322029461
    b = b * y + 296.564248779674
    b = b * y + 637.333633378831
    b = b * y + 793.826512519948
    b = b * y + 440.413735824752
    return e * a / b


@numba.njit(inline="always")
def ncdf(d: float, e: float) -> float:
    """The standard normal CDF N(d), given ``e = exp(-d²/2)``.

    Taking the exponential from the caller lets one exp serve N(d1), N(d2) and the pdf. The
    lower tail N(-|d|) = e·P(|d|)/Q(|d|) is Hart's rational approximation 5666 (J. F. Hart,
    "Computer Approximations", 1968, as given by G. West, "Better approximations to cumulative
    normal functions", Wilmott, 2005) for |d| < 3, where its relative error stays below 2e-14;
    beyond, Cody's erfc keeps 1e-14 into the far tail. N(d) for d > 0 is 1 minus the tail.
    """
    y = abs(d)
    tail = hart_tail(y, e) if y < HART_MAX else 0.5 * e * _erfc_scaled(y * _INV_SQRT_2)
    return 1.0 - tail if d > 0.0 else tail


@numba.njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _exponent(
    T: FloatArray, S: FloatArray, x: FloatArray, q: FloatArray, start: int, stop: int
) -> None:
    """``x``: ln(F/K) in, d1 out; ``q = -d1²/2`` (0 for an expired option, which has no d1)."""
    nt, ns = T.shape[0], S.shape[0]
    if nt > 1 and ns > 1:  # no broadcasting: a loop without branches (selects, not jumps)
        for i in range(start, stop):
            t, s = T[i], S[i]
            sst = s * math.sqrt(max(t, 0.0))
            d1 = x[i] / sst + 0.5 * sst  # inf or NaN when expired: not selected
            d1 = d1 if t > 0.0 else 0.0
            x[i] = d1
            q[i] = -0.5 * d1 * d1
        return
    for i in range(start, stop):
        t = T[i] if nt > 1 else T[0]
        s = S[i] if ns > 1 else S[0]
        sst = s * math.sqrt(max(t, 0.0))
        d1 = x[i] / sst + 0.5 * sst if t > 0.0 else 0.0
        x[i] = d1
        q[i] = -0.5 * d1 * d1


@numba.njit(inline="always")
def _option(
    f: float, k: float, t: float, s: float, w: float, rate: float, d1: float, e1: float
) -> tuple[float, ...]:
    """The nine fields of one option with valid inputs; ``w`` is 1 for a call, -1 for a put;
    ``d1`` and ``e1 = exp(-d1²/2)`` come from the staged rows.

    Puts use ``w = -1`` in ``w·(F·N(w·d1) - K·N(w·d2))`` rather than put-call parity, so deep
    out-of-the-money puts keep full relative precision.
    """
    if t <= 0.0:  # expired: intrinsic value, every greek 0 (the coin amount is fixed)
        p = max(w * (f - k), 0.0)
        return p, p / f, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    sqt = math.sqrt(t)
    sst = s * sqt
    inv_sst = 1.0 / sst  # two reciprocals serve every division
    inv_f = 1.0 / f
    moneyness = f / k
    d2 = d1 - sst
    # One exp serves both normals and the pdf: exp(-d2²/2) = exp(-d1²/2)·F/K, since
    # d1² - d2² = 2·ln(F/K). Far in the tail (exp(-d1²/2) below the normal range) d2 gets its own.
    e2 = e1 * moneyness if d1 * d1 < _SHARED_EXP_MAX else math.exp(-0.5 * d2 * d2)
    n1 = ncdf(w * d1, e1)
    n2 = ncdf(w * d2, e2)
    pdf = e1 * _INV_SQRT_2PI
    fpdf = f * pdf
    p = max(w * (f * n1 - k * n2), 0.0)
    de = w * n1
    g = pdf * inv_sst * inv_f
    v = fpdf * sqt * 0.01
    th = -0.5 * fpdf * s * s * inv_sst  # analytic dV/dt per year (F·pdf·s/(2√t)), F held fixed
    r = w * k * t * n2 * 0.01
    if rate != 0.0:
        df = math.exp(-rate * t)
        p *= df
        de *= df
        g *= df
        v *= df
        r *= df
        th = th * df + rate * p  # discounting adds r·V
    th *= _INV_DAYS
    # Deribit's shown theta: remaining-lifetime scaling under one day, capped at the premium.
    shown = max(min(t * DAYS_PER_YEAR, 1.0) * th, -p)
    pc = p * inv_f
    return p, pc, de, de - pc, g, v, shown, th, r


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def _fill(
    F: FloatArray,
    K: FloatArray,
    T: FloatArray,
    S: FloatArray,
    C: BoolArray,
    rate: float,
    out: FloatArray,
    start: int,
    stop: int,
) -> None:
    """Options ``start`` to ``stop``, their inputs checked and staged by :func:`run`."""
    nf, nk, nt, ns, nc = F.shape[0], K.shape[0], T.shape[0], S.shape[0], C.shape[0]
    for i in range(start, stop):
        f = F[i] if nf > 1 else F[0]
        k = K[i] if nk > 1 else K[0]
        t = T[i] if nt > 1 else T[0]
        s = S[i] if ns > 1 else S[0]
        call = C[i] if nc > 1 else C[0]
        x = _option(f, k, t, s, 1.0 if call else -1.0, rate, out[FIELDS - 2, i], out[FIELDS - 1, i])
        out[0, i] = x[0]
        out[1, i] = x[1]
        out[2, i] = x[2]
        out[3, i] = x[3]
        out[4, i] = x[4]
        out[5, i] = x[5]
        out[6, i] = x[6]
        out[7, i] = x[7]
        out[8, i] = x[8]


@numba.njit(cache=True, nogil=True, parallel=True)
def _parallel(
    F: FloatArray,
    K: FloatArray,
    T: FloatArray,
    S: FloatArray,
    C: BoolArray,
    rate: float,
    out: FloatArray,
) -> None:
    """All options in chunks of CHUNK on numba's threads."""
    n = out.shape[1]
    for c in numba.prange((n + CHUNK - 1) // CHUNK):
        _fill(F, K, T, S, C, rate, out, c * CHUNK, min(n, (c + 1) * CHUNK))
