"""The standard scenario, parameter sweeps and the cost-versus-hedge-error frontier.

A hedging policy trades risk for cost: hedging more often shrinks the hedge error and raises the
bill. Sweeping each policy's one knob (time-band interval, delta-band width, gamma-scaled risk
aversion) on the same paths traces one curve per policy; the policy whose curve lies lower and
further left is the better one. Once trading costs, band policies beat clock policies
(Whalley and Wilmott 1997; Zakamouline 2006); the standard scenario below shows it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bot.backtest.engine import (
    BacktestConfig,
    CostModel,
    OptionLeg,
    PolicyResult,
    PolicyRun,
)
from bot.backtest.paths import PathModel
from strategies.delta_band import DeltaBandParams
from strategies.gamma_scaled import GammaScaledParams
from strategies.time_band import TimeBandParams

STANDARD_COST = 0.0005  # 5 bp: Deribit's perpetual taker fee
TIME_BAND_INTERVALS = (900.0, 1800.0, 3600.0, 7200.0, 14_400.0, 28_800.0, 86_400.0)
DELTA_BANDS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3)
RISK_AVERSIONS = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5)


def standard_scenario(
    policies: Sequence[PolicyRun] = (),
    n_paths: int = 4000,
    seed: int = 7,
) -> BacktestConfig:
    """The reference backtest, for comparisons and tests.

    A short 7-day at-the-money BTC call of 1 BTC at S0 = 90,000 USD, GBM with sigma 0.6 (the
    option is priced at the same sigma, so only discreteness and costs make hedge error),
    zero drift, a 5 bp proportional cost (fee; no spread, no funding), policies asked every
    15 minutes, hedged with BTC-PERPETUAL ($10 lots) and unwound at expiry. Without
    ``policies`` it runs hourly time-band hedging.
    """
    runs = tuple(policies) or (PolicyRun("time_band", TimeBandParams(3600.0)),)
    return BacktestConfig(
        legs=(OptionLeg(option_type="call", size=-1.0, expiry_days=7.0),),
        policies=runs,
        model=PathModel(kind="gbm", s0=90_000.0, sigma=0.6),
        costs=CostModel(fee_rate=STANDARD_COST),
        horizon_days=7.0,
        step_seconds=900.0,
        n_paths=n_paths,
        seed=seed,
    )


def sweep_runs(
    intervals: Iterable[float] = TIME_BAND_INTERVALS,
    bands: Iterable[float] = DELTA_BANDS,
    risk_aversions: Iterable[float] = RISK_AVERSIONS,
    cost: float = STANDARD_COST,
    min_band: float = 0.0,
) -> tuple[PolicyRun, ...]:
    """One run per knob value of each policy; ``cost`` is the gamma-scaled policy's lambda."""
    runs = [PolicyRun("time_band", TimeBandParams(float(i))) for i in intervals]
    runs += [PolicyRun("delta_band", DeltaBandParams(float(b))) for b in bands]
    runs += [
        PolicyRun("gamma_scaled", GammaScaledParams(float(g), cost, min_band))
        for g in risk_aversions
    ]
    return tuple(runs)


def frontier(results: Iterable[PolicyResult]) -> dict[str, list[tuple[float, float]]]:
    """Per policy, its (hedge-error std, mean cost) points sorted by hedge error."""
    curves: dict[str, list[tuple[float, float]]] = {}
    for r in results:
        curves.setdefault(r.policy, []).append((r.hedge_error_std, r.cost))
    return {name: sorted(points) for name, points in curves.items()}


def dominated_cost(results: Iterable[PolicyResult], policy: str, max_error: float) -> float:
    """The lowest mean cost of ``policy`` among its runs with hedge-error std <= ``max_error``
    (``inf`` if none is that accurate): the price of matching a given risk with ``policy``."""
    costs = [r.cost for r in results if r.policy == policy and r.hedge_error_std <= max_error]
    return min(costs, default=float("inf"))


def knob_label(result: PolicyResult) -> str:
    """The swept knob's value, short: ``1h`` (time band), ``0.05`` (band), ``γ 0.001``
    (gamma-scaled risk aversion)."""
    p = result.params
    if result.policy == "time_band":
        return f"{p['interval_seconds'] / 3600:g}h"
    if result.policy == "delta_band":
        return f"{p['band']:g}"
    if result.policy == "gamma_scaled":
        return f"γ {p['risk_aversion']:g}"
    return result.label


def plot_frontier(results: Iterable[PolicyResult], path: str | Path, title: str = "") -> Path:
    """Write a PNG of mean cost against hedge-error std, one curve per policy."""
    out = Path(path)
    results = list(results)
    fig, ax = plt.subplots(figsize=(7.0, 4.5), dpi=120)
    try:
        for name, points in sorted(frontier(results).items()):
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", label=name)
        for r in results:
            ax.annotate(
                knob_label(r),
                (r.hedge_error_std, r.cost),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=6,
            )
        ax.set_xlabel("hedge error std (USD per path)")
        ax.set_ylabel("mean hedging cost (USD per path)")
        ax.set_title(title or "Hedging cost against hedge error")
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format="png")
    finally:
        plt.close(fig)
    return out


def results_table(results: Iterable[PolicyResult]) -> str:
    """A fixed-width text table of the headline numbers, one row per policy run (USD)."""
    header = ("policy", "hedged P&L", "std", "err std", "ES99", "cost", "fees", "funding", "trades")
    rows = [
        (
            r.label,
            *(f"{v:,.1f}" for v in (r.mean_pnl, r.std_pnl, r.hedge_error_std, r.es99, r.cost)),
            *(f"{v:,.1f}" for v in (r.fees, r.funding, r.trades)),
        )
        for r in results
    ]
    return _aligned(header, rows)


def rolling_table(results: Iterable[PolicyResult]) -> str:
    """Per policy across real straddles (one per path): hedged and unhedged P&L std, the mean
    hedged P&L, cost and trades (USD per straddle)."""
    header = ("policy", "hedged std", "unhedged std", "hedged mean", "cost", "trades")
    rows = [
        (
            r.label,
            *(f"{v:,.0f}" for v in (r.std_pnl, r.unhedged_std, r.mean_pnl, r.cost)),
            f"{r.trades:,.1f}",
        )
        for r in results
    ]
    return _aligned(header, rows)


def _aligned(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    lines = [header, tuple("-" * w for w in widths), *rows]
    return "\n".join(
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    )
