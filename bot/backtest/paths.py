"""Price path generators for backtests, vectorised over paths.

Every generator returns prices shaped ``(n_steps + 1, n_paths)``: time runs down the rows, so a
backtest that loops over time reads one contiguous row per step. Row 0 is the start price.
Randomness comes only from the ``numpy.random.Generator`` passed in, so a seed replays a run.
``dt`` is in years (ACT/365), drifts and volatilities are annual.

:class:`PathModel` names a generator and its parameters as data (for configs);
:func:`generate` turns it into prices.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from bot.backtest.history import epoch_seconds, load_prices
from bot.domain import DataError
from bot.units import SECONDS_PER_YEAR

Array = npt.NDArray[np.float64]
PATH_BLOCK = 1000
"""Simulated paths are drawn in blocks of this many, block ``b`` from the seed ``(seed, b)``:
any chunk made of whole blocks gets the same numbers as the whole run would."""
_BLOCK_BYTES = 1 << 20  # rows turned into prices at a time: well inside a 2 MiB L2 cache


def _check_grid(s0: float, dt: float, n_steps: int, n_paths: int) -> None:
    if not (np.isfinite(s0) and s0 > 0):
        raise ValueError(f"start price must be positive, got {s0!r}")
    if not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be positive, got {dt!r}")
    if n_steps < 1 or n_paths < 1:
        raise ValueError(f"need at least one step and one path, got {n_steps} x {n_paths}")


def _from_log_increments(s0: float, increments: Array) -> Array:
    """Prices from log increments shaped ``(n_steps, n_paths)``, start row included."""
    log_path = np.empty((increments.shape[0] + 1, increments.shape[1]))
    log_path[0] = 0.0
    np.cumsum(increments, axis=0, out=log_path[1:])
    return s0 * np.exp(log_path)


def gbm(
    rng: np.random.Generator,
    s0: float,
    sigma: float,
    dt: float,
    n_steps: int,
    n_paths: int,
    mu: float = 0.0,
) -> Array:
    """Geometric Brownian motion sampled exactly: ``E[S_t] = s0 · exp(mu · t)``."""
    _check_grid(s0, dt, n_steps, n_paths)
    z = rng.standard_normal((n_steps, n_paths))
    return _from_log_increments(s0, (mu - 0.5 * sigma**2) * dt + sigma * np.sqrt(dt) * z)


def merton(
    rng: np.random.Generator,
    s0: float,
    sigma: float,
    dt: float,
    n_steps: int,
    n_paths: int,
    jump_intensity: float,
    jump_mean: float,
    jump_std: float,
    mu: float = 0.0,
) -> Array:
    """GBM with compound-Poisson lognormal jumps (Merton 1976), sampled exactly per step.

    ``jump_intensity`` is jumps per year, each jump multiplies the price by ``exp(N(m, s²))``.
    The drift is compensated so ``E[S_t] = s0 · exp(mu · t)`` whatever the jumps; the variance
    of a log return over ``t`` is ``(sigma² + lambda · (m² + s²)) · t``.
    """
    _check_grid(s0, dt, n_steps, n_paths)
    if jump_intensity < 0 or jump_std < 0:
        raise ValueError("jump intensity and jump std must be non-negative")
    compensator = jump_intensity * (np.exp(jump_mean + 0.5 * jump_std**2) - 1.0)
    z = rng.standard_normal((n_steps, n_paths))
    n_jumps = rng.poisson(jump_intensity * dt, (n_steps, n_paths)).astype(np.float64)
    jumps = jump_mean * n_jumps + jump_std * np.sqrt(n_jumps) * rng.standard_normal(z.shape)
    drift = (mu - 0.5 * sigma**2 - compensator) * dt
    return _from_log_increments(s0, drift + sigma * np.sqrt(dt) * z + jumps)


@dataclass(frozen=True)
class HestonPaths:
    """Prices and the (non-negative) instantaneous variance that drove them, same shape."""

    prices: Array
    variance: Array


def heston(
    rng: np.random.Generator,
    s0: float,
    v0: float,
    kappa: float,
    theta: float,
    xi: float,
    rho: float,
    dt: float,
    n_steps: int,
    n_paths: int,
    mu: float = 0.0,
) -> HestonPaths:
    """Heston stochastic volatility by full-truncation Euler (Lord, Koekkoek, van Dijk 2010).

    The variance process may go negative between steps; only ``max(v, 0)`` enters drift and
    diffusion, which is the least biased of the simple Euler fixes. The price step is log-Euler,
    so ``E[S_t] = s0 · exp(mu · t)`` holds exactly; ``E[v_t] ≈ theta + (v0 - theta)·e^(-kappa t)``.
    """
    _check_grid(s0, dt, n_steps, n_paths)
    if v0 < 0 or kappa < 0 or theta < 0 or xi < 0 or not -1 <= rho <= 1:
        raise ValueError("need v0, kappa, theta, xi >= 0 and -1 <= rho <= 1")
    increments = np.empty((n_steps, n_paths))
    var = np.empty((n_steps + 1, n_paths))
    var[0] = v0
    v = np.full(n_paths, float(v0))
    sqrt_dt = np.sqrt(dt)
    rho_bar = np.sqrt(1.0 - rho**2)
    for k in range(n_steps):
        z1 = rng.standard_normal(n_paths)
        z2 = rho * z1 + rho_bar * rng.standard_normal(n_paths)
        v_pos = np.maximum(v, 0.0)
        vol = np.sqrt(v_pos) * sqrt_dt
        increments[k] = (mu - 0.5 * v_pos) * dt + vol * z1
        v = v + kappa * (theta - v_pos) * dt + xi * vol * z2
        var[k + 1] = np.maximum(v, 0.0)
    return HestonPaths(prices=_from_log_increments(s0, increments), variance=var)


def log_returns(prices: Array) -> Array:
    """Log returns of a 1-D price series; rejects non-positive or non-finite prices."""
    p = np.asarray(prices, dtype=np.float64)
    if p.ndim != 1 or p.size < 2:
        raise DataError("need a 1-D series of at least two prices")
    if not np.all(np.isfinite(p)) or np.any(p <= 0):
        raise DataError("prices must be positive and finite")
    return np.diff(np.log(p))


def bootstrap(
    rng: np.random.Generator,
    returns: Array,
    s0: float,
    n_steps: int,
    n_paths: int,
    block: int = 1,
    demean: bool = False,
) -> Array:
    """Paths from historical log returns resampled with replacement.

    ``block > 1`` draws circular blocks of consecutive returns, which keeps volatility clusters
    of up to ``block`` steps together. ``demean`` removes the sample's drift, so a bull-market
    history does not masquerade as hedging profit.
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1 or r.size < 1 or not np.all(np.isfinite(r)):
        raise DataError("returns must be a non-empty 1-D array of finite numbers")
    if not 1 <= block <= r.size:
        raise ValueError(f"block must be between 1 and {r.size}, got {block}")
    _check_grid(s0, 1.0, n_steps, n_paths)
    if demean:
        r = r - r.mean()
    n_blocks = -(-n_steps // block)
    starts = rng.integers(0, r.size, (n_blocks, n_paths))
    idx = (starts[:, None, :] + np.arange(block)[None, :, None]) % r.size
    increments = r[idx.reshape(n_blocks * block, n_paths)[:n_steps]]
    return _from_log_increments(s0, increments)


def replay(prices: Array, start: int = 0, n_steps: int | None = None) -> Array:
    """One real path: ``prices[start : start + n_steps + 1]`` as a ``(n_steps + 1, 1)`` array."""
    p = np.asarray(prices, dtype=np.float64)
    if p.ndim != 1:
        raise DataError("a replayed history must be 1-D")
    end = p.size if n_steps is None else start + n_steps + 1
    if start < 0 or end > p.size or end - start < 2:
        raise DataError(f"history of {p.size} prices cannot give steps {start}..{end - 1}")
    window = p[start:end]
    if not np.all(np.isfinite(window)) or np.any(window <= 0):
        raise DataError("replayed prices must be positive and finite")
    return window.reshape(-1, 1).copy()


@dataclass(frozen=True)
class PathModel:
    """Where prices come from. ``kind``: ``gbm``, ``merton`` (GBM + lognormal jumps),
    ``heston`` (variance starts at and reverts to ``sigma²`` unless given), ``bootstrap``
    (resampled log returns of ``history`` in circular blocks of ``block`` steps, de-meaned
    unless ``demean`` is false) or ``replay`` (the real ``history`` from ``start``, ISO UTC, or
    its first hour; one path). ``history`` is a prices CSV that
    :func:`bot.backtest.history.load_prices`
    reads; history-based kinds need ``step_seconds`` a multiple of its 1 h step."""

    kind: Literal["gbm", "merton", "heston", "bootstrap", "replay"] = "gbm"
    s0: float = 90_000.0
    sigma: float = 0.6
    mu: float = 0.0
    jump_intensity: float = 12.0
    jump_mean: float = -0.01
    jump_std: float = 0.03
    heston_v0: float | None = None
    heston_kappa: float = 4.0
    heston_theta: float | None = None
    heston_xi: float = 1.0
    heston_rho: float = -0.4
    history: str | None = None
    block: int = 24
    demean: bool = True
    start: str | None = None

    def __post_init__(self) -> None:
        if not (self.s0 > 0 and self.sigma > 0):
            raise ValueError("path model needs positive s0 and sigma")
        if self.kind in ("bootstrap", "replay") and not self.history:
            raise ValueError(f"path model {self.kind!r} needs a history file")


@dataclass(frozen=True)
class GeneratedPaths:
    """Prices ``(n_steps + 1, n_paths)``; ``epoch0`` is row 0's UTC time (epoch seconds) when
    the path is real history, else ``None``; ``notes`` say what data was used and repaired."""

    prices: Array
    epoch0: float | None = None
    notes: tuple[str, ...] = ()


def _block_draw(
    model: PathModel, rng: np.random.Generator, n: int, dt: float, n_paths: int, returns: Array
) -> Array:
    """One block of ``model``'s simulated paths, drawn from ``rng``."""
    m = model
    if m.kind == "gbm":
        return gbm(rng, m.s0, m.sigma, dt, n, n_paths, m.mu)
    if m.kind == "merton":
        jumps = (m.jump_intensity, m.jump_mean, m.jump_std)
        return merton(rng, m.s0, m.sigma, dt, n, n_paths, *jumps, mu=m.mu)
    if m.kind == "heston":
        v0 = m.sigma**2 if m.heston_v0 is None else m.heston_v0
        theta = m.sigma**2 if m.heston_theta is None else m.heston_theta
        args = (v0, m.heston_kappa, theta, m.heston_xi, m.heston_rho)
        return heston(rng, m.s0, *args, dt, n, n_paths, mu=m.mu).prices
    return bootstrap(rng, returns, m.s0, n, n_paths, m.block, m.demean)


def generate(
    model: PathModel,
    seed: int,
    n_steps: int,
    step_seconds: float,
    n_paths: int,
    first_path: int = 0,
) -> GeneratedPaths:
    """Paths ``first_path … first_path + n_paths − 1`` of the run ``model`` describes on a grid
    of ``step_seconds``, from ``seed``. ``first_path`` must start a block (:data:`PATH_BLOCK`):
    the time spent is linear in ``n_paths`` and a run cut in chunks equals the whole run."""
    m, n, dt = model, n_steps, step_seconds / SECONDS_PER_YEAR
    if first_path < 0 or first_path % PATH_BLOCK:
        raise ValueError(f"first_path must be a multiple of {PATH_BLOCK}, got {first_path}")
    _check_grid(m.s0, dt, n, n_paths)
    notes: tuple[str, ...] = ()
    returns = np.empty(0)
    if m.kind in ("bootstrap", "replay"):
        if m.history is None:
            raise ValueError(f"path model {m.kind!r} needs a history file")
        history = load_prices(m.history)
        step = round(step_seconds)
        notes = (f"history {m.history}: {json.dumps(history.report.to_dict())}",)
        if m.kind == "replay":
            start = None if m.start is None else int(epoch_seconds(m.start))
            grid, grid_prices, carried = history.on_grid(step, start)
            prices = replay(grid_prices, 0, n)
            return GeneratedPaths(
                prices, float(grid[0]), (*notes, f"{carried} grid points carried")
            )
        _, grid_prices, carried = history.on_grid(step)
        returns = log_returns(grid_prices)
        notes = (*notes, f"{carried} grid points carried forward")
    out = np.empty((n + 1, n_paths))
    # One block of normals reused for every block: warm memory, not fresh pages each time;
    # ``out=`` fills it with the very numbers ``standard_normal((n, count))`` would return.
    normals = np.empty((n, min(PATH_BLOCK, n_paths))) if m.kind == "gbm" else None
    for done in range(0, n_paths, PATH_BLOCK):
        count = min(PATH_BLOCK, n_paths - done)
        rng = np.random.default_rng([seed, (first_path + done) // PATH_BLOCK])
        if normals is not None:  # as gbm() computes it, in place: log increments for now
            z = normals if normals.shape[1] == count else np.empty((n, count))
            rng.standard_normal(out=z)
            np.multiply(z, m.sigma * np.sqrt(dt), out=out[1:, done : done + count])
        else:
            out[:, done : done + count] = _block_draw(m, rng, n, dt, count, returns)
    if m.kind == "gbm":
        _log_increments_to_prices(out, (m.mu - 0.5 * m.sigma**2) * dt, m.s0)
    return GeneratedPaths(out, None, notes)


def _log_increments_to_prices(out: Array, drift: float, s0: float) -> None:
    """Rows ``1 …`` of ``out`` hold ``σ√dt·z``; make every row a price, in place.

    Adds the drift, takes the running sum down each column, then ``s0 · exp``: the additions
    of ``cumsum`` in its order (so the same bits) but row by row on contiguous rows, and a few
    rows at a time, so each block goes through every pass while it is in the cache instead of
    the whole chunk going through memory once per pass.
    """
    rows = max(1, _BLOCK_BYTES // (8 * out.shape[1]))
    before = np.zeros(out.shape[1])  # the log price of the row before the block
    out[0] = 0.0
    np.exp(out[:1], out=out[:1])
    out[:1] *= s0
    for k0 in range(1, out.shape[0], rows):
        block = out[k0 : k0 + rows]
        block += drift
        np.add(block[0], before, out=block[0])
        for j in range(1, block.shape[0]):
            block[j] += block[j - 1]
        before[:] = block[-1]
        np.exp(block, out=block)
        block *= s0
