"""Hedging-policy throughput: decisions per second at 1e5 books, one call for all of them.

Each policy (validation, band, rounding to $10 lots and reasons included) is measured on 1e5
random BTC books against the same policy called one book at a time (the live daemon's path, so
the ratio is what vectorising buys a backtest), and the delta band also against a pure-Python
scalar loop that computes the same amounts.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import numpy as np

from bench.common import Row, seconds_per_call
from strategies import (
    DeltaBandParams,
    GammaScaledParams,
    HedgeState,
    LotSpec,
    TimeBandParams,
    decide,
)
from strategies.lots import TOLERANCE_LOTS

BOOKS = 100_000
ONE_AT_A_TIME = 1_000  # books decided singly per timed call: the rate is per book
LOT = LotSpec(step=10.0, min_amount=10.0, inverse=True)  # BTC-PERPETUAL
CASES: dict[str, tuple[str, Any]] = {
    "time_band": ("time_band", TimeBandParams(3600.0)),
    "delta_band to target": ("delta_band", DeltaBandParams(0.01, "target")),
    "delta_band to edge": ("delta_band", DeltaBandParams(0.01, "edge")),
    "gamma_scaled": ("gamma_scaled", GammaScaledParams(1.0, 0.0005, 0.001)),
}
FIELDS = ("delta", "target", "gamma", "price", "now", "last_rebalance", "sigma", "tau")


def books(n: int, seed: int = 7) -> HedgeState:
    """BTC books near 90k: deltas of a few coin, gammas of a short-dated book, mixed due times."""
    rng = np.random.default_rng(seed)
    return HedgeState(
        delta=rng.normal(0.0, 0.05, n),
        target=np.zeros(n),
        gamma=rng.normal(0.0, 5e-4, n),
        price=rng.uniform(60_000.0, 110_000.0, n),
        now=np.full(n, 36_000.0),
        last_rebalance=rng.uniform(30_000.0, 36_000.0, n),
        sigma=rng.uniform(0.3, 1.2, n),
        tau=rng.uniform(1 / 365, 0.25, n),
    )


def head(state: HedgeState, n: int) -> HedgeState:
    return HedgeState(*(np.asarray(getattr(state, f))[:n] for f in FIELDS))


def one_at_a_time(name: str, state: HedgeState, params: Any) -> None:
    n = np.asarray(state.delta).shape[0]
    for i in range(n):
        decide(
            name,
            HedgeState(*(np.asarray(getattr(state, f))[i : i + 1] for f in FIELDS)),
            params,
            LOT,
        )


def scalar_delta_band(
    delta: list[float], target: list[float], price: list[float], band: float
) -> list[float]:
    """The delta band to target, one book per Python iteration: the naive hedger's loop."""
    out: list[float] = []
    for d, t, p in zip(delta, target, price, strict=True):
        lot_coin = LOT.step / p
        width = max(band, lot_coin)
        gap = d - t
        if abs(gap) <= width + TOLERANCE_LOTS * lot_coin:
            out.append(0.0)
            continue
        units = -gap * p / LOT.step
        whole = math.trunc(units)
        steps = whole + (math.copysign(1.0, units) if abs(units - whole) >= 0.5 else 0.0)
        amount = round(steps * LOT.step)
        out.append(float(amount) if abs(amount) >= LOT.min_amount else 0.0)
    return out


def run() -> list[Row]:
    state = books(BOOKS)
    rows: list[Row] = []
    rates: dict[str, float] = {}
    for label, (name, params) in CASES.items():
        rates[label] = BOOKS / seconds_per_call(partial(decide, name, state, params, LOT))
        few = head(state, ONE_AT_A_TIME)
        single = ONE_AT_A_TIME / seconds_per_call(
            partial(one_at_a_time, name, few, params), min_time=0.05, repeat=3
        )
        title = f"strategies.{label} {BOOKS:.0e} books"
        rows.append(Row(title, rates[label], "dec/s", "same policy one book per call", single))

    label = "delta_band to target"
    band = CASES[label][1].band
    delta, target, price = (
        np.asarray(getattr(state, f)).tolist() for f in ("delta", "target", "price")
    )
    scalar = partial(scalar_delta_band, delta, target, price, band)
    if scalar() != decide("delta_band", state, CASES[label][1], LOT).amount.tolist():
        raise AssertionError("scalar delta band disagrees with strategies.delta_band")
    rate = BOOKS / seconds_per_call(scalar, repeat=3)
    rows.append(
        Row(
            f"strategies.{label} {BOOKS:.0e} books",
            rates[label],
            "dec/s",
            "pure-Python scalar loop, run here",
            rate,
        )
    )
    return rows
