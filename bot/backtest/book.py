"""The option book a backtest hedges: its legs, and their value and greeks on every path.

Legs are European options on the path's price ``S``, valued by Black–Scholes with a continuously
compounded ``rate`` (Black, Scholes 1973; Hull, *Options, Futures and Other Derivatives*, ch. 15):
``d1 = (ln(S/K) + (r + σ²/2)τ) / (σ√τ)``, call ``S·N(d1) − K·e^(−rτ)·N(d2)``, delta ``N(d1)``
(put ``N(d1) − 1``), gamma ``φ(d1) / (S·σ·√τ)``. With ``rate = 0`` this is exactly Black-76 on a
forward equal to ``S``, Deribit's convention for its options (:func:`bot.greeks.black76`).

Only value, delta and gamma are computed, for a block of steps at once; delta and gamma, needed
at every step, by the compiled one-pass kernel of :mod:`bot.backtest.kernel`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from bot.backtest.kernel import add_leg
from bot.units import SECONDS_PER_DAY, SECONDS_PER_YEAR

Array = npt.NDArray[np.float64]
STEP_BLOCK = 32  # steps valued per block: big enough to amortise calls, small enough to cache
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class OptionLeg:
    """One option of the book: ``size`` in units of the underlying (negative = short), priced
    at ``sigma`` (``None``: the path model's sigma). The strike is ``strike`` (absolute, USD)
    or ``moneyness × S0``."""

    option_type: Literal["call", "put"]
    size: float
    expiry_days: float
    strike: float | None = None
    moneyness: float = 1.0
    sigma: float | None = None

    def __post_init__(self) -> None:
        if self.option_type not in ("call", "put"):
            raise ValueError(f"option_type must be 'call' or 'put', got {self.option_type!r}")
        if not (math.isfinite(self.size) and self.size != 0):
            raise ValueError(f"leg size must be finite and non-zero, got {self.size!r}")
        if not (math.isfinite(self.expiry_days) and self.expiry_days > 0):
            raise ValueError(f"leg expiry_days must be positive, got {self.expiry_days!r}")
        if not (math.isfinite(self.moneyness) and self.moneyness > 0):
            raise ValueError(f"leg moneyness must be positive, got {self.moneyness!r}")
        for name in ("strike", "sigma"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"leg {name} must be positive, got {value!r}")


@dataclass(frozen=True)
class BookMarks:
    """The option book at one step, per path: USD value, delta (dV/dS, units of the
    underlying), gamma (per USD), and the volatility and years to nearest expiry the
    gamma-scaled band reads."""

    value: Array
    delta: Array
    gamma: Array
    sigma: float
    tau: float


BookAt = Callable[[int], BookMarks]


def bs_greeks(
    spot: Array,
    strike: Array,
    tau: Array,
    sigma: float,
    is_call: bool,
    rate: float,
    *,
    with_value: bool = True,
    with_gamma: bool = True,
) -> tuple[Array | None, Array, Array | None]:
    """Black–Scholes value (``None`` unless ``with_value``), delta and gamma (``None`` unless
    ``with_gamma``) of live options
    (``tau > 0`` everywhere). The value costs a second normal CDF, the dearest operation here,
    so a loop that needs it only at the ends asks for it only there."""
    vol_t = sigma * np.sqrt(tau)
    disc_k = strike * np.exp(-rate * tau)
    d1 = np.log(spot / disc_k)
    d1 /= vol_t
    d1 += 0.5 * vol_t
    n1 = ndtr(d1)
    value = None
    if with_value:
        call = spot * n1 - disc_k * ndtr(d1 - vol_t)
        value = call if is_call else call - spot + disc_k  # put by parity
    delta = n1 if is_call else n1 - 1.0
    if not with_gamma:
        return value, delta, None
    gamma = np.square(d1, out=d1)
    gamma *= -0.5
    np.exp(gamma, out=gamma)
    gamma /= spot * vol_t
    gamma *= _INV_SQRT_2PI
    return value, delta, gamma


def option_book(
    prices: Array,
    legs: tuple[OptionLeg, ...],
    step_seconds: float,
    default_sigma: float,
    rate: float = 0.0,
    value_steps: frozenset[int] | None = None,
    with_gamma: bool = True,
) -> BookAt:
    """``legs`` priced at their fixed sigma on ``prices`` (steps ``step_seconds`` apart).

    Moneyness strikes refer to ``prices[0]`` per path; a leg that expires inside the horizon
    settles at its intrinsic value on the first step at or after its expiry, then held as cash
    earning ``rate`` to the end. Steps are valued :data:`STEP_BLOCK` at a time, in
    order, so asking for step ``k`` twice or going back is cheap only within a block.
    ``value_steps``: the only steps whose ``value`` is computed (NaN elsewhere), ``None`` all;
    without ``with_gamma`` the gamma is NaN (for policies that do not read it). A step's marks
    stay valid until the block after next is valued.
    """
    s0, n_paths = prices[0], prices.shape[1]
    strikes = [s0 * g.moneyness if g.strike is None else np.full(n_paths, g.strike) for g in legs]
    sigmas = [g.sigma or default_sigma for g in legs]
    expiry = [g.expiry_days * SECONDS_PER_DAY for g in legs]
    settled: list[Array | None] = [None] * len(legs)
    cache: dict[int, BookMarks] = {}
    # Two sets of buffers, used in turn: warm memory instead of fresh pages every block, and
    # the marks of the block before stay valid while the next one is valued.
    shape = (min(STEP_BLOCK, prices.shape[0]), n_paths)
    buffers = [(np.empty(shape), np.empty(shape)) for _ in range(2)]
    work = (np.empty(shape), np.empty(shape))  # the kernel's scratch, reused by every leg
    no_gamma = np.asarray(np.nan)  # a policy that reads it fails loudly (HedgeState checks)
    mean_sigma: dict[tuple[int, ...], float] = {}  # by the legs alive: one mean per set
    blocks = [0]

    def fill(k0: int) -> None:
        k1 = min(k0 + STEP_BLOCK, prices.shape[0])
        n = k1 - k0
        block = prices[k0:k1]
        steps = np.arange(k0, k1, dtype=np.float64)[:, None]
        delta_buf, gamma_buf = buffers[blocks[0] % 2]
        blocks[0] += 1
        delta, gamma = delta_buf[:n], gamma_buf[:n]
        zeroed = False  # the first leg live on every row writes 0 + its own, the others add

        def zero() -> None:
            delta.fill(0.0)
            if with_gamma:
                gamma.fill(0.0)

        valued = [j for j in range(n) if value_steps is None or k0 + j in value_steps]
        value = np.zeros((len(valued), n_paths))
        for i, leg in enumerate(legs):
            tau = (expiry[i] - steps * step_seconds) / SECONDS_PER_YEAR  # (rows, 1)
            live = int(np.count_nonzero(tau[:, 0] > 0))  # rows are in time order
            is_call = leg.option_type == "call"
            if live:
                fresh = not zeroed and live == n
                if not (fresh or zeroed):
                    zero()
                zeroed = True
                args = (strikes[i], tau[:live, 0], sigmas[i], is_call, rate, leg.size)
                add_leg(
                    block[:live],
                    *args,
                    delta[:live],
                    gamma[:live],
                    with_gamma=with_gamma,
                    work=(work[0][:live], work[1][:live]),
                    fresh=fresh,
                )
            rows = [j for j in valued if j < live]
            if rows:
                v, _, _ = bs_greeks(block[rows], strikes[i], tau[rows], sigmas[i], is_call, rate)
                value[: len(rows)] += leg.size * np.asarray(v)  # live rows come first
            if live < n:
                if settled[i] is None:
                    s, k = block[live], strikes[i]
                    payoff = np.maximum(s - k, 0.0) if is_call else np.maximum(k - s, 0.0)
                    settled[i] = leg.size * payoff
                for r, j in enumerate(valued):
                    if j >= live:  # the payoff in cash, earning the rate
                        grown = math.exp(
                            rate
                            * (k0 + j - expiry[i] / step_seconds)
                            * step_seconds
                            / SECONDS_PER_YEAR
                        )
                        value[r] += np.asarray(settled[i]) * grown
        if not zeroed:  # no leg is live in this block
            zero()
        cache.clear()
        nan_value = np.asarray(np.nan)
        for j in range(n):
            k = k0 + j
            alive = tuple(i for i in range(len(legs)) if expiry[i] > k * step_seconds)
            if alive and alive not in mean_sigma:
                mean_sigma[alive] = float(np.mean([sigmas[i] for i in alive]))
            cache[k] = BookMarks(
                value=value[valued.index(j)] if j in valued else nan_value,
                delta=delta[j],
                gamma=gamma[j] if with_gamma else no_gamma,
                sigma=mean_sigma[alive] if alive else default_sigma,
                tau=min(expiry[i] - k * step_seconds for i in alive) / SECONDS_PER_YEAR
                if alive
                else 0.0,
            )

    def at(k: int) -> BookMarks:
        if k not in cache:
            fill(k)
        return cache[k]

    return at
