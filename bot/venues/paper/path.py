"""A lazily generated, deterministic index path: geometric Brownian motion with Merton jumps.

The path lives on a grid of ``step_seconds`` from the market's start. Its draws come in blocks of
``BLOCK`` steps, each block from its own generator seeded by (seed, currency, block number), and
blocks are generated strictly in order. The level at step n therefore depends only on the seed,
the currency and n — never on how often, or in what order, the market was asked.

The index is piecewise constant: it holds the level of step n over
[start + n·step, start + (n+1)·step).
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import numpy.typing as npt

from bot.domain import DataError

FloatArray = npt.NDArray[np.float64]
BLOCK = 4096


class IndexPath:
    """Log-levels of one currency's index, generated block by block on demand.

    Per step of dt years the log-return is
    (drift − vol²/2 − λκ)·dt + vol·√dt·Z + Σ_{i≤N} J_i, with N ~ Poisson(λ·dt),
    J_i ~ Normal(jump_mean, jump_std²) and κ = E[e^J] − 1, so E[S_t] = S_0·e^(drift·t).
    """

    def __init__(
        self,
        *,
        seed: int,
        currency: str,
        spot: float,
        dt_years: float,
        volatility: float,
        drift: float,
        jump_intensity: float,
        jump_mean: float,
        jump_std: float,
    ) -> None:
        if not (math.isfinite(spot) and spot > 0):
            raise DataError(f"{currency} start spot must be positive, got {spot!r}")
        if not dt_years > 0:
            raise DataError("path step must be positive")
        self._seed = seed
        self._stream = zlib.crc32(currency.encode())  # stable across processes, unlike hash()
        self._dt = dt_years
        self._vol = volatility
        self._jump_rate = jump_intensity * dt_years
        self._jump_mean = jump_mean
        self._jump_std = jump_std
        kappa = math.exp(jump_mean + 0.5 * jump_std**2) - 1.0
        self._mu = (drift - 0.5 * volatility**2 - jump_intensity * kappa) * dt_years
        self._spot = spot
        self._blocks: list[FloatArray] = []  # log(level / spot), so step 0 is exactly spot
        self._next_level = 0.0

    def _increments(self, block: int) -> FloatArray:
        seq = np.random.SeedSequence([self._seed & 0xFFFFFFFF, self._stream, block])
        rng = np.random.Generator(np.random.PCG64(seq))
        z = rng.standard_normal(BLOCK)
        jumps = rng.poisson(self._jump_rate, BLOCK).astype(np.float64)
        sizes = rng.standard_normal(BLOCK)
        jump_part = jumps * self._jump_mean + np.sqrt(jumps) * self._jump_std * sizes
        inc: FloatArray = self._mu + self._vol * math.sqrt(self._dt) * z + jump_part
        return inc

    def _ensure(self, block: int) -> None:
        while len(self._blocks) <= block:
            inc = self._increments(len(self._blocks))
            levels = self._next_level + np.concatenate(([0.0], np.cumsum(inc[:-1])))
            self._next_level = float(levels[-1] + inc[-1])
            self._blocks.append(levels)

    def level(self, step: int) -> float:
        """The index (not its log) at grid step ``step`` ≥ 0."""
        if step < 0:
            raise DataError(f"no index before the market's start (step {step})")
        block, offset = divmod(step, BLOCK)
        self._ensure(block)
        return self._spot * math.exp(float(self._blocks[block][offset]))

    def levels(self, first: int, count: int) -> FloatArray:
        """The index at steps ``first`` … ``first + count − 1``."""
        if first < 0 or count < 0:
            raise DataError("steps must be non-negative")
        if count == 0:
            return np.empty(0)
        last = first + count - 1
        self._ensure(last // BLOCK)
        flat = np.concatenate(self._blocks[first // BLOCK : last // BLOCK + 1])
        start = first - (first // BLOCK) * BLOCK
        out: FloatArray = self._spot * np.exp(flat[start : start + count])
        return out
