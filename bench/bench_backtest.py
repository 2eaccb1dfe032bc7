"""Backtest throughput: path-steps per second on 10,000 paths.

One path-step is one book valuation (Black-76 price, delta, gamma), one policy decision and the
trade, cost and P&L arithmetic for one path at one time step. Measured on
:func:`bot.backtest.engine.simulate` with the standard scenario's short ATM call, against a
plain-numpy Black-76 anchor measured once on a 2-core machine (options per second; a path-step
needs at least one option evaluation, which :func:`bot.greeks.black76` spreads over two threads)
and against a bare numpy delta-hedging loop run here on the same paths (delta only: no gamma,
policy, lots, validation or costs).
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from bench.common import Row, seconds_per_call
from bot.backtest.engine import CostModel, OptionLeg, PolicyRun, simulate
from bot.backtest.paths import gbm
from strategies.delta_band import DeltaBandParams
from strategies.gamma_scaled import GammaScaledParams
from strategies.time_band import TimeBandParams

Array = npt.NDArray[np.float64]

N_PATHS = 10_000
N_STEPS = 96  # one day of 15-minute steps
STEP_SECONDS = 900.0
S0, SIGMA, EXPIRY_DAYS = 90_000.0, 0.6, 7.0
PLAIN_NUMPY_B76_REF = 10.5e6  # plain-numpy Black-76, options/s at 1e5 on a 2-core machine


def bare_delta_hedge(prices: Array) -> Array:
    """The textbook loop: Black-Scholes delta every step, P&L of a short call, nothing else."""
    strike, expiry = S0, EXPIRY_DAYS / 365.0
    pnl = np.zeros(prices.shape[1])
    for k in range(prices.shape[0] - 1):
        tau = expiry - k * STEP_SECONDS / (365.0 * 86_400.0)
        sst = SIGMA * math.sqrt(tau)
        d1 = np.log(prices[k] / strike) / sst + 0.5 * sst
        pnl += ndtr(d1) * (prices[k + 1] - prices[k])
    return pnl


def _simulate(prices: Array, policy: PolicyRun) -> None:
    simulate(
        prices,
        (OptionLeg("call", -1.0, EXPIRY_DAYS),),
        (policy,),
        step_seconds=STEP_SECONDS,
        costs=CostModel(fee_rate=0.0005),
        default_sigma=SIGMA,
    )


def run() -> list[Row]:
    rng = np.random.default_rng(7)
    prices = gbm(rng, S0, SIGMA, STEP_SECONDS / (365.0 * 86_400.0), N_STEPS, N_PATHS)
    path_steps = N_PATHS * N_STEPS
    bare = path_steps / seconds_per_call(lambda: bare_delta_hedge(prices), repeat=3)
    rows = []
    for name, policy in (
        ("time_band", PolicyRun("time_band", TimeBandParams(3600.0))),
        ("delta_band", PolicyRun("delta_band", DeltaBandParams(0.05))),
        ("gamma_scaled", PolicyRun("gamma_scaled", GammaScaledParams(1e-3, 5e-4, 0.0))),
    ):
        rate = path_steps / seconds_per_call(partial(_simulate, prices, policy), repeat=3)
        rows.append(
            Row(
                f"backtest {name}, 10k paths",
                rate,
                " path-steps/s",
                "anchor: plain-numpy Black-76 options/s",
                PLAIN_NUMPY_B76_REF,
            )
        )
        rows.append(
            Row(f"backtest {name}, 10k paths", rate, " path-steps/s", "bare numpy hedge", bare)
        )
    return rows
