"""Black-76 throughput: options per second for price, delta, gamma, vega and theta.

Measures :func:`bot.greeks.black76` (validation and every field included, so it does more than
the baselines) at 1e3, 1e5 and 1e6 options against anchors measured once on a 2-core machine
(plain numpy; a fused compiled kernel on 2 threads), and against a plain-numpy kernel and scalar
loops run here now on the same inputs (machine-relative ratios).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr
from scipy.stats import norm

from bench.common import Row, interleaved_seconds, seconds_per_call
from bot.greeks import black76

Array = npt.NDArray[np.float64]
Inputs = tuple[Array, Array, Array, Array, npt.NDArray[np.bool_]]

SIZES = (1_000, 100_000, 1_000_000)
# Anchors: options per second measured once on a 2-core machine like the ones here.
PLAIN_NUMPY_REF = {1_000: 6.8e6, 100_000: 10.5e6, 1_000_000: 8.3e6}
FUSED_KERNEL_REF = {1_000: 21e6, 100_000: 24e6, 1_000_000: 20e6}
FUSED_KERNEL_LABEL = {
    1_000: "anchor: fused kernel, 2 threads",
    100_000: "anchor: fused kernel, 2 threads",
    1_000_000: "anchor: fused kernel, 2 thr (14-26 M)",
}
SCALAR_SIZE = 1_000


def chain(n: int, seed: int = 7) -> Inputs:
    """A BTC-like option chain: forwards near 90k, strikes ±30% log-moneyness, 1 day to 1 year."""
    rng = np.random.default_rng(seed)
    forward = rng.uniform(60_000.0, 110_000.0, n)
    strike = forward * np.exp(rng.normal(0.0, 0.3, n))
    tau = rng.uniform(1.0 / 365.0, 1.0, n)
    sigma = rng.uniform(0.3, 1.2, n)
    is_call = rng.random(n) < 0.5
    return forward, strike, tau, sigma, is_call


def plain_numpy(
    F: Array, K: Array, t: Array, s: Array, call: npt.NDArray[np.bool_]
) -> tuple[Array, ...]:
    """The textbook numpy kernel: the "plain numpy" baseline, run here."""
    sqt = np.sqrt(t)
    sst = s * sqt
    d1 = (np.log(F / K) + 0.5 * sst * sst) / sst
    d2 = d1 - sst
    n1 = ndtr(d1)
    n2 = ndtr(d2)
    pdf = np.exp(-0.5 * d1 * d1) / math.sqrt(2.0 * math.pi)
    c = F * n1 - K * n2
    price = np.where(call, c, c - (F - K))
    delta = np.where(call, n1, n1 - 1.0)
    gamma = pdf / (F * sst)
    vega = F * pdf * sqt / 100.0
    theta = -F * pdf * s / (2.0 * sqt) / 365.0
    return price, delta, gamma, vega, theta


def _scalar_loop(
    cdf: Callable[[float], float], pdf: Callable[[float], float]
) -> Callable[[Inputs], list[tuple[float, ...]]]:
    def loop(inputs: Inputs) -> list[tuple[float, ...]]:
        out: list[tuple[float, ...]] = []
        for F, K, t, s, call in zip(*(a.tolist() for a in inputs), strict=True):
            sqt = math.sqrt(t)
            d1 = (math.log(F / K) + 0.5 * s * s * t) / (s * sqt)
            d2 = d1 - s * sqt
            n1, n2, p = cdf(d1), cdf(d2), pdf(d1)
            price = F * n1 - K * n2 if call else F * n1 - K * n2 - (F - K)
            delta = n1 if call else n1 - 1.0
            out.append(
                (price, delta, p / (F * s * sqt), F * p * sqt / 100.0, -F * p * s / (2 * sqt) / 365)
            )
        return out

    return loop


scipy_scalar = _scalar_loop(lambda x: float(norm.cdf(x)), lambda x: float(norm.pdf(x)))
math_scalar = _scalar_loop(
    lambda x: 0.5 * math.erfc(-x / math.sqrt(2.0)),
    lambda x: math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi),
)


def _check_same(inputs: Inputs, got: tuple[Array, ...]) -> None:
    """Benchmark only things that compute the same numbers (theta before Deribit's cap)."""
    g = black76(*inputs)
    for name, a, b in zip(
        ("price", "delta", "gamma", "vega", "theta"),
        (g.price_usd, g.delta, g.gamma, g.vega, g.theta_rate),
        got,
        strict=True,
    ):
        if not np.allclose(a, b, rtol=1e-8, atol=1e-8):
            raise AssertionError(f"baseline disagrees with black76 on {name}")


def run() -> list[Row]:
    rows: list[Row] = []
    ours: dict[int, float] = {}
    for n in SIZES:
        inputs = chain(n)
        _check_same(inputs, plain_numpy(*inputs))
        ours_s, plain_s = interleaved_seconds(
            [partial(black76, *inputs), partial(plain_numpy, *inputs)]
        )
        ours[n] = n / ours_s
        name = f"greeks.black76, 1e{round(math.log10(n))} options"
        rows.append(Row(name, ours[n], "opt/s", "anchor: plain numpy", PLAIN_NUMPY_REF[n]))
        rows.append(Row(name, ours[n], "opt/s", "plain numpy, run here", n / plain_s))
        rows.append(Row(name, ours[n], "opt/s", FUSED_KERNEL_LABEL[n], FUSED_KERNEL_REF[n]))

    # Scalar loops are ~1000x slower: one call per repeat, no interleaving needed.
    inputs = chain(SCALAR_SIZE)
    name = f"greeks.black76, 1e{round(math.log10(SCALAR_SIZE))} options"
    for label, loop in (("scipy.stats.norm", scipy_scalar), ("math.erfc", math_scalar)):
        _check_same(inputs, tuple(np.array(col) for col in zip(*loop(inputs), strict=True)))
        rate = SCALAR_SIZE / seconds_per_call(partial(loop, inputs), repeat=3)
        rows.append(Row(name, ours[SCALAR_SIZE], "opt/s", f"scalar loop, {label}, run here", rate))
    return rows
