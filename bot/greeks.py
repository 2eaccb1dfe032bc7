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
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import NoReturn

import numpy as np
import numpy.typing as npt

from bot import black76_kernel
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
from bot.units import EXPIRY_TIME_UTC, SECONDS_PER_YEAR, SETTLEMENT_WINDOW

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

SETTLEMENT_WINDOW_YEARS = SETTLEMENT_WINDOW.total_seconds() / SECONDS_PER_YEAR


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
    *,
    out: FloatArray | None = None,
) -> OptionGreeks:
    """Black-76 value and greeks of European options on a forward, broadcasting all inputs.

    ``tau`` is ACT/365 years to expiry; ``sigma`` a decimal (Deribit's ``mark_iv / 100``);
    ``rate`` discounts the payoff (Deribit uses 0). Forward, strike and sigma must be positive
    and finite, tau finite (DataError names the field and the first bad index). ``tau <= 0``
    means expired: the price is the intrinsic value and every greek is 0 (a settled option's
    coin amount is fixed), never NaN.

    ``out``: where to write the result instead of fresh memory, for callers that value the same
    number of options again and again (a fresh block of 1e6 options is 72 MB of new pages that
    the kernel must zero on every call). It is a C-contiguous, writeable float64 array of shape
    ``(9, *shape)`` (:func:`greeks_buffer` makes one), ``shape`` the broadcast shape of the
    inputs, and must not overlap them; anything else is a ValueError. The returned fields are
    views of its rows, so the next call with the same ``out`` overwrites them (and a call that
    raises DataError leaves it undefined). The numbers are the same, bit for bit, as without
    ``out``.

    A compiled check of the inputs, numpy's SIMD log and exp, then one compiled pass per option
    (numba, on its threads for large inputs) for every field; only when the check fails do the
    slower validators run, to name the first bad entry.
    """
    F = _as_float("forward", forward)
    K = _as_float("strike", strike)
    s = _as_float("sigma", sigma)
    t = _as_float("tau", tau)
    if not math.isfinite(rate):
        raise DataError(f"rate must be a finite number, got {rate!r}")
    call = _as_bool("is_call", is_call)
    if F.shape == K.shape == s.shape == t.shape == call.shape:
        shape = F.shape  # the usual case, without broadcast_shapes' cost (5 us)
    else:
        shape = np.broadcast_shapes(F.shape, K.shape, s.shape, t.shape, call.shape)
    n = math.prod(shape)
    if out is None:
        block = np.empty((black76_kernel.FIELDS, n))  # one block; each field is a row of it
    else:
        block = _checked_out(out, shape, (F, K, t, s, call)).reshape(black76_kernel.FIELDS, n)
    flat_in = tuple(_flat(a, shape, n) for a in (F, K, t, s, call))
    if black76_kernel.run(flat_in, rate, block):
        # Name the first bad entry exactly as the field validators say it.
        _positive("forward", F)
        _positive("strike", K)
        _positive("sigma", s)
        _finite("tau", t)
        raise DataError("black76: an input is not a positive finite number")
    return _option_greeks(block.reshape((black76_kernel.FIELDS, *shape)))


def greeks_buffer(shape: int | tuple[int, ...]) -> FloatArray:
    """An ``out`` for :func:`black76` on inputs of broadcast shape ``shape``: one float64 row
    per :class:`OptionGreeks` field."""
    dims = (shape,) if isinstance(shape, int) else tuple(shape)
    return np.empty((black76_kernel.FIELDS, *dims))


def _checked_out(
    out: object, shape: tuple[int, ...], inputs: tuple[npt.NDArray[np.generic], ...]
) -> FloatArray:
    """``out`` when it can hold the result for inputs of ``shape``, else a ValueError naming
    what is wrong (the kernel writes raw rows: a wrong buffer would corrupt memory or results)."""
    want = (black76_kernel.FIELDS, *shape)
    if not isinstance(out, np.ndarray):
        raise ValueError(f"out must be a numpy array of shape {want}, got {type(out).__name__}")
    if out.dtype != np.float64:
        raise ValueError(f"out must have dtype float64, got {out.dtype}")
    if out.shape != want:
        raise ValueError(f"out must have shape {want} (9 fields x the inputs), got {out.shape}")
    if not out.flags.c_contiguous:
        raise ValueError("out must be C-contiguous (greeks_buffer(shape) makes one)")
    if not out.flags.writeable:
        raise ValueError("out must be writeable")
    for a in inputs:
        if np.may_share_memory(a, out):
            raise ValueError("out must not overlap the inputs (they are read while it is written)")
    return out


def _flat(a: npt.NDArray[np.generic], shape: tuple[int, ...], n: int) -> npt.NDArray[np.generic]:
    """One-dimensional input for the kernel: the data itself when it already has ``n`` entries
    or one (the kernel reads a single entry for every option), else broadcast and copied."""
    if a.size == n:
        return np.ascontiguousarray(a) if a.ndim == 1 else np.ascontiguousarray(a).reshape(-1)
    if a.size == 1:
        return a.reshape(1)
    return np.ascontiguousarray(np.broadcast_to(a, shape)).reshape(-1)


_FIELDS = tuple(OptionGreeks.__dataclass_fields__)


def _option_greeks(rows: FloatArray) -> OptionGreeks:
    """OptionGreeks over the rows of one block, without the frozen ``__init__``'s nine
    ``object.__setattr__`` calls (2 us: 5% of a 1,000-option call)."""
    greeks = object.__new__(OptionGreeks)
    greeks.__dict__.update(zip(_FIELDS, rows, strict=True))
    return greeks


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


def _reject_option(position: Position, mark: Mark | None) -> NoReturn:
    """DataError naming what an option position lacks (expiry, mark, IV, type, strike)."""
    if position.instrument.expiry is None:
        raise DataError(f"{position.instrument.name}: option without expiry")
    _option_inputs(position, mark)
    raise DataError(f"{position.instrument.name}: option position cannot be valued")


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
    options: list[Position] = []
    # The live options' inputs, eight a row, in one flat list (a tuple per row would cost the
    # garbage collector's attention and numpy a slower conversion): forward, strike, IV, call,
    # tau, size, settlement factor, inverse.
    flat: list[float | None] = []
    add = flat.extend
    futures_delta = 0.0
    # Time to expiry and the settlement factor depend on the expiry only: once per expiry.
    per_expiry: dict[datetime, tuple[float, float]] = {}
    marks = book.marks
    call, option, currency, isfinite = (
        OptionType.CALL,
        InstrumentKind.OPTION,
        book.currency,
        math.isfinite,
    )

    for pos in book.positions:
        inst = pos.instrument
        size = pos.size
        if inst.currency != currency:
            raise DataError(f"{inst.name}: currency {inst.currency} in a {book.currency} book")
        if not isfinite(size):
            raise DataError(f"{inst.name}: position size must be finite, got {size!r}")
        if size == 0.0:
            continue
        expiry = inst.expiry
        timing: tuple[float, float] | None = None
        if expiry is not None:
            timing = per_expiry.get(expiry)
            if timing is None:
                timing = (year_fraction(now, expiry), settlement_factor(now, expiry))
                per_expiry[expiry] = timing
            if timing[0] <= 0.0:
                skipped.append(inst.name)
                continue
        if inst.kind is option:
            mark = marks.get(inst.name)
            if timing is None or mark is None or mark.mark_iv is None or inst.option_type is None:
                _reject_option(pos, mark)
            options.append(pos)
            add(
                (
                    mark.underlying_price,
                    inst.strike,
                    mark.mark_iv,
                    inst.option_type is call,
                    timing[0],
                    size,
                    timing[1],
                    inst.inverse,
                )
            )
        else:
            futures_delta += inst.coin_delta_of_amount(size, _future_mark(book, pos))

    delta_net = delta_bs = delta_gross = gamma = vega = theta = 0.0
    iv = mean_iv = nearest_tau = None
    if flat:
        cols = np.array(flat, dtype=np.float64).reshape(-1, 8).T  # None becomes NaN
        fwd, strike, sigma, is_call, tau, n, live, inverse = cols
        good = (cols[:3] > 0.0) & (cols[:3] < np.inf)
        if not good.all():
            first = int(np.argmax(~good.all(axis=0)))
            _option_inputs(options[first], marks.get(options[first].instrument.name))
        g = black76(fwd, strike, tau, sigma, is_call.astype(np.bool_))
        bs = g.delta * live
        net = np.where(inverse.astype(np.bool_), g.net_delta * live, bs)
        delta_bs = float(n @ bs)
        delta_net = float(n @ net)
        delta_gross = float(np.abs(n * net).sum())
        gamma = float(n @ (g.gamma * live))
        vega = float(n @ g.vega)
        theta = float(n @ g.theta)
        weights = np.abs(n * g.vega)
        if weights.sum() > 0:  # vega-weighted mean IV: the book's own implied vol
            iv = float(weights @ sigma / weights.sum())
        mean_iv = float(sigma.mean())
        nearest_tau = float(tau.min())

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
        mean_iv=mean_iv,
        nearest_tau=nearest_tau,
        options_delta_gross=delta_gross,
    )
