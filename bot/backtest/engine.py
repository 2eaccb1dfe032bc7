"""Backtests: the daemon's own hedging policies over many price paths at once.

A book of option legs (:mod:`bot.backtest.book`) is valued on every path at every step; each
policy in the config sees a :class:`~strategies.common.HedgeState` with one row per path and
answers with the very functions the daemon calls (``strategies.registry.POLICIES``). By default
trades go into an inverse perpetual (``LotSpec``, $10 lots like BTC-PERPETUAL) and pay a
proportional fee, a half spread and funding; a textbook case (Hull's stock option) sets a
``rate``, a drift, an absolute strike and :data:`CONTINUOUS_LOT`. All policies run in lockstep
on the same paths, so their differences are not Monte-Carlo noise. The loop and the accounting
are in :mod:`bot.backtest.loop` and :mod:`bot.backtest.results`.

Paths are made and hedged in chunks of ``chunk_paths``, so memory is bounded by the chunk, not
the run; path blocks are seeded by their index (:func:`bot.backtest.paths.generate`), so a
chunked run gives exactly the numbers of an unchunked one.

Entry point: :func:`run_backtest` with a :class:`BacktestConfig`; the engine alone is
:func:`~bot.backtest.loop.simulate`, which takes any price paths (``(n_steps + 1, n_paths)``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from bot.backtest import paths
from bot.backtest.book import BookAt, BookMarks, OptionLeg, option_book
from bot.backtest.history import epoch_seconds, load_funding
from bot.backtest.loop import (
    BTC_PERPETUAL_LOT,
    CONTINUOUS_LOT,
    hedge_book,
    hedge_outcomes,
    reads_gamma,
    simulate,
)
from bot.backtest.paths import PathModel
from bot.backtest.results import (
    CostModel,
    PathOutcome,
    PolicyResult,
    PolicyRun,
    expected_shortfall,
)
from bot.units import SECONDS_PER_DAY
from strategies.common import LotSpec

__all__ = [
    "BTC_PERPETUAL_LOT",
    "CONTINUOUS_LOT",
    "BacktestConfig",
    "BacktestReport",
    "BookAt",
    "BookMarks",
    "CostModel",
    "OptionLeg",
    "PathOutcome",
    "Piece",
    "PolicyResult",
    "PolicyRun",
    "Progress",
    "assemble",
    "chunks",
    "expected_shortfall",
    "hedge_book",
    "option_book",
    "run_backtest",
    "run_piece",
    "simulate",
]

Array = npt.NDArray[np.float64]
Progress = Callable[[int, int], None]
"""Called after each chunk with (paths done, paths in all)."""
DEFAULT_CHUNK_PATHS = 10_000
MIN_STEP_SECONDS = 1.0
MAX_STEPS = 1_000_000  # about 28 years of 15-minute steps: beyond it, a typo, not a study


@dataclass(frozen=True)
class BacktestConfig:
    """A whole backtest: book, policies, price model, costs, grid, hedge instrument.

    ``horizon_days`` must be a whole number of ``step_seconds``; the policies are asked at
    every step (so ``step_seconds`` plays the daemon's ``check_seconds``). ``initial_hedge`` is
    a starting perpetual position in the lot's unit (USD for inverse); ``unwind_at_end`` closes
    the hedge at the horizon and pays for it. ``rate`` (annual, continuously compounded)
    values the options as Black–Scholes on spot, finances the hedge account and reports P&L
    as present values; leave it 0 for the perpetual, whose cost of carry is ``costs`` funding.
    ``chunk_paths`` bounds memory (a multiple of :data:`bot.backtest.paths.PATH_BLOCK`).
    """

    legs: tuple[OptionLeg, ...]
    policies: tuple[PolicyRun, ...]
    model: PathModel = field(default_factory=PathModel)
    costs: CostModel = field(default_factory=CostModel)
    horizon_days: float = 7.0
    step_seconds: float = 900.0
    n_paths: int = 2000
    seed: int = 7
    lot: LotSpec = BTC_PERPETUAL_LOT
    target_delta: float = 0.0
    initial_hedge: float = 0.0
    unwind_at_end: bool = True
    rate: float = 0.0
    chunk_paths: int = DEFAULT_CHUNK_PATHS

    def __post_init__(self) -> None:
        if not self.legs or not self.policies:
            raise ValueError("a backtest needs at least one option leg and one policy")
        if not (self.horizon_days > 0 and self.step_seconds > 0 and self.n_paths >= 1):
            raise ValueError("horizon_days, step_seconds and n_paths must be positive")
        if self.seed < 0:
            raise ValueError(f"seed must be 0 or more, got {self.seed}")
        if not (math.isfinite(self.rate) and abs(self.rate) < 1.0):
            raise ValueError(f"rate must be an annual fraction in (-1, 1), got {self.rate!r}")
        if self.chunk_paths < 1 or self.chunk_paths % paths.PATH_BLOCK:
            raise ValueError(f"chunk_paths must be a positive multiple of {paths.PATH_BLOCK}")
        if self.step_seconds < MIN_STEP_SECONDS:
            raise ValueError(
                f"step_seconds must be at least {MIN_STEP_SECONDS:g} s (far above the time"
                f" band's tolerance), got {self.step_seconds:g}"
            )
        steps = self.horizon_days * SECONDS_PER_DAY / self.step_seconds
        if steps > MAX_STEPS:
            raise ValueError(f"horizon is {steps:,.0f} steps; at most {MAX_STEPS:,} are run")
        if abs(steps - round(steps)) > 1e-9 * steps:
            raise ValueError(f"horizon is {steps:.6g} steps; it must be a whole number")

    @property
    def n_steps(self) -> int:
        return round(self.horizon_days * SECONDS_PER_DAY / self.step_seconds)


@dataclass(frozen=True)
class BacktestReport:
    """Everything a run produced; ``to_dict``/``to_json`` for the CLI and files."""

    config: BacktestConfig
    s0: float
    n_paths: int
    n_steps: int
    results: tuple[PolicyResult, ...]
    notes: tuple[str, ...] = ()
    book_value: float = math.nan  # the book's mean value at the start, USD (< 0 when short)

    def result(self, label: str) -> PolicyResult:
        for r in self.results:
            if r.label == label:
                return r
        raise KeyError(f"no result labelled {label!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": asdict(self.config),
            "s0": self.s0,
            "n_paths": self.n_paths,
            "n_steps": self.n_steps,
            "book_value": self.book_value,
            "notes": list(self.notes),
            "results": [r.to_dict() for r in self.results],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)


def _funding_rates(config: BacktestConfig, epoch0: float | None) -> Array:
    """The 8-hour funding rate in force at each step's start, shape ``(n_steps,)``."""
    c = config.costs
    if c.funding_file is None:
        return np.full(config.n_steps, c.funding_rate_8h)
    if epoch0 is None and c.funding_start is None:
        raise ValueError("a funding_file on simulated paths needs costs.funding_start")
    start = epoch0 if epoch0 is not None else epoch_seconds(str(c.funding_start))
    series = load_funding(c.funding_file)
    return series.rate_at(start + config.step_seconds * np.arange(config.n_steps))


@dataclass(frozen=True)
class Piece:
    """What one piece of a run produced: paths ``first … first + n − 1`` hedged by the
    policies at ``which`` (indices into ``config.policies``), with what the run's report
    takes from its first chunk (``s0``, ``notes``) and the sum of the book's start values."""

    first: int
    which: tuple[int, ...]
    outcomes: tuple[PathOutcome, ...]
    warnings: tuple[frozenset[str], ...]
    value_sum: float
    s0: float
    notes: tuple[str, ...]


def run_piece(config: BacktestConfig, first: int, count: int, which: tuple[int, ...]) -> Piece:
    """Paths ``first … first + count − 1`` of ``config`` (``first`` a multiple of
    :data:`bot.backtest.paths.PATH_BLOCK`) hedged by the policies at ``which``.

    Path blocks are seeded by their index and the policies never see one another, so any cut
    of a run into pieces, by paths and by policy, gives the numbers of the whole run: the
    unit of work a cluster (:mod:`bot.backtest.cluster`) spreads over its workers.
    """
    n_steps = config.n_steps
    gen = paths.generate(
        config.model, config.seed, n_steps, config.step_seconds, count, first_path=first
    )
    funding = _funding_rates(config, gen.epoch0)
    times = config.step_seconds * np.arange(n_steps + 1, dtype=np.float64)
    book = option_book(
        gen.prices,
        config.legs,
        config.step_seconds,
        config.model.sigma,
        config.rate,
        frozenset((0, n_steps)),
        with_gamma=reads_gamma(config.policies),
    )
    value_sum = float(book(0).value.sum())
    chunk = hedge_outcomes(
        gen.prices,
        times,
        book,
        tuple(config.policies[i] for i in which),
        lot=config.lot,
        costs=config.costs,
        funding_8h=funding,
        target_delta=config.target_delta,
        initial_hedge=config.initial_hedge,
        unwind_at_end=config.unwind_at_end,
        rate=config.rate,
    )
    return Piece(
        first=first,
        which=which,
        outcomes=tuple(outcome for outcome, _ in chunk),
        warnings=tuple(frozenset(said) for _, said in chunk),
        value_sum=value_sum,
        s0=float(gen.prices[0, 0]),
        notes=gen.notes,
    )


def chunks(config: BacktestConfig) -> list[tuple[int, int]]:
    """``(first path, count)`` of each chunk of ``config``, in order."""
    step = config.chunk_paths
    return [(f, min(step, config.n_paths - f)) for f in range(0, config.n_paths, step)]


def assemble(config: BacktestConfig, pieces: list[Piece]) -> BacktestReport:
    """The report of a run from pieces covering every (chunk, policy) once, in any order:
    parts are put back in path order, so the report equals the one-process run's."""
    n = len(config.policies)
    parts: list[dict[int, PathOutcome]] = [{} for _ in range(n)]
    warnings: list[set[str]] = [set() for _ in range(n)]
    values: dict[int, float] = {}
    for piece in pieces:
        values[piece.first] = piece.value_sum
        for i, outcome, said in zip(piece.which, piece.outcomes, piece.warnings, strict=True):
            if piece.first in parts[i]:
                raise ValueError(f"policy {i} ran twice on the chunk at path {piece.first}")
            parts[i][piece.first] = outcome
            warnings[i].update(said)
    firsts = [first for first, _ in chunks(config)]
    if any(sorted(p) != firsts for p in parts):
        raise ValueError("the pieces do not cover every chunk of every policy")
    head = min(pieces, key=lambda p: p.first)
    value_sum = 0.0
    for first in firsts:  # chunk order: the same float sum as the one-process run
        value_sum += values[first]
    ordered = [PathOutcome.concat([part[f] for f in firsts]) for part in parts]
    results = tuple(
        PolicyResult.of(run, ordered[i], tuple(sorted(warnings[i]))[:5])
        for i, run in enumerate(config.policies)
    )
    n_paths = ordered[0].trades.size
    return BacktestReport(
        config=config,
        s0=head.s0,
        n_paths=n_paths,
        n_steps=config.n_steps,
        results=results,
        notes=head.notes,
        book_value=value_sum / n_paths,
    )


def run_backtest(config: BacktestConfig, progress: Progress | None = None) -> BacktestReport:
    """Make the paths ``config`` describes and run every policy on them, chunk by chunk;
    seeded and reproducible whatever ``chunk_paths``. ``progress`` hears after each chunk."""
    everyone = tuple(range(len(config.policies)))
    pieces = []
    for first, count in chunks(config):
        pieces.append(run_piece(config, first, count, everyone))
        if progress is not None:
            progress(first + count, config.n_paths)
    return assemble(config, pieces)
