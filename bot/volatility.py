"""Realised-volatility forecasts from recent index prices: EWMA and GARCH(1,1).

A gamma-scaled band wants the volatility the book will *see*, which is not always the implied
one it is priced at. Both estimators work on log returns of a price series whose timestamps may
be unevenly spaced (a missed cycle, a gap in the feed):

- :func:`ewma_vol` scales each return by ``1/sqrt(dt)`` so every squared return is an estimate
  of the annual variance, then averages them with RiskMetrics weights (``lam`` = 0.94).
- :func:`garch_vol` fits GARCH(1,1) by maximum likelihood on returns normalised to the median
  step, and forecasts the next step and the mean variance over a horizon; a failed fit falls
  back to EWMA and says so.

Times are seconds (any epoch) as floats, or ``numpy.datetime64``. Volatilities are annual
decimals (0.55 = 55 vol points), ACT/365 like the rest of hedgebot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.signal import lfilter

from bot.domain import DataError
from bot.units import SECONDS_PER_DAY, SECONDS_PER_YEAR

FloatArray = npt.NDArray[np.float64]

DEFAULT_LAMBDA = 0.94  # RiskMetrics' daily decay: an effective memory of about 17 returns
MIN_RETURNS = 2  # fewer returns than this is not a volatility estimate
GARCH_MIN_RETURNS = 50  # below this a GARCH fit is noise: fall back to EWMA
DEFAULT_HORIZON_SECONDS = SECONDS_PER_DAY
_ALPHA_BETA_MAX = 1.0 - 1e-6  # α + β < 1 keeps the process stationary with a finite long run
_SEED_RETURNS = 20  # EWMA's starting variance is the mean of this many first squared returns


def _returns(prices: npt.ArrayLike, times: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """(log returns, their spacing in years), or DataError for input no estimate can use."""
    p = np.asarray(prices, dtype=np.float64)
    t_raw = np.asarray(times)
    if np.issubdtype(t_raw.dtype, np.datetime64):
        t = t_raw.astype("datetime64[ns]").astype(np.int64).astype(np.float64) / 1e9
    else:
        t = np.asarray(t_raw, dtype=np.float64)
    if p.ndim != 1 or t.ndim != 1 or p.shape != t.shape:
        raise DataError(f"prices and times must be 1-D of one length, got {p.shape} and {t.shape}")
    if p.size < MIN_RETURNS + 1:
        raise DataError(f"need at least {MIN_RETURNS + 1} prices for a volatility, got {p.size}")
    bad = ~(np.isfinite(p) & (p > 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"prices[{i}] must be a positive finite number, got {p[i]!r}")
    if not np.isfinite(t).all():
        raise DataError("times must be finite")
    dt = np.diff(t)
    if (dt <= 0).any():
        i = int(np.argmax(dt <= 0))
        raise DataError(f"times must increase strictly: times[{i + 1}] <= times[{i}]")
    return np.diff(np.log(p)), dt / SECONDS_PER_YEAR


def ewma_vol(prices: npt.ArrayLike, times: npt.ArrayLike, lam: float = DEFAULT_LAMBDA) -> float:
    """Annualised EWMA volatility of ``prices`` observed at ``times`` (seconds or datetime64).

    Each log return ``r`` over ``dt`` years becomes ``r²/dt``, an unbiased estimate of the
    annual variance whatever the spacing; the estimate is
    ``v_t = lam·v_{t-1} + (1 − lam)·r_t²/dt_t``, started at the mean of the first returns.
    """
    if not 0.0 < lam < 1.0:
        raise ValueError(f"lam must be in (0, 1), got {lam!r}")
    r, dt = _returns(prices, times)
    return math.sqrt(_ewma_variance(r * r / dt, lam))


def _ewma_variance(z2: FloatArray, lam: float) -> float:
    seed = float(np.mean(z2[:_SEED_RETURNS]))
    # v_t = lam v_{t-1} + (1-lam) z2_t as a first-order filter seeded at v_{-1} = seed.
    v, _ = lfilter([1.0 - lam], [1.0, -lam], z2, zi=[lam * seed])
    return float(v[-1])


@dataclass(frozen=True)
class GarchFit:
    """A GARCH(1,1) fit ``h_t = omega + alpha·e²_{t-1} + beta·h_{t-1}`` on per-step returns.

    ``omega`` is in per-step variance units of a step of ``step_seconds`` (the median spacing);
    the sigmas are annualised. ``converged`` is the optimiser's verdict; when the fit could not
    be used ``fallback`` is True, ``sigma_*`` hold the EWMA estimate and ``message`` says why.
    """

    omega: float
    alpha: float
    beta: float
    sigma_one_step: float
    sigma_horizon: float
    sigma_long_run: float | None
    horizon_seconds: float
    step_seconds: float
    log_likelihood: float | None
    n_returns: int
    converged: bool
    fallback: bool
    message: str

    @property
    def persistence(self) -> float:
        return self.alpha + self.beta


def _garch_variances(e2: FloatArray, omega: float, alpha: float, beta: float) -> FloatArray:
    """Conditional variances h_0..h_n (h_n is the one-step forecast), backcast from the mean."""
    h0 = float(np.mean(e2))
    x = omega + alpha * e2
    rest, _ = lfilter([1.0], [1.0, -beta], x, zi=[beta * h0])
    return np.concatenate(([h0], rest))


def _neg_loglik(params: FloatArray, e2: FloatArray) -> float:
    omega, alpha, beta = (float(v) for v in params)
    h = _garch_variances(e2, omega, alpha, beta)[:-1]
    if not np.all(h > 0):
        return 1e300
    return float(0.5 * np.sum(np.log(h) + e2 / h))


def garch_vol(
    prices: npt.ArrayLike,
    times: npt.ArrayLike,
    horizon_seconds: float = DEFAULT_HORIZON_SECONDS,
    lam: float = DEFAULT_LAMBDA,
) -> GarchFit:
    """Fit GARCH(1,1) by maximum likelihood and forecast volatility, annualised.

    Returns are normalised to the median step (``r·sqrt(dt_med/dt)``) so uneven spacing does
    not read as volatility clustering, then standardised for the optimiser (SLSQP under
    ω > 0, α, β ≥ 0, α + β < 1). ``sigma_one_step`` is the next step's volatility;
    ``sigma_horizon`` the root of the mean forecast variance over ``horizon_seconds``.
    Too few returns or a fit that fails gives the EWMA estimate with ``fallback=True``.
    """
    if not (math.isfinite(horizon_seconds) and horizon_seconds > 0):
        raise ValueError(f"horizon_seconds must be positive, got {horizon_seconds!r}")
    r, dt = _returns(prices, times)
    step = float(np.median(dt))
    e = r * np.sqrt(step / dt)
    n = e.size
    if n < GARCH_MIN_RETURNS:
        return _fallback(
            r, dt, step, horizon_seconds, lam, f"{n} returns: GARCH needs {GARCH_MIN_RETURNS}"
        )
    scale = float(np.std(e))
    if not scale > 0:
        return _fallback(r, dt, step, horizon_seconds, lam, "returns have no variance")
    u2 = (e / scale) ** 2
    result = minimize(
        _neg_loglik,
        x0=np.array([0.1, 0.08, 0.82]),
        args=(u2,),
        method="SLSQP",
        bounds=[(1e-8, None), (0.0, 1.0), (0.0, 1.0)],
        constraints=[{"type": "ineq", "fun": lambda p: _ALPHA_BETA_MAX - p[1] - p[2]}],
        options={"maxiter": 300, "ftol": 1e-10},
    )
    omega_u, alpha, beta = (float(v) for v in result.x)
    ok = (
        bool(result.success)
        and np.isfinite(result.fun)
        and omega_u > 0
        and alpha >= 0
        and beta >= 0
        and alpha + beta < 1
    )
    if not ok:
        return _fallback(r, dt, step, horizon_seconds, lam, f"fit failed: {result.message}")
    var = scale * scale
    omega = omega_u * var
    h_next = float(_garch_variances(e * e, omega, alpha, beta)[-1])
    one_step, horizon, long_run = _garch_sigmas(h_next, step, omega, alpha, beta, horizon_seconds)
    return GarchFit(
        omega=omega,
        alpha=alpha,
        beta=beta,
        sigma_one_step=one_step,
        sigma_horizon=horizon,
        sigma_long_run=long_run,
        horizon_seconds=horizon_seconds,
        step_seconds=step * SECONDS_PER_YEAR,
        log_likelihood=-float(result.fun) - 0.5 * n * math.log(var),
        n_returns=n,
        converged=True,
        fallback=False,
        message=str(result.message),
    )


def _garch_sigmas(
    h_next: float, step: float, omega: float, alpha: float, beta: float, horizon_seconds: float
) -> tuple[float, float, float]:
    """(one-step, horizon-mean, long-run) annual sigmas of fitted GARCH(1,1) whose next
    per-step variance is ``h_next``, on steps of ``step`` years."""
    persistence = alpha + beta
    long_run = omega / (1.0 - persistence)
    steps = max(1, round(horizon_seconds / (step * SECONDS_PER_YEAR)))
    # mean of persistence**k for k < steps, in closed form
    decay = (1.0 - persistence**steps) / (steps * (1.0 - persistence))
    mean_var = long_run + (h_next - long_run) * decay
    per_year = 1.0 / step
    return (
        math.sqrt(h_next * per_year),
        math.sqrt(mean_var * per_year),
        math.sqrt(long_run * per_year),
    )


def _fallback(
    r: FloatArray, dt: FloatArray, step: float, horizon: float, lam: float, why: str
) -> GarchFit:
    sigma = math.sqrt(_ewma_variance(r * r / dt, lam))
    return GarchFit(
        omega=float("nan"),
        alpha=float("nan"),
        beta=float("nan"),
        sigma_one_step=sigma,
        sigma_horizon=sigma,
        sigma_long_run=None,
        horizon_seconds=horizon,
        step_seconds=step * SECONDS_PER_YEAR,
        log_likelihood=None,
        n_returns=r.size,
        converged=False,
        fallback=True,
        message=f"EWMA fallback: {why}",
    )


class VolForecaster(Protocol):
    """What a policy asks for its sigma: a forecast from recent prices, or the implied vol."""

    @property
    def name(self) -> str:
        """The settings value that selects this forecaster."""
        ...

    def forecast(self, prices: npt.ArrayLike, times: npt.ArrayLike, *, implied: float) -> float:
        """Annual volatility to use now; ``implied`` is the book's implied volatility."""
        ...


@dataclass(frozen=True)
class ImpliedVol:
    """Use the book's implied volatility as is (prices are not read)."""

    name: str = "implied"

    def forecast(self, prices: npt.ArrayLike, times: npt.ArrayLike, *, implied: float) -> float:
        if not (math.isfinite(implied) and implied > 0):
            raise DataError(f"implied volatility must be positive and finite, got {implied!r}")
        return float(implied)


@dataclass(frozen=True)
class EwmaVol:
    lam: float = DEFAULT_LAMBDA
    name: str = "ewma"

    def forecast(self, prices: npt.ArrayLike, times: npt.ArrayLike, *, implied: float) -> float:
        return ewma_vol(prices, times, self.lam)


@dataclass(frozen=True)
class GarchVol:
    """GARCH(1,1) mean volatility over ``horizon_seconds`` (EWMA when the fit fails)."""

    horizon_seconds: float = DEFAULT_HORIZON_SECONDS
    lam: float = DEFAULT_LAMBDA
    name: str = "garch"

    def forecast(self, prices: npt.ArrayLike, times: npt.ArrayLike, *, implied: float) -> float:
        return garch_vol(prices, times, self.horizon_seconds, self.lam).sigma_horizon


FORECASTERS = ("implied", "ewma", "garch")


def make_forecaster(
    kind: str, *, lam: float = DEFAULT_LAMBDA, horizon_seconds: float = DEFAULT_HORIZON_SECONDS
) -> VolForecaster:
    """The forecaster a settings value names: ``"implied"``, ``"ewma"`` or ``"garch"``."""
    if kind == "implied":
        return ImpliedVol()
    if kind == "ewma":
        if not 0.0 < lam < 1.0:
            raise ValueError(f"lam must be in (0, 1), got {lam!r}")
        return EwmaVol(lam)
    if kind == "garch":
        return GarchVol(horizon_seconds, lam)
    raise ValueError(f"unknown volatility forecaster {kind!r}; choose one of {FORECASTERS}")


class RollingVol:
    """A forecaster fed one observation at a time, for a daemon that asks every cycle.

    It keeps the last ``lookback_seconds`` of (time, price) in memory, so a cycle costs an
    append, not a reread of the history. EWMA is updated in O(1) per price once seeded (the
    batch estimate's seed weighs ``lam**n`` after n returns: nothing, over a real window). A
    GARCH fit (an optimisation, tens of milliseconds) is redone only every ``refit_seconds``;
    between fits the fitted parameters filter the current window.
    """

    def __init__(
        self,
        forecaster: VolForecaster,
        lookback_seconds: float,
        refit_seconds: float = 3_600.0,
    ) -> None:
        self._forecaster = forecaster
        self._lookback = lookback_seconds
        self._refit = refit_seconds
        self._times: list[float] = []
        self._prices: list[float] = []
        self._fit: GarchFit | None = None
        self._fitted_at = -math.inf
        self._ewma: float | None = None  # the running EWMA variance, once seeded
        self._h_next = math.nan  # GARCH: next step's variance under the last fit

    @property
    def last_time(self) -> float | None:
        return self._times[-1] if self._times else None

    def __len__(self) -> int:
        return len(self._times)

    def observe(self, when: float, price: float) -> None:
        """Add a price seen at ``when`` (epoch seconds); older or repeated times are ignored."""
        if self._times and when <= self._times[-1]:
            return
        if not (math.isfinite(price) and price > 0 and math.isfinite(when)):
            raise DataError(f"a price must be positive and finite, got {price!r} at {when!r}")
        if self._ewma is not None:
            dt = (when - self._times[-1]) / SECONDS_PER_YEAR
            r = math.log(price / self._prices[-1])
            lam = self._lam()
            self._ewma = lam * self._ewma + (1.0 - lam) * r * r / dt
        fit = self._fit
        if fit is not None and not fit.fallback:
            dt = (when - self._times[-1]) / SECONDS_PER_YEAR
            e2 = (
                math.log(price / self._prices[-1]) ** 2 * (fit.step_seconds / SECONDS_PER_YEAR) / dt
            )
            self._h_next = fit.omega + fit.alpha * e2 + fit.beta * self._h_next
        self._times.append(when)
        self._prices.append(price)
        horizon = when - self._lookback
        cut = 0
        while cut < len(self._times) and self._times[cut] < horizon:
            cut += 1
        if cut:
            del self._times[:cut]
            del self._prices[:cut]

    def _lam(self) -> float:
        return self._forecaster.lam if isinstance(self._forecaster, EwmaVol) else DEFAULT_LAMBDA

    def forecast(self, *, implied: float) -> float:
        """The forecaster's annual volatility on the current window."""
        if isinstance(self._forecaster, EwmaVol):
            if self._ewma is None:
                r, dt = _returns(self._prices, self._times)
                self._ewma = _ewma_variance(r * r / dt, self._forecaster.lam)
            return math.sqrt(self._ewma)
        if not isinstance(self._forecaster, GarchVol):
            return self._forecaster.forecast(self._prices, self._times, implied=implied)
        now = self._times[-1] if self._times else 0.0
        if self._fit is None or self._fit.fallback or now - self._fitted_at >= self._refit:
            self._fit = garch_vol(
                self._prices, self._times, self._forecaster.horizon_seconds, self._forecaster.lam
            )
            self._fitted_at = now
            if not self._fit.fallback:
                step = self._fit.step_seconds / SECONDS_PER_YEAR
                r, dt = _returns(self._prices, self._times)
                e2 = r * r * (step / dt)
                fit = self._fit
                self._h_next = float(_garch_variances(e2, fit.omega, fit.alpha, fit.beta)[-1])
            return self._fit.sigma_horizon
        fit = self._fit
        _, horizon, _ = _garch_sigmas(
            self._h_next,
            fit.step_seconds / SECONDS_PER_YEAR,
            fit.omega,
            fit.alpha,
            fit.beta,
            self._forecaster.horizon_seconds,
        )
        return horizon
