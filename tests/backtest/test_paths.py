"""Price path generators: shapes, seeds, and the moments each model promises."""

from __future__ import annotations

import numpy as np
import pytest

from bot.backtest import paths
from bot.domain import DataError

DT = 1.0 / (365.0 * 24.0)  # one hour
DAY = 24 * DT


def rng(seed: int = 11) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_gbm_has_the_promised_mean_and_log_variance() -> None:
    p = paths.gbm(rng(), 100.0, 0.6, DAY, 30, 20_000, mu=0.5)
    assert p.shape == (31, 20_000)
    assert np.all(p[0] == 100.0)
    t = 30 * DAY
    assert p[-1].mean() == pytest.approx(100.0 * np.exp(0.5 * t), rel=0.01)
    assert np.log(p[-1] / 100.0).var() == pytest.approx(0.36 * t, rel=0.03)


def test_merton_jumps_keep_the_mean_but_add_variance_and_fat_left_tails() -> None:
    lam, m, s, sigma = 50.0, -0.05, 0.08, 0.4
    p = paths.merton(rng(), 100.0, sigma, DAY, 30, 40_000, lam, m, s)
    t = 30 * DAY
    log_r = np.log(p[-1] / 100.0)
    assert p[-1].mean() == pytest.approx(100.0, rel=0.01)
    assert log_r.var() == pytest.approx((sigma**2 + lam * (m**2 + s**2)) * t, rel=0.04)
    fine = paths.merton(rng(), 100.0, sigma, DT, 24 * 30, 2000, lam, m, s)
    hourly = np.diff(np.log(fine), axis=0).ravel()
    z = (hourly - hourly.mean()) / hourly.std()
    assert np.mean(z**3) < -0.5  # negative jumps skew hourly returns left
    assert np.mean(z**4) > 6.0  # and fatten their tails well beyond normal (3)


def test_merton_without_jumps_is_gbm() -> None:
    a = paths.merton(rng(3), 100.0, 0.5, DT, 50, 100, 0.0, -0.1, 0.1)
    assert np.log(a[-1] / 100).var() > 0
    assert np.all(np.isfinite(a))


def test_heston_mean_price_and_variance_follow_the_model() -> None:
    v0, kappa, theta, xi, rho = 0.16, 3.0, 0.49, 0.8, -0.6
    n_steps = 4 * 60  # 6-hour steps over 60 days
    h = paths.heston(rng(), 100.0, v0, kappa, theta, xi, rho, DAY / 4, n_steps, 20_000)
    t = 60 * DAY
    assert h.prices.shape == h.variance.shape == (n_steps + 1, 20_000)
    assert np.all(h.prices[0] == 100.0)
    assert np.all(h.variance >= 0.0)
    assert h.prices[-1].mean() == pytest.approx(100.0, rel=0.01)
    expected_v = theta + (v0 - theta) * np.exp(-kappa * t)
    assert h.variance[-1].mean() == pytest.approx(expected_v, rel=0.03)
    # Leverage: a falling price comes with rising variance when rho < 0.
    dlog = np.log(h.prices[-1] / 100.0)
    dvar = h.variance[-1] - v0
    assert np.corrcoef(dlog, dvar)[0, 1] < -0.4


def test_heston_with_no_vol_of_vol_is_gbm_in_distribution() -> None:
    h = paths.heston(rng(), 100.0, 0.25, 2.0, 0.25, 0.0, 0.0, DT, 24 * 10, 20_000)
    assert np.all(h.variance == 0.25)
    t = 24 * 10 * DT
    assert np.log(h.prices[-1] / 100).var() == pytest.approx(0.25 * t, rel=0.03)


def test_bootstrap_draws_only_historical_returns_in_whole_blocks() -> None:
    returns = np.arange(1, 101, dtype=np.float64) * 1e-4
    p = paths.bootstrap(rng(), returns, 50.0, 40, 300, block=8)
    inc = np.diff(np.log(p), axis=0)
    assert np.allclose(np.isin(np.round(inc * 1e4), np.arange(1, 101)), True)
    # Inside a block, each return is the one after its predecessor (circularly).
    steps = np.round(inc * 1e4).astype(int)
    within = np.arange(1, 40) % 8 != 0
    nxt = steps[:-1] % 100 + 1
    assert np.all(steps[1:][within] == nxt[within])


def test_bootstrap_demean_removes_the_sample_drift() -> None:
    returns = rng(5).normal(0.001, 0.01, 5000)
    p = paths.bootstrap(rng(), returns, 100.0, 500, 4000, demean=True)
    assert abs(np.log(p[-1] / 100).mean()) < 0.01
    trending = paths.bootstrap(rng(), returns, 100.0, 500, 4000)
    assert np.log(trending[-1] / 100).mean() == pytest.approx(500 * returns.mean(), abs=0.02)


def test_replay_is_the_history_itself_as_one_path() -> None:
    history = np.array([10.0, 11.0, 12.0, 13.0, 14.0])
    assert paths.replay(history, 1, 2).tolist() == [[11.0], [12.0], [13.0]]
    with pytest.raises(DataError):
        paths.replay(history, 3, 5)
    with pytest.raises(DataError):
        paths.replay(np.array([10.0, np.nan, 12.0]))


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="start price"):
        paths.gbm(rng(), -1.0, 0.5, DT, 10, 10)
    with pytest.raises(ValueError, match="rho"):
        paths.heston(rng(), 100.0, 0.1, 1.0, 0.1, 0.5, 1.5, DT, 10, 10)
    with pytest.raises(DataError):
        paths.log_returns(np.array([1.0, 0.0, 2.0]))
    with pytest.raises(DataError):
        paths.bootstrap(rng(), np.array([np.nan]), 100.0, 10, 10)


@pytest.mark.parametrize("kind", ["gbm", "merton", "heston"])
def test_same_seed_same_paths_other_seed_other_paths(kind: str) -> None:
    model = paths.PathModel(kind=kind)  # type: ignore[arg-type]
    a = paths.generate(model, 5, 20, 3600.0, 50).prices
    b = paths.generate(model, 5, 20, 3600.0, 50).prices
    c = paths.generate(model, 6, 20, 3600.0, 50).prices
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
