"""A rolling replay: a new short at-the-money straddle every week over the whole recorded chain.

Each week, just after Deribit's Friday 08:00 UTC expiry, the replay sells the straddle of the
expiry nearest ``target_days`` ahead (the next weekly) and hands it to
:func:`bot.backtest.replay.run_replay`, so every straddle is hedged by every policy through the
same loop as ``--deribit-replay``. Each straddle is one "path": per policy, the standard
deviation across straddles of the hedged P&L and of the unhedged P&L (the book's value change)
say how much hedging removed, and the mean cost what it took.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from bot.backtest.chain import Chain
from bot.backtest.engine import CostModel, PathOutcome, PolicyResult, PolicyRun
from bot.backtest.history import epoch_seconds
from bot.backtest.replay import (
    CHAIN_FILE,
    PERP_FILE,
    ReplayConfig,
    ReplayReport,
    perp_marks,
    run_replay,
)
from bot.domain import DataError
from bot.units import SECONDS_PER_DAY, SECONDS_PER_HOUR

WEEK_SECONDS = 7 * SECONDS_PER_DAY
FRIDAY_EXPIRY_OFFSET = (
    SECONDS_PER_DAY + 8 * SECONDS_PER_HOUR
)  # epoch 0 was a Thursday; +1 d 8 h: Fri 08:00
RollingProgress = Callable[[int, int], None]
"""Called after each straddle with (straddles done, straddles in all)."""

__all__ = ["RollingConfig", "RollingReport", "roll_starts", "run_rolling"]


@dataclass(frozen=True)
class RollingConfig:
    """Which weeks to sell and how to hedge: ``start``/``end`` ISO UTC bound the sale times
    (``None``: the whole chain); ``every_days`` apart; ``target_days`` to the chosen expiry;
    ``size`` coin per leg (negative = short)."""

    policies: tuple[PolicyRun, ...]
    start: str | None = None
    end: str | None = None
    every_days: float = 7.0
    target_days: float = 7.0
    size: float = -1.0
    costs: CostModel = field(default_factory=CostModel)
    chain_file: str = str(CHAIN_FILE)
    perp_file: str | None = str(PERP_FILE)

    def __post_init__(self) -> None:
        if not self.policies:
            raise ValueError("a rolling replay needs at least one policy")
        if not (self.every_days > 0 and self.target_days > 1 and self.size != 0):
            raise ValueError("every_days must be positive, target_days above 1, size non-zero")


@dataclass(frozen=True)
class RollingReport:
    """Every straddle replayed, and per policy its result across straddles (one per path)."""

    config: RollingConfig
    straddles: tuple[ReplayReport, ...]
    results: tuple[PolicyResult, ...]
    skipped: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "straddles": [
                {
                    "start": r.start,
                    "end": r.end,
                    "instruments": list(r.instruments),
                    "snapshots": r.snapshots,
                    "premium_usd": r.premium_usd,
                    "unhedged_pnl": r.unhedged_pnl,
                    "settlement_price": r.settlement_price,
                }
                for r in self.straddles
            ],
            "results": [r.to_dict() for r in self.results],
            "skipped": list(self.skipped),
        }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def roll_starts(config: RollingConfig, chain: Chain) -> list[float]:
    """The sale times: Fridays 08:00 UTC (plus every ``every_days``) inside the chain and the
    requested window, leaving ``target_days`` of data after each."""
    first, last = chain.span()
    lo = first if config.start is None else max(first, epoch_seconds(config.start))
    hi = last - config.target_days * SECONDS_PER_DAY
    if config.end is not None:
        hi = min(hi, epoch_seconds(config.end))
    week = (lo - FRIDAY_EXPIRY_OFFSET) // WEEK_SECONDS
    t = FRIDAY_EXPIRY_OFFSET + week * WEEK_SECONDS
    while t < lo:
        t += config.every_days * SECONDS_PER_DAY
    starts = []
    while t <= hi:
        starts.append(t)
        t += config.every_days * SECONDS_PER_DAY
    return starts


def run_rolling(config: RollingConfig, progress: RollingProgress | None = None) -> RollingReport:
    """Sell and hedge one straddle per week; a week whose data cannot be replayed (a missing
    leg, too few snapshots) is skipped and said in ``skipped``."""
    chain = Chain(config.chain_file, preload=True)
    perp = perp_marks(config.perp_file)
    starts = roll_starts(config, chain)
    if not starts:
        first, last = chain.span()
        raise DataError(
            f"no week to replay between {config.start or _iso(first)} and "
            f"{config.end or _iso(last)} with {config.target_days:g} days of data after it"
        )
    base = ReplayConfig(
        start="",
        policies=config.policies,
        target_days=config.target_days,
        size=config.size,
        costs=config.costs,
        chain_file=config.chain_file,
        perp_file=config.perp_file,
    )
    reports: list[ReplayReport] = []
    skipped: list[str] = []
    for i, t in enumerate(starts):
        try:
            reports.append(run_replay(replace(base, start=_iso(t)), chain, perp))
        except DataError as exc:
            skipped.append(f"{_iso(t)[:10]}: {exc}")
        if progress is not None:
            progress(i + 1, len(starts))
    if not reports:
        raise DataError(f"every week was skipped: {skipped[0]}")
    results = tuple(
        PolicyResult.of(
            run,
            PathOutcome.concat([r.results[j].outcome for r in reports]),
            tuple(sorted({w for r in reports for w in r.results[j].warnings}))[:5],
        )
        for j, run in enumerate(config.policies)
    )
    return RollingReport(config, tuple(reports), results, tuple(skipped))
