"""Black-76 throughput: options per second for price, delta, gamma, vega and theta.

Measures :func:`bot.greeks.black76` (validation and all nine fields included, so it does more
than the baselines) at 1e3, 1e5 and 1e6 options against baselines run here, in this process,
interleaved with it, on the same inputs:

- a plain one-pass numpy kernel (the textbook formulas, scipy's ``ndtr``);
- py_vollib_vectorized (price plus ``get_all_greeks``; Black-76 at r = 0 is Black-Scholes on the
  forward), from the ``bench`` extra;
- a QuantLib ``BlackCalculator`` per option in a Python loop, from the ``bench`` extra.

Each baseline's numbers are checked against ours before it is timed. py_vollib's greeks are
finite differences, so its gamma, vega and theta are checked to 1% at the median, its price and
delta to 1e-6. Targets (issue 13): ≥ 1.0× plain numpy at 1e3 and ≥ 1.5× at 1e5 and 1e6;
≥ 30× py_vollib_vectorized and ≥ 200× the QuantLib loop at 1e5 and 1e6.

At 1e5 and 1e6 a second set of rows, "black76 (out=)", times the same call writing into one
preallocated buffer reused by every repeat (``black76(..., out=greeks_buffer(n))``, checked bit
for bit against the allocating call first), as a caller that values the same number of options
again and again would; the baselines keep their normal calling convention (fresh arrays).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from bench.common import Row, interleaved_seconds
from bot.greeks import OptionGreeks, black76, greeks_buffer

Array = npt.NDArray[np.float64]
Inputs = tuple[Array, Array, Array, Array, npt.NDArray[np.bool_]]
Fields = tuple[Array, Array, Array, Array, Array]

SIZES = (1_000, 100_000, 1_000_000)
PLAIN_TARGET = {1_000: 1.0, 100_000: 1.5, 1_000_000: 1.5}
VOLLIB_TARGET = {100_000: 30.0, 1_000_000: 30.0}
QUANTLIB_TARGET = {100_000: 200.0, 1_000_000: 200.0}
# A scalar loop's rate does not depend on the chain's size: QuantLib runs on this many options,
# interleaved with the others at each size (its rate at another moment of a loaded machine would
# not be comparable).
QUANTLIB_SIZE = 5_000
OUT_SIZES = (100_000, 1_000_000)  # sizes that also time black76 into a reused buffer


def chain(n: int, seed: int = 7) -> Inputs:
    """A BTC-like option chain: forwards near 90k, strikes ±30% log-moneyness, 1 day to 1 year."""
    rng = np.random.default_rng(seed)
    forward = rng.uniform(60_000.0, 110_000.0, n)
    strike = forward * np.exp(rng.normal(0.0, 0.3, n))
    tau = rng.uniform(1.0 / 365.0, 1.0, n)
    sigma = rng.uniform(0.3, 1.2, n)
    is_call = rng.random(n) < 0.5
    return forward, strike, tau, sigma, is_call


def plain_numpy(F: Array, K: Array, t: Array, s: Array, call: npt.NDArray[np.bool_]) -> Fields:
    """The textbook one-pass numpy kernel: the "plain numpy" baseline."""
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


def vollib(inputs: Inputs) -> Fields:
    """py_vollib_vectorized: price and its five greeks (vega per point, theta per day)."""
    import py_vollib_vectorized as pv

    F, K, t, s, call = inputs
    flag = np.where(call, "c", "p")
    price = pv.vectorized_black_scholes(flag, F, K, t, 0.0, s, return_as="numpy")
    g: dict[str, Any] = pv.get_all_greeks(
        flag, F, K, t, 0.0, s, model="black_scholes", return_as="dict"
    )
    return tuple(
        np.asarray(x, dtype=np.float64).ravel()
        for x in (price, g["delta"], g["gamma"], g["vega"], g["theta"])
    )  # type: ignore[return-value]


def quantlib(inputs: Inputs) -> Fields:
    """QuantLib's BlackCalculator per option in a Python loop (discount 1: Deribit's r = 0)."""
    import QuantLib as ql  # noqa: N813

    call_t, put_t = ql.Option.Call, ql.Option.Put
    rows = []
    for F, K, t, s, c in zip(*(a.tolist() for a in inputs), strict=True):
        payoff = ql.PlainVanillaPayoff(call_t if c else put_t, K)
        bc = ql.BlackCalculator(payoff, F, s * math.sqrt(t), 1.0)
        rows.append(
            (bc.value(), bc.delta(F), bc.gamma(F), bc.vega(t) / 100.0, bc.theta(F, t) / 365.0)
        )
    return tuple(np.array(col) for col in zip(*rows, strict=True))  # type: ignore[return-value]


def _check_same(inputs: Inputs, got: Fields, *, loose: tuple[str, ...] = ()) -> None:
    """Benchmark only things that compute the same numbers (theta before Deribit's cap).

    Fields in ``loose`` come from finite differences: their median relative error must be
    under 1%; the others must agree to 1e-6 relative.
    """
    g = black76(*inputs)
    ours = (g.price_usd, g.delta, g.gamma, g.vega, g.theta_rate)
    for name, a, b in zip(("price", "delta", "gamma", "vega", "theta"), ours, got, strict=True):
        if name in loose:
            rel = np.abs(a - b) / np.maximum(np.abs(a), 1e-12)
            if not float(np.median(rel)) < 1e-2:
                raise AssertionError(f"baseline disagrees with black76 on {name}")
        elif not np.allclose(a, b, rtol=1e-6, atol=1e-8):
            raise AssertionError(f"baseline disagrees with black76 on {name}")


def _optional(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        print(f"bench greeks: {module} is not installed (pip install -e '.[bench]'); row skipped")
        return False
    return True


def run() -> list[Row]:
    rows: list[Row] = []
    have_vollib = _optional("py_vollib_vectorized")
    have_quantlib = _optional("QuantLib")
    small = chain(QUANTLIB_SIZE)
    if have_quantlib:
        _check_same(small, quantlib(small))

    for n in SIZES:
        inputs = chain(n)
        name = f"greeks.black76, 1e{round(math.log10(n))} options"
        _check_same(inputs, plain_numpy(*inputs))
        fns: dict[str, Callable[[], object]] = {
            "ours": partial(black76, *inputs),
            "plain": partial(plain_numpy, *inputs),
        }
        with_vollib = have_vollib and n in VOLLIB_TARGET
        with_quantlib = have_quantlib and n in QUANTLIB_TARGET
        if with_vollib:
            _check_same(inputs, vollib(inputs), loose=("gamma", "vega", "theta"))
            fns["vollib"] = partial(vollib, inputs)
        if with_quantlib:
            fns["quantlib"] = partial(quantlib, small)
        if n in OUT_SIZES:
            buffer = greeks_buffer(n)
            _check_bit_identical(black76(*inputs), black76(*inputs, out=buffer))
            fns["out"] = partial(black76, *inputs, out=buffer)
        seconds = interleaved_seconds(list(fns.values()), repeat=5 if n < 1_000_000 else 3)
        times = dict(zip(fns, seconds, strict=True))
        variants = [(name, n / times["ours"])]
        if "out" in times:
            variants.append(
                (f"{name} (out=: one reused buffer; baselines allocate)", n / times["out"])
            )
        for label, ours in variants:
            rows.append(
                Row(
                    label,
                    ours,
                    "opt/s",
                    "plain one-pass numpy",
                    n / times["plain"],
                    target=PLAIN_TARGET[n],
                )
            )
            if with_vollib:
                rows.append(
                    Row(
                        label,
                        ours,
                        "opt/s",
                        "py_vollib_vectorized",
                        n / times["vollib"],
                        target=VOLLIB_TARGET[n],
                    )
                )
            if with_quantlib:
                rows.append(
                    Row(
                        label,
                        ours,
                        "opt/s",
                        f"QuantLib loop ({QUANTLIB_SIZE:,} options)",
                        QUANTLIB_SIZE / times["quantlib"],
                        target=QUANTLIB_TARGET[n],
                    )
                )
    return rows


def _check_bit_identical(fresh: OptionGreeks, reused: OptionGreeks) -> None:
    """The buffered call must compute exactly what the allocating one does."""
    for field in OptionGreeks.__dataclass_fields__:
        if not np.array_equal(getattr(fresh, field), getattr(reused, field), equal_nan=True):
            raise AssertionError(f"black76(out=) differs from black76 on {field}")
