"""Vectorised Black-76 greeks with Deribit's conventions, and a book's aggregate greeks.

Deribit prices its inverse options with Black-76 on the expiry's forward (``underlying_price``),
r = 0, sigma = ``mark_iv / 100`` and ACT/365 time to 08:00 UTC of expiry; the greeks it shows are
USD per option. :func:`black76` reproduces them (checked against real chains in
``tests/test_greeks.py``) on arrays of any broadcastable shape, so the live book and 100,000
backtest paths run the same code. :func:`portfolio_greeks` turns a :class:`~bot.domain.Book` into
:class:`~bot.domain.PortfolioGreeks`: coin delta (Deribit's ``delta_total``) and the USD-flat
target ``equity + delta_total``.

Theta follows what Deribit *shows*, established on the recorded chains: the analytic calendar
rate ``dV/dt / 365`` scaled by ``min(1, days left)`` (an option that lives half a day can only
decay half a day's worth: "remaining-lifetime theta") and never more negative than the whole
premium (it cannot lose more than it is worth). ``theta_rate`` keeps the plain analytic rate for
P&L attribution.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from bot.domain import (
    Book,
    DataError,
    InstrumentKind,
    Mark,
    OptionType,
    PortfolioGreeks,
    Position,
    require_positive,
    utc,
)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

SECONDS_PER_YEAR = 365.0 * 86_400.0
DAYS_PER_YEAR = 365.0
EXPIRY_TIME_UTC = time(8, 0)
SETTLEMENT_WINDOW = timedelta(minutes=30)
SETTLEMENT_WINDOW_YEARS = SETTLEMENT_WINDOW.total_seconds() / SECONDS_PER_YEAR

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class OptionGreeks:
    """Black-76 value and greeks per option (one coin of underlying), float64 arrays of one shape.

    ``price_usd`` USD; ``price_coin`` = price_usd / forward (Deribit's mark in coin);
    ``delta`` = dC_usd/dF (Deribit's ``greeks.delta``, not premium adjusted); ``net_delta`` =
    delta - price_coin (premium adjusted: what an inverse option adds to ``delta_total``);
    ``gamma`` per $1 of forward; ``vega`` USD per vol point; ``theta`` USD per calendar day as
    Deribit shows it (see the module docstring); ``theta_rate`` the analytic dV/dt per day;
    ``rho`` USD per 1% of rate, Deribit's K·tau·N(d2)/100.
    """

    price_usd: FloatArray
    price_coin: FloatArray
    delta: FloatArray
    net_delta: FloatArray
    gamma: FloatArray
    vega: FloatArray
    theta: FloatArray
    theta_rate: FloatArray
    rho: FloatArray


def _bad_index(bad: BoolArray) -> int | tuple[int, ...]:
    flat = int(np.argmax(bad))
    if bad.ndim <= 1:
        return flat
    return tuple(int(i) for i in np.unravel_index(flat, bad.shape))


def _as_float(name: str, value: npt.ArrayLike) -> FloatArray:
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} must be numeric: {exc}") from exc


def _positive(name: str, value: npt.ArrayLike) -> FloatArray:
    """``value`` as float64, or DataError naming the field and the first NaN/inf/<=0 entry.

    Two reductions and no temporaries on the good path: NaN propagates through ``min``.
    """
    x = _as_float(name, value)
    if x.size and (x.min() > 0.0) and (x.max() < np.inf):
        return x
    if x.size == 0:
        return x
    bad = ~((x > 0.0) & (x < np.inf))
    if x.ndim == 0:
        raise DataError(f"{name} must be a positive finite number, got {float(x)!r}")
    i = _bad_index(bad)
    raise DataError(f"{name}[{i}] must be a positive finite number, got {float(x[i])!r}")


def _finite(name: str, value: npt.ArrayLike) -> FloatArray:
    x = _as_float(name, value)
    if x.size == 0 or (np.isfinite(x.min()) and np.isfinite(x.max())):
        return x
    if x.ndim == 0:
        raise DataError(f"{name} must be a finite number, got {float(x)!r}")
    i = _bad_index(~np.isfinite(x))
    raise DataError(f"{name}[{i}] must be a finite number, got {float(x[i])!r}")


def _as_bool(name: str, value: npt.ArrayLike) -> BoolArray:
    """Booleans, or 0/1 integers; anything else (``"put"`` would be truthy) is a DataError."""
    a = np.asarray(value)
    if a.dtype == np.bool_:
        return a
    if np.issubdtype(a.dtype, np.integer) and np.all((a == 0) | (a == 1)):
        return a.astype(np.bool_)
    raise DataError(f"{name} must be boolean, got dtype {a.dtype}")


def black76(
    forward: npt.ArrayLike,
    strike: npt.ArrayLike,
    tau: npt.ArrayLike,
    sigma: npt.ArrayLike,
    is_call: npt.ArrayLike,
    rate: float = 0.0,
) -> OptionGreeks:
    """Black-76 value and greeks of European options on a forward, broadcasting all inputs.

    ``tau`` is ACT/365 years to expiry; ``sigma`` a decimal (Deribit's ``mark_iv / 100``);
    ``rate`` discounts the payoff (Deribit uses 0). Forward, strike and sigma must be positive
    and finite, tau finite (DataError names the field and the first bad index). ``tau <= 0``
    means expired: the price is the intrinsic value and every greek is 0 (a settled option's
    coin amount is fixed), never NaN.

    Large inputs are cut into cache-sized chunks run on a small thread pool: numpy and scipy
    ufuncs release the GIL, and the normal CDF dominates the cost.
    """
    F = _positive("forward", forward)
    K = _positive("strike", strike)
    s = _positive("sigma", sigma)
    t = _finite("tau", tau)
    if not math.isfinite(rate):
        raise DataError(f"rate must be a finite number, got {rate!r}")
    call = _as_bool("is_call", is_call)
    shape = np.broadcast_shapes(F.shape, K.shape, s.shape, t.shape, call.shape)
    n = math.prod(shape)
    out = tuple(np.empty(shape) for _ in _FIELDS)
    if n < _PARALLEL_MIN:
        _kernel(F, K, t, s, call, rate, out, tuple(np.empty(shape) for _ in range(_SCRATCH)))
        return OptionGreeks(*out)

    flat_in = [np.broadcast_to(a, shape).reshape(-1) for a in (F, K, t, s)]
    flat_call = np.broadcast_to(call, shape).reshape(-1)
    flat_out = [a.reshape(-1) for a in out]

    def work(lo: int) -> None:
        hi = min(lo + _CHUNK, n)
        f, k, t_, s_ = (a[lo:hi] for a in flat_in)
        scratch = _thread_scratch()
        _kernel(
            f,
            k,
            t_,
            s_,
            flat_call[lo:hi],
            rate,
            tuple(a[lo:hi] for a in flat_out),
            tuple(a[: hi - lo] for a in scratch),
        )

    if _WORKERS < 2:
        for lo in range(0, n, _CHUNK):
            work(lo)
    else:
        for _ in _pool().map(work, range(0, n, _CHUNK)):
            pass
    return OptionGreeks(*out)


_FIELDS = tuple(OptionGreeks.__dataclass_fields__)
_SCRATCH = 5
# Chunks keep the working set (inputs, 9 outputs, 5 scratch arrays) cache-sized, and a thread's
# scratch is reused, so large inputs cost no allocator page faults.
_CHUNK = 32_768
_PARALLEL_MIN = 2 * _CHUNK
_WORKERS = min(4, os.cpu_count() or 1)
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()
_LOCAL = threading.local()


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="black76")
        return _POOL


def _forget_pool_after_fork() -> None:
    """A forked child (multiprocessing backtests) inherits the pool but not its threads."""
    global _POOL, _POOL_LOCK
    _POOL = None
    _POOL_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _thread_scratch() -> tuple[FloatArray, ...]:
    scratch: tuple[FloatArray, ...] | None = getattr(_LOCAL, "scratch", None)
    if scratch is None:
        scratch = tuple(np.empty(_CHUNK) for _ in range(_SCRATCH))
        _LOCAL.scratch = scratch
    return scratch


def _kernel(
    F: FloatArray,
    K: FloatArray,
    t: FloatArray,
    sigma: FloatArray,
    call: BoolArray,
    rate: float,
    out: tuple[FloatArray, ...],
    scratch: tuple[FloatArray, ...],
) -> None:
    """Black-76 on validated inputs, written into ``out`` (fields in :class:`OptionGreeks`
    order, full shape) using ``scratch``; inputs broadcast to that shape.

    Every step writes into a preallocated array (no temporaries). Puts use ``w = -1`` in
    ``w·(F·N(w·d1) - K·N(w·d2))`` rather than put-call parity, so deep out-of-the-money puts
    keep full relative precision.
    """
    price, price_coin, delta, net_delta, gamma, vega, theta, theta_rate, rho = out
    w, t_live, sqt, sst, d1 = scratch
    live = t > 0.0
    all_live = bool(np.all(live))
    if all_live:
        t_live = t
    else:
        np.copyto(t_live, np.where(live, t, 1.0))

    np.multiply(call, 2.0, out=w)
    w -= 1.0
    np.sqrt(t_live, out=sqt)
    np.multiply(sigma, sqt, out=sst)
    np.divide(F, K, out=d1)
    np.log(d1, out=d1)
    np.divide(d1, sst, out=d1)
    np.multiply(sst, 0.5, out=gamma)
    d1 += gamma  # d1 = (ln F/K + sigma^2 tau / 2) / (sigma sqrt tau)
    n1, n2, pdf = price_coin, rho, net_delta
    np.multiply(w, d1, out=net_delta)  # w d1
    np.multiply(w, sst, out=rho)
    np.subtract(net_delta, rho, out=rho)  # w d2
    ndtr(net_delta, out=n1)
    ndtr(rho, out=n2)
    np.multiply(d1, d1, out=pdf)
    pdf *= -0.5
    np.exp(pdf, out=pdf)
    pdf *= _INV_SQRT_2PI

    np.multiply(F, n1, out=price)
    np.multiply(K, n2, out=d1)
    price -= d1
    price *= w
    np.maximum(price, 0.0, out=price)
    np.multiply(w, n1, out=delta)
    np.multiply(F, sst, out=gamma)
    np.divide(pdf, gamma, out=gamma)
    fpdf = d1
    np.multiply(F, pdf, out=fpdf)
    np.multiply(fpdf, sqt, out=vega)
    vega *= 0.01
    np.multiply(fpdf, sigma, out=theta_rate)
    np.multiply(sqt, -2.0, out=sst)
    theta_rate /= sst  # analytic dV/dt per year, F held fixed
    rho *= K  # rho held N(w d2)
    rho *= t_live
    rho *= w
    rho *= 0.01
    if rate != 0.0:
        df = sst
        np.multiply(t_live, -rate, out=df)
        np.exp(df, out=df)
        for x in (price, delta, gamma, vega, rho, theta_rate):
            x *= df
        np.multiply(price, rate, out=d1)
        theta_rate += d1  # discounting adds r·V
    theta_rate /= DAYS_PER_YEAR
    # Deribit's shown theta: remaining-lifetime scaling under one day, capped at the premium.
    np.multiply(t_live, DAYS_PER_YEAR, out=theta)
    np.minimum(theta, 1.0, out=theta)
    theta *= theta_rate
    np.negative(price, out=d1)
    np.maximum(theta, d1, out=theta)

    if not all_live:
        dead = np.broadcast_to(~live, price.shape)
        np.subtract(F, K, out=d1)
        d1 *= w
        np.maximum(d1, 0.0, out=d1)
        np.copyto(price, d1, where=dead)
        for x in (delta, gamma, vega, theta, theta_rate, rho):
            np.copyto(x, 0.0, where=dead)
    np.divide(price, F, out=price_coin)
    np.subtract(delta, price_coin, out=net_delta)
    if not all_live:
        np.copyto(net_delta, 0.0, where=dead)


def year_fraction(now: datetime, expiry: datetime) -> float:
    """ACT/365 years from ``now`` to ``expiry`` (negative once expired).

    Naive datetimes are taken to be UTC, as everywhere in hedgebot (:func:`bot.domain.utc`).
    """
    return (utc(expiry) - utc(now)).total_seconds() / SECONDS_PER_YEAR


def deribit_expiry(day: date) -> datetime:
    """Deribit's expiry instant for an expiry date: 08:00 UTC."""
    return utc(datetime.combine(day, EXPIRY_TIME_UTC))


def settlement_factor_tau(
    tau: npt.ArrayLike, window_years: float = SETTLEMENT_WINDOW_YEARS
) -> FloatArray:
    """Array form of :func:`settlement_factor` on years to expiry (for backtests)."""
    t = _finite("tau", tau)
    return np.clip(t / window_years, 0.0, 1.0)


def settlement_factor(
    now: datetime, expiry: datetime, window: timedelta = SETTLEMENT_WINDOW
) -> float:
    """Share of an option's delta still live: 1 before the settlement window, 0 at expiry.

    Deribit settles on the TWAP of the index over the last ``window`` (30 minutes) and decays
    an option's delta linearly to zero over it, because every minute fixes another slice of the
    settlement price: only the unfixed share still moves with the market.
    """
    if window <= timedelta(0):
        raise ValueError("settlement window must be positive")
    left = (utc(expiry) - utc(now)).total_seconds()
    return min(1.0, max(0.0, left / window.total_seconds()))


def _option_inputs(position: Position, mark: Mark | None) -> tuple[float, float, float, bool]:
    """(forward, strike, sigma, is_call) of one option position, or DataError naming it."""
    inst = position.instrument
    name = inst.name
    if inst.strike is None or inst.option_type is None:
        raise DataError(f"{name}: option without strike or option type")
    if mark is None:
        raise DataError(f"{name}: no mark for option position")
    forward = require_positive(f"{name} underlying_price", mark.underlying_price)
    if mark.mark_iv is None:
        raise DataError(f"{name}: mark has no mark_iv")
    sigma = require_positive(f"{name} mark_iv", mark.mark_iv)
    strike = require_positive(f"{name} strike", inst.strike)
    return forward, strike, sigma, inst.option_type is OptionType.CALL


def _future_mark(book: Book, position: Position) -> float:
    name = position.instrument.name
    mark = book.marks.get(name)
    if mark is not None:
        return require_positive(f"{name} mark_price", mark.mark_price)
    if name == book.hedge_instrument.name:
        return require_positive(f"{name} hedge quote mark", book.hedge_quote.mark)
    raise DataError(f"{name}: no mark for futures position")


def portfolio_greeks(book: Book, now: datetime) -> PortfolioGreeks:
    """Aggregate greeks of ``book`` at ``now``, in Deribit's units and conventions.

    Options: size (coin) × Black-76 greeks at the mark's forward and IV, delta and gamma scaled
    by :func:`settlement_factor`; inverse options add their net (premium-adjusted) delta to
    ``delta_coin``, linear ones their BS delta. Futures and perpetuals add
    ``size_usd / mark_price`` coin (inverse) or ``size`` (linear). Options and futures at or
    after expiry are skipped and listed in ``expired_skipped``; zero-size positions are ignored.
    A missing or bad mark raises DataError naming the instrument.
    """
    index = require_positive("index_price", book.index_price)
    equity = book.account.equity
    if equity is None or not math.isfinite(equity):
        raise DataError(f"account equity must be a finite number, got {equity!r}")
    now = utc(now)

    skipped: list[str] = []
    fwd: list[float] = []
    strike: list[float] = []
    sigma: list[float] = []
    is_call: list[bool] = []
    tau: list[float] = []
    size: list[float] = []
    factor: list[float] = []
    inverse: list[bool] = []
    futures_delta = 0.0

    for pos in book.positions:
        inst = pos.instrument
        if inst.currency != book.currency:
            raise DataError(f"{inst.name}: currency {inst.currency} in a {book.currency} book")
        if not math.isfinite(pos.size):
            raise DataError(f"{inst.name}: position size must be finite, got {pos.size!r}")
        if pos.size == 0.0:
            continue
        if inst.expiry is not None and now >= utc(inst.expiry):
            skipped.append(inst.name)
            continue
        if inst.kind is InstrumentKind.OPTION:
            if inst.expiry is None:
                raise DataError(f"{inst.name}: option without expiry")
            f, k, s, c = _option_inputs(pos, book.marks.get(inst.name))
            fwd.append(f)
            strike.append(k)
            sigma.append(s)
            is_call.append(c)
            tau.append(year_fraction(now, inst.expiry))
            size.append(pos.size)
            factor.append(settlement_factor(now, inst.expiry))
            inverse.append(inst.inverse)
        else:
            futures_delta += inst.coin_delta_of_amount(pos.size, _future_mark(book, pos))

    delta_net = delta_bs = delta_gross = gamma = vega = theta = 0.0
    iv: float | None = None
    if size:
        g = black76(fwd, strike, tau, sigma, is_call)
        n = np.asarray(size)
        live = np.asarray(factor)
        bs = g.delta * live
        net = np.where(np.asarray(inverse), g.net_delta * live, bs)
        delta_bs = float(n @ bs)
        delta_net = float(n @ net)
        delta_gross = float(np.abs(n * net).sum())
        gamma = float(n @ (g.gamma * live))
        vega = float(n @ g.vega)
        theta = float(n @ g.theta)
        weights = np.abs(n * g.vega)
        if weights.sum() > 0:  # vega-weighted mean IV: the book's own implied vol
            iv = float(weights @ np.asarray(sigma) / weights.sum())

    delta_coin = delta_net + futures_delta
    return PortfolioGreeks(
        currency=book.currency,
        index_price=index,
        delta_coin=delta_coin,
        delta_usd_target=equity + delta_coin,
        options_delta_net=delta_net,
        options_delta_bs=delta_bs,
        futures_delta=futures_delta,
        gamma=gamma,
        dollar_gamma=gamma * index * index / 100.0,
        vega=vega,
        theta=theta,
        equity=equity,
        expired_skipped=tuple(skipped),
        iv=iv,
        options_delta_gross=delta_gross,
    )
