"""The time band keeps time on any float step, and chunked runs equal the unchunked run."""

from __future__ import annotations

import math
from dataclasses import replace

import numba
import numpy as np
import pytest

from bot.backtest.book import bs_greeks
from bot.backtest.datafiles import shared_data
from bot.backtest.engine import (
    CONTINUOUS_LOT,
    BacktestConfig,
    OptionLeg,
    PolicyRun,
    run_backtest,
    simulate,
)
from bot.backtest.history import load_prices
from bot.backtest.kernel import add_leg
from bot.backtest.paths import PathModel, bootstrap, gbm, generate, log_returns, merton
from bot.black76_kernel import ncdf
from strategies.common import HedgeState
from strategies.delta_band import DeltaBandParams
from strategies.time_band import TIME_TOLERANCE_SECONDS, TimeBandParams, is_due, time_band

# Steps whose multiples are not exact in binary floating point, from a third of a second to a
# week: k · step and (k + 1) · step differ by a rounding error less than step for many k.
AWKWARD_STEPS = (1 / 3, 0.1, 0.7, 514.2857142857143, 900.1, 1234.567, 2 / 3, 604_800 / 3)
N_STEPS = 80
PRICES = shared_data() / "prices"


def test_most_awkward_steps_really_make_a_clock_whose_ticks_fall_short_of_the_step() -> None:
    short = [
        step
        for step in AWKWARD_STEPS
        if (np.diff(step * np.arange(N_STEPS + 1, dtype=np.float64)) < step).any()
    ]
    assert len(short) >= 5


@pytest.mark.parametrize("step", AWKWARD_STEPS)
def test_time_band_with_interval_equal_to_the_step_rebalances_at_every_one_of_n_steps(
    step: float,
) -> None:
    times = step * np.arange(N_STEPS, dtype=np.float64)
    last = np.array([-np.inf])
    params = TimeBandParams(interval_seconds=step)
    lot = CONTINUOUS_LOT
    delta = 1.0
    rebalances = 0
    for now in times:
        state = HedgeState(
            delta=np.array([delta]),
            target=np.array([0.0]),
            gamma=np.array([0.0]),
            price=np.array([100.0]),
            now=np.array([now]),
            last_rebalance=last,
            sigma=np.array([0.2]),
            tau=np.array([0.1]),
        )
        orders = time_band(state, params, lot)
        if orders.amount[0] != 0:
            rebalances += 1
            last = np.array([now])
        delta = 1.0  # the market moves the book away again before the next tick
    assert rebalances == N_STEPS


@pytest.mark.parametrize("step", AWKWARD_STEPS)
def test_a_backtest_with_interval_equal_to_the_step_trades_on_every_step(step: float) -> None:
    rng = np.random.default_rng(3)
    sd = 0.2 * np.sqrt(step / (365 * 86_400.0))  # moves consistent with the option's vol
    prices = 100.0 * np.exp(np.cumsum(rng.normal(0, sd, (N_STEPS + 1, 4)), axis=0))
    horizon_days = N_STEPS * step / 86_400.0 * 2  # the option outlives the run
    (result,) = simulate(
        prices,
        (OptionLeg("call", -100.0, horizon_days, strike=100.0),),
        (PolicyRun("time_band", TimeBandParams(step)),),
        step_seconds=step,
        default_sigma=0.2,
        lot=CONTINUOUS_LOT,
        unwind_at_end=False,
    )
    assert np.all(result.outcome.trades == N_STEPS)


def test_the_due_test_forgives_only_a_millisecond() -> None:
    last = np.array([0.0, 0.0, 0.0])
    now = np.array([3600.0 - TIME_TOLERANCE_SECONDS / 2, 3600.0 - 0.01, 3600.0])
    assert is_due(now, last, 3600.0).tolist() == [True, False, True]


def chunk_config(n_paths: int, chunk_paths: int, kind: str = "gbm") -> BacktestConfig:
    return BacktestConfig(
        legs=(OptionLeg("call", -1.0, 2.0), OptionLeg("put", -1.0, 1.0, moneyness=0.95)),
        policies=(
            PolicyRun("time_band", TimeBandParams(3600.0)),
            PolicyRun("delta_band", DeltaBandParams(0.05)),
        ),
        model=PathModel(kind=kind),  # type: ignore[arg-type]
        horizon_days=2.0,
        step_seconds=1800.0,
        n_paths=n_paths,
        chunk_paths=chunk_paths,
        seed=11,
    )


@pytest.mark.parametrize("kind", ["gbm", "merton", "heston"])
def test_a_run_in_chunks_of_paths_gives_exactly_the_unchunked_results(kind: str) -> None:
    whole = run_backtest(chunk_config(3500, 4000, kind))
    seen: list[tuple[int, int]] = []
    chunked = run_backtest(
        chunk_config(3500, 1000, kind), progress=lambda done, total: seen.append((done, total))
    )
    assert seen == [(1000, 3500), (2000, 3500), (3000, 3500), (3500, 3500)]
    for a, b in zip(whole.results, chunked.results, strict=True):
        for name in ("option_pnl", "hedge_pnl", "fees", "funding", "trades"):
            np.testing.assert_array_equal(getattr(a.outcome, name), getattr(b.outcome, name))
        assert a.to_dict() == b.to_dict()


def test_paths_of_a_later_chunk_are_the_same_columns_of_the_whole_run() -> None:
    whole = generate(PathModel(), 5, 10, 900.0, 3000).prices
    part = generate(PathModel(), 5, 10, 900.0, 1000, first_path=2000).prices
    np.testing.assert_array_equal(whole[:, 2000:], part)


def test_chunks_must_be_whole_blocks_of_paths() -> None:
    with pytest.raises(ValueError, match="multiple of 1000"):
        replace(chunk_config(10, 1000), chunk_paths=1500)
    with pytest.raises(ValueError, match="multiple of 1000"):
        generate(PathModel(), 5, 10, 900.0, 10, first_path=10)


@pytest.mark.parametrize("is_call", [True, False])
@pytest.mark.parametrize("rate", [0.0, 0.05])
def test_the_compiled_delta_and_gamma_equal_the_numpy_black_scholes(
    is_call: bool, rate: float
) -> None:
    rng = np.random.default_rng(4)
    prices = 100.0 * np.exp(rng.normal(0, 0.2, (5, 300)))
    strike = np.full(300, 105.0)
    tau = np.linspace(0.5, 0.01, 5)
    delta, gamma = np.zeros_like(prices), np.ones_like(prices)
    add_leg(prices, strike, tau, 0.3, is_call, rate, -2.0, delta, gamma, with_gamma=True)
    _, d, g = bs_greeks(prices, strike, tau[:, None], 0.3, is_call, rate, with_value=False)
    assert g is not None
    np.testing.assert_allclose(delta, -2.0 * d, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gamma, 1.0 - 2.0 * g, rtol=1e-12, atol=1e-14)


@numba.njit
def _ncdf_each(d: np.ndarray, e: np.ndarray) -> np.ndarray:
    out = np.empty_like(d)
    for i in range(d.shape[0]):
        out[i] = ncdf(d[i], e[i])
    return out


@pytest.mark.parametrize("is_call", [True, False])
def test_the_books_delta_is_ncdf_path_by_path_in_both_tails_bit_for_bit(is_call: bool) -> None:
    prices = np.exp(np.linspace(-12.0, 12.0, 2_001))[None, :] * 100.0  # |d1| up to about 40
    strike, tau = np.full(2_001, 100.0), np.array([0.09])
    delta, gamma = np.zeros_like(prices), np.zeros_like(prices)
    add_leg(prices, strike, tau, 0.6, is_call, 0.0, -1.5, delta, gamma, with_gamma=False)
    vol = 0.6 * math.sqrt(0.09)  # the kernel's own d1 and exp(−d1²/2), operation for operation
    d1 = (np.log(prices[0] / strike) + 0.0) * (1.0 / vol) + 0.5 * vol
    w = 1.0 if is_call else -1.0
    want = 0.0 + -1.5 * w * _ncdf_each(w * d1, np.exp(-0.5 * d1 * d1))
    assert delta[0].tobytes() == want.tobytes()
    assert np.count_nonzero(np.abs(d1) >= 3.0) > 1_000  # the far tail is really exercised


@pytest.mark.parametrize("is_call", [True, False])
def test_a_fresh_leg_writes_over_the_block_the_bits_of_adding_to_zeros(is_call: bool) -> None:
    rng = np.random.default_rng(6)
    prices = 100.0 * np.exp(rng.normal(0, 0.3, (4, 500)))
    prices[0, :3] = (1e-3, 1e5, 100.0)  # deep in and out of the money: N(d1) at 0 (−0.0 too)
    strike, tau = np.full(500, 100.0), np.linspace(0.3, 0.001, 4)
    added = (np.zeros_like(prices), np.zeros_like(prices))
    written = (np.full_like(prices, np.nan), np.full_like(prices, np.nan))
    for out, fresh in ((added, False), (written, True)):
        add_leg(prices, strike, tau, 0.5, is_call, 0.0, -3.0, *out, with_gamma=True, fresh=fresh)
    for a, w in zip(added, written, strict=True):
        assert a.tobytes() == w.tobytes()


@pytest.mark.parametrize("kind", ["gbm", "merton", "bootstrap"])
def test_each_block_of_paths_is_the_generator_run_on_the_blocks_own_seed(kind: str) -> None:
    csv = PRICES / "btc_usd_1h_cryptocompare_2022_2026.csv"
    if kind == "bootstrap" and not csv.exists():
        pytest.skip("shared market data not mounted")
    history = str(csv) if kind == "bootstrap" else None
    model = PathModel(kind=kind, mu=0.1, history=history)  # type: ignore[arg-type]
    whole = generate(model, 5, 48, 3600.0, 1500).prices
    dt = 3600.0 / (365 * 86_400.0)
    rng = np.random.default_rng([5, 1])
    if kind == "gbm":
        alone = gbm(rng, model.s0, model.sigma, dt, 48, 500, model.mu)
    elif kind == "merton":
        jumps = (model.jump_intensity, model.jump_mean, model.jump_std)
        alone = merton(rng, model.s0, model.sigma, dt, 48, 500, *jumps, mu=model.mu)
    else:
        _, grid_prices, _ = load_prices(str(history)).on_grid(3600)
        returns = log_returns(grid_prices)
        alone = bootstrap(rng, returns, model.s0, 48, 500, model.block, model.demean)
    np.testing.assert_array_equal(whole[:, 1000:], alone)


def test_a_chunk_turned_into_prices_a_few_rows_at_a_time_is_each_blocks_own_gbm() -> None:
    # 20,000 paths: a few rows at a time fit the cache, so 48 steps take several row blocks
    model = PathModel(kind="gbm", mu=0.1)
    whole = generate(model, 5, 48, 3600.0, 20_000, first_path=3000).prices
    dt = 3600.0 / (365 * 86_400.0)
    for block in (0, 7, 19):
        rng = np.random.default_rng([5, 3 + block])
        alone = gbm(rng, model.s0, model.sigma, dt, 48, 1000, model.mu)
        np.testing.assert_array_equal(whole[:, 1000 * block : 1000 * (block + 1)], alone)


def test_a_deep_out_of_the_money_puts_delta_keeps_its_relative_precision() -> None:
    from scipy.special import ndtr

    # d1 from 6 to 9: N(d1) - 1 would cancel to 0 or a few ulps; the put's delta is -N(-d1).
    prices = np.array([[100.0 * math.exp(x)] for x in (1.2, 1.5, 1.8)]).T  # (1, 3)
    strike, tau, sigma = np.full(3, 100.0), np.array([0.04]), 1.0
    delta, gamma = np.zeros_like(prices), np.zeros_like(prices)
    add_leg(prices, strike, tau, sigma, False, 0.0, 1.0, delta, gamma, with_gamma=False)
    vol_t = sigma * math.sqrt(tau[0])
    d1 = np.log(prices[0] / strike) / vol_t + 0.5 * vol_t
    assert (d1 > 6.0).all()
    np.testing.assert_allclose(delta[0], -ndtr(-d1), rtol=1e-12)
