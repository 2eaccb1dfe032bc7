"""What a backtest measures per path, and the summary of one policy's run.

Accounting (USD, per path, present values at the start when a rate is set):

* ``option_pnl``: the book's value at the end minus at the start (payoff once expired);
* ``hedge_pnl``: the hedge's P&L, ``Σ delta_k · (S̃_{k+1} − S̃_k)`` on discounted prices
  ``S̃ = e^(−rt)·S`` (a self-financing hedge whose cash earns or pays the rate; plain
  ``delta · ΔS`` when the rate is 0, as for the perpetual);
* ``hedge_error = option_pnl + hedge_pnl`` is what discrete hedging failed to replicate;
* ``cost = fees + spread + funding`` and ``hedged_pnl = hedge_error − cost``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from strategies.registry import POLICIES, PolicyParams, make_params

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class CostModel:
    """Trading costs as fractions of the traded USD notional, and perpetual funding per 8 h:
    ``funding_rate_8h`` constant, or ``funding_file`` (Binance CSV) read from ``funding_start``
    (ISO UTC; a replay uses its own dates)."""

    fee_rate: float = 0.0005
    half_spread: float = 0.0
    funding_rate_8h: float = 0.0
    funding_file: str | None = None
    funding_start: str | None = None

    def __post_init__(self) -> None:
        if not (0 <= self.fee_rate < 0.1 and 0 <= self.half_spread < 0.1):
            raise ValueError("fee_rate and half_spread must be fractions in [0, 0.1)")
        if not math.isfinite(self.funding_rate_8h):
            raise ValueError("funding_rate_8h must be finite")


@dataclass(frozen=True)
class PolicyRun:
    """One policy and parameter set to backtest; ``label`` names it in reports."""

    policy: str
    params: PolicyParams
    label: str = ""

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"unknown policy {self.policy!r}; known: {sorted(POLICIES)}")
        if not self.label:
            values = ",".join(f"{k}={v}" for k, v in asdict(self.params).items())
            object.__setattr__(self, "label", f"{self.policy}({values})")

    @staticmethod
    def make(policy: str, **values: Any) -> PolicyRun:
        """``PolicyRun.make("delta_band", band=0.05)``: params built by the policy registry."""
        return PolicyRun(policy, make_params(policy, values))


@dataclass(frozen=True)
class PathOutcome:
    """Per-path results of one policy, USD (``trades`` a count)."""

    option_pnl: Array
    hedge_pnl: Array
    fees: Array
    spread: Array
    funding: Array
    turnover: Array
    trades: npt.NDArray[np.int64]

    @staticmethod
    def concat(parts: Sequence[PathOutcome]) -> PathOutcome:
        """The outcomes of consecutive chunks of paths as one."""
        if len(parts) == 1:
            return parts[0]
        names = [f.name for f in fields(PathOutcome)]
        return PathOutcome(**{n: np.concatenate([getattr(p, n) for p in parts]) for n in names})

    @property
    def hedge_error(self) -> Array:
        return self.option_pnl + self.hedge_pnl

    @property
    def cost(self) -> Array:
        return self.fees + self.spread + self.funding

    @property
    def hedged_pnl(self) -> Array:
        return self.hedge_error - self.cost


def expected_shortfall(pnl: Array, level: float) -> float:
    """Mean loss (positive USD) over the worst ``1 − level`` share of outcomes."""
    n_tail = max(1, math.ceil(round((1.0 - level) * pnl.size, 9)))
    return float(-np.partition(pnl, n_tail - 1)[:n_tail].mean())


@dataclass(frozen=True)
class PolicyResult:
    """Summary of one policy run: means per path, stds across paths, USD."""

    label: str
    policy: str
    params: dict[str, Any]
    mean_pnl: float
    std_pnl: float
    hedge_error_mean: float
    hedge_error_std: float
    es95: float
    es99: float
    cost: float
    fees: float
    spread: float
    funding: float
    trades: float
    turnover_usd: float
    unhedged_std: float
    warnings: tuple[str, ...]
    outcome: PathOutcome = field(repr=False, compare=False)

    @staticmethod
    def of(run: PolicyRun, out: PathOutcome, warnings: tuple[str, ...]) -> PolicyResult:
        err = out.hedge_error
        return PolicyResult(
            label=run.label,
            policy=run.policy,
            params=asdict(run.params),
            mean_pnl=float(out.hedged_pnl.mean()),
            std_pnl=float(out.hedged_pnl.std()),
            hedge_error_mean=float(err.mean()),
            hedge_error_std=float(err.std()),
            es95=expected_shortfall(err, 0.95),
            es99=expected_shortfall(err, 0.99),
            cost=float(out.cost.mean()),
            fees=float(out.fees.mean()),
            spread=float(out.spread.mean()),
            funding=float(out.funding.mean()),
            trades=float(out.trades.mean()),
            turnover_usd=float(out.turnover.mean()),
            unhedged_std=float(out.option_pnl.std()),
            warnings=warnings,
            outcome=out,
        )

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "outcome"}
        d["warnings"] = list(self.warnings)
        return d
