"""Realised-volatility forecasts: EWMA and GARCH(1,1) recover known volatilities."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bot.domain import DataError
from bot.units import SECONDS_PER_YEAR
from bot.volatility import (
    EwmaVol,
    GarchVol,
    ImpliedVol,
    RollingVol,
    ewma_vol,
    garch_vol,
    make_forecaster,
)

HOUR = 3600.0


def gbm_path(
    rng: np.random.Generator, sigma: float, n: int, steps: tuple[float, ...] = (HOUR,)
) -> tuple[np.ndarray, np.ndarray]:
    """Prices and times (seconds) of a driftless GBM sampled at randomly chosen spacings."""
    dt_s = rng.choice(np.asarray(steps), size=n)
    dt = dt_s / SECONDS_PER_YEAR
    r = sigma * np.sqrt(dt) * rng.standard_normal(n) - 0.5 * sigma**2 * dt
    prices = 90_000.0 * np.exp(np.concatenate(([0.0], np.cumsum(r))))
    times = np.concatenate(([0.0], np.cumsum(dt_s)))
    return prices, times


def garch_path(
    rng: np.random.Generator, omega: float, alpha: float, beta: float, n: int
) -> tuple[np.ndarray, np.ndarray]:
    h = omega / (1.0 - alpha - beta)
    e = np.empty(n)
    for i in range(n):
        e[i] = math.sqrt(h) * rng.standard_normal()
        h = omega + alpha * e[i] ** 2 + beta * h
    prices = 90_000.0 * np.exp(np.concatenate(([0.0], np.cumsum(e))))
    return prices, np.arange(n + 1) * HOUR


def test_ewma_with_long_memory_recovers_gbm_vol_on_uneven_spacing() -> None:
    rng = np.random.default_rng(11)
    prices, times = gbm_path(rng, 0.6, 6000, steps=(HOUR / 2, HOUR, 2 * HOUR))
    assert ewma_vol(prices, times, lam=0.998) == pytest.approx(0.6, rel=0.08)


def test_ewma_at_default_lambda_is_unbiased_in_variance_across_paths() -> None:
    rng = np.random.default_rng(12)
    variances = [
        ewma_vol(*gbm_path(rng, 0.5, 200, steps=(HOUR / 4, HOUR, 4 * HOUR))) ** 2
        for _ in range(300)
    ]
    assert math.sqrt(float(np.mean(variances))) == pytest.approx(0.5, rel=0.05)


def test_ewma_accepts_datetime64_times_like_seconds() -> None:
    rng = np.random.default_rng(13)
    prices, times = gbm_path(rng, 0.4, 100)
    stamps = np.datetime64("2026-01-05T12:00:00") + times.astype("timedelta64[s]")
    assert ewma_vol(prices, stamps) == pytest.approx(ewma_vol(prices, times), rel=1e-12)


def test_ewma_weights_recent_returns_more_than_old_ones() -> None:
    rng = np.random.default_rng(14)
    calm, t1 = gbm_path(rng, 0.2, 500)
    wild, t2 = gbm_path(rng, 1.0, 100)
    prices = np.concatenate((calm, calm[-1] * wild[1:] / wild[0]))
    times = np.concatenate((t1, t1[-1] + t2[1:]))
    assert ewma_vol(prices, times) > 0.7


def test_garch_on_gbm_forecasts_the_true_vol() -> None:
    rng = np.random.default_rng(21)
    prices, times = gbm_path(rng, 0.6, 4000, steps=(HOUR / 2, HOUR, 2 * HOUR))
    fit = garch_vol(prices, times)
    assert fit.converged
    assert not fit.fallback
    assert fit.sigma_horizon == pytest.approx(0.6, rel=0.08)
    assert fit.step_seconds == HOUR


def test_garch_recovers_known_parameters_from_a_simulated_garch_path() -> None:
    omega, alpha, beta = 2e-6, 0.10, 0.85
    fit = garch_vol(*garch_path(np.random.default_rng(3), omega, alpha, beta, 6000))
    assert fit.converged
    assert fit.alpha == pytest.approx(alpha, abs=0.04)
    assert fit.beta == pytest.approx(beta, abs=0.06)
    long_run = math.sqrt(omega / (1 - alpha - beta) * SECONDS_PER_YEAR / HOUR)
    assert fit.sigma_long_run == pytest.approx(long_run, rel=0.1)
    assert fit.alpha + fit.beta < 1


def test_garch_horizon_forecast_lies_between_next_step_and_long_run() -> None:
    fit = garch_vol(
        *garch_path(np.random.default_rng(4), 2e-6, 0.10, 0.85, 3000), horizon_seconds=7 * 86400
    )
    assert fit.sigma_long_run is not None
    low, high = sorted((fit.sigma_one_step, fit.sigma_long_run))
    assert low <= fit.sigma_horizon <= high


def test_garch_with_too_few_returns_falls_back_to_ewma_and_says_so() -> None:
    prices, times = gbm_path(np.random.default_rng(5), 0.5, 20)
    fit = garch_vol(prices, times)
    assert fit.fallback
    assert not fit.converged
    assert fit.sigma_horizon == pytest.approx(ewma_vol(prices, times))
    assert "EWMA fallback" in fit.message


def test_garch_on_a_constant_price_falls_back_rather_than_dividing_by_zero() -> None:
    fit = garch_vol(np.full(100, 90_000.0), np.arange(100) * HOUR)
    assert fit.fallback
    assert fit.sigma_horizon == 0.0


@pytest.mark.parametrize(
    ("prices", "times", "match"),
    [
        ([90_000.0, 90_100.0], [0.0, 3600.0], "at least"),
        ([90_000.0, float("nan"), 90_100.0], [0.0, 1.0, 2.0], r"prices\[1\]"),
        ([90_000.0, -1.0, 90_100.0], [0.0, 1.0, 2.0], r"prices\[1\]"),
        ([90_000.0, 0.0, 90_100.0], [0.0, 1.0, 2.0], r"prices\[1\]"),
        ([90_000.0, 90_050.0, 90_100.0], [0.0, 5.0, 5.0], "increase"),
        ([90_000.0, 90_050.0, 90_100.0], [0.0, float("nan"), 9.0], "finite"),
        ([90_000.0, 90_050.0, 90_100.0], [0.0, 1.0], "one length"),
    ],
)
def test_degenerate_input_raises_data_error(
    prices: list[float], times: list[float], match: str
) -> None:
    with pytest.raises(DataError, match=match):
        ewma_vol(prices, times)
    with pytest.raises(DataError, match=match):
        garch_vol(prices, times)


def test_factory_builds_each_forecaster_a_setting_names() -> None:
    rng = np.random.default_rng(6)
    prices, times = gbm_path(rng, 0.5, 300)
    assert isinstance(make_forecaster("implied"), ImpliedVol)
    assert make_forecaster("implied").forecast(prices, times, implied=0.42) == 0.42
    ewma = make_forecaster("ewma", lam=0.97)
    assert isinstance(ewma, EwmaVol)
    assert ewma.forecast(prices, times, implied=0.42) == ewma_vol(prices, times, 0.97)
    garch = make_forecaster("garch", horizon_seconds=HOUR)
    assert isinstance(garch, GarchVol)
    assert (
        garch.forecast(prices, times, implied=0.42) == garch_vol(prices, times, HOUR).sigma_horizon
    )


def test_factory_refuses_an_unknown_kind_and_implied_refuses_a_bad_vol() -> None:
    with pytest.raises(ValueError, match="unknown volatility forecaster"):
        make_forecaster("hist")
    with pytest.raises(DataError):
        ImpliedVol().forecast([], [], implied=float("nan"))


def _walk(n: int, seed: int = 3, step: float = 60.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    times = 1.7e9 + step * np.arange(n)
    prices = 90_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.6 * math.sqrt(step / 3.15e7), n)))
    return times, prices


def test_a_rolling_ewma_forecast_equals_the_batch_estimate_on_the_same_window() -> None:
    times, prices = _walk(600)
    rolling = RollingVol(EwmaVol(), lookback_seconds=6 * 3600.0)
    for i, (t, p) in enumerate(zip(times, prices, strict=True)):
        rolling.observe(float(t), float(p))
        if i == 100:
            rolling.forecast(implied=0.5)  # seeded here, updated one price at a time after
    kept = times >= times[-1] - 6 * 3600.0
    assert len(rolling) == int(kept.sum())
    assert rolling.forecast(implied=0.5) == pytest.approx(ewma_vol(prices[kept], times[kept]))


def test_a_rolling_window_ignores_an_observation_that_is_not_newer() -> None:
    rolling = RollingVol(EwmaVol(), lookback_seconds=3600.0)
    rolling.observe(100.0, 1.0)
    rolling.observe(100.0, 2.0)
    rolling.observe(50.0, 3.0)
    assert len(rolling) == 1
    assert rolling.last_time == 100.0


def test_a_rolling_garch_refits_only_after_its_interval_and_filters_in_between() -> None:
    times, prices = _walk(900, seed=5)
    rolling = RollingVol(GarchVol(), lookback_seconds=86_400.0, refit_seconds=3_600.0)
    for t, p in zip(times[:600], prices[:600], strict=True):
        rolling.observe(float(t), float(p))
    at_fit = rolling.forecast(implied=0.5)
    assert at_fit == pytest.approx(garch_vol(prices[:600], times[:600]).sigma_horizon)
    for t, p in zip(times[600:630], prices[600:630], strict=True):  # 30 minutes later
        rolling.observe(float(t), float(p))
    between = rolling.forecast(implied=0.5)
    refit_now = garch_vol(prices[:630], times[:630]).sigma_horizon
    assert between == pytest.approx(refit_now, rel=0.05)  # same model, last fit's parameters
    for t, p in zip(times[630:], prices[630:], strict=True):  # past the refit interval
        rolling.observe(float(t), float(p))
    assert rolling.forecast(implied=0.5) == pytest.approx(garch_vol(prices, times).sigma_horizon)
