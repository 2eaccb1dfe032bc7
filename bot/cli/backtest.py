"""``hedgebot backtest``: the daemon's policies over many paths, or over a real Deribit book.

Without ``--policy`` it sweeps every policy's knob on the same paths and prints (and with
``--plot`` draws) the cost-versus-hedge-error frontier; ``--json`` prints the results for scripts.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # the engine pulls numpy, scipy, pandas: imported only when a backtest runs
    from bot.backtest.engine import CostModel, OptionLeg, PolicyRun
    from bot.config import Settings


def register(sub: Any) -> None:
    p = sub.add_parser(
        "backtest",
        help="policies over simulated or historical paths, or a real Deribit book",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--model", default="gbm", choices=["gbm", "merton", "heston", "bootstrap", "replay"]
    )
    p.add_argument("--history", help="prices CSV for bootstrap/replay (shared/data/prices/…)")
    p.add_argument("--start", help="ISO UTC start of a history replay")
    p.add_argument("--paths", type=int, default=2000, help="number of paths (default 2000)")
    p.add_argument("--days", type=float, default=7.0, help="horizon in days (default 7)")
    p.add_argument("--step-seconds", type=float, default=900.0, help="decision step (900)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--s0", type=float, default=90_000.0, help="start price (simulated paths)")
    p.add_argument("--sigma", type=float, default=0.6, help="volatility of paths and options")
    p.add_argument(
        "--leg",
        action="append",
        default=[],
        metavar="TYPE:SIZE:DAYS[:MONEYNESS]",
        help="an option leg, e.g. call:-1:7 (default: short 1 ATM 7-day call); repeatable",
    )
    p.add_argument(
        "--policy",
        action="append",
        default=[],
        metavar="NAME[:k=v,…]",
        help="e.g. delta_band:band=0.05 or time_band:interval_seconds=3600 (default: sweep)",
    )
    p.add_argument("--fee", type=float, default=0.0005, help="proportional fee (0.0005)")
    p.add_argument("--half-spread", type=float, default=0.0, help="fraction of price")
    p.add_argument("--funding", default="0", help="rate per 8 h, or a funding CSV")
    p.add_argument(
        "--deribit-replay",
        metavar="START",
        help="replay a real Deribit ATM straddle from START (ISO UTC) instead",
    )
    p.add_argument("--expiry", help="with --deribit-replay: Deribit expiry code, e.g. 27FEB26")
    p.add_argument("--plot", help="write the frontier PNG here")
    p.add_argument("--json", action="store_true", help="print results as JSON")
    p.set_defaults(handler=cmd_backtest)


def parse_policy(spec: str, settings: Settings) -> PolicyRun:
    """``NAME[:k=v,…]``; parameters not given come from the settings' policy section."""
    from bot.backtest.engine import PolicyRun

    name, _, rest = spec.partition(":")
    name = name.strip()
    section = getattr(settings.policy, name, None)
    values: dict[str, Any] = section.model_dump() if section is not None else {}
    for item in filter(None, rest.split(",")):
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"policy parameter {item!r} is not key=value")
        values[key.strip()] = _number(raw.strip())
    return PolicyRun.make(name, **values)


def parse_leg(spec: str) -> OptionLeg:
    from bot.backtest.engine import OptionLeg

    parts = spec.split(":")
    if len(parts) not in (3, 4) or parts[0] not in ("call", "put"):
        raise ValueError(f"leg {spec!r} is not TYPE:SIZE:DAYS[:MONEYNESS] with TYPE call or put")
    moneyness = float(parts[3]) if len(parts) == 4 else 1.0
    kind: Literal["call", "put"] = "call" if parts[0] == "call" else "put"
    return OptionLeg(
        option_type=kind, size=float(parts[1]), expiry_days=float(parts[2]), moneyness=moneyness
    )


def _number(raw: str) -> Any:
    try:
        return float(raw)
    except ValueError:
        return raw


def _costs(args: argparse.Namespace) -> CostModel:
    from bot.backtest.engine import CostModel

    funding_file = None
    rate = 0.0
    if Path(args.funding).suffix == ".csv":
        funding_file = args.funding
    else:
        rate = float(args.funding)
    return CostModel(
        fee_rate=args.fee,
        half_spread=args.half_spread,
        funding_rate_8h=rate,
        funding_file=funding_file,
        funding_start=args.start,
    )


def cmd_backtest(args: argparse.Namespace, settings: Settings) -> int:
    from bot.backtest.engine import BacktestConfig, OptionLeg, run_backtest
    from bot.backtest.frontier import plot_frontier, results_table, sweep_runs
    from bot.backtest.paths import PathModel
    from bot.backtest.replay import ReplayConfig, run_replay

    try:
        policies = tuple(parse_policy(p, settings) for p in args.policy)
        legs = tuple(parse_leg(leg) for leg in args.leg) or (
            OptionLeg(option_type="call", size=-1.0, expiry_days=args.days),
        )
        costs = _costs(args)
    except (ValueError, TypeError) as exc:
        print(f"hedgebot backtest: {exc}")
        return 2
    runs = policies or sweep_runs(cost=args.fee + args.half_spread)
    if args.deribit_replay:
        replay = run_replay(
            ReplayConfig(start=args.deribit_replay, policies=runs, expiry=args.expiry, costs=costs)
        )
        if args.json:
            print(json.dumps(replay.to_dict(), indent=2, default=str))
            return 0
        print(
            f"replay of {', '.join(replay.instruments)} from {replay.start} to {replay.end} "
            f"({replay.snapshots} snapshots)"
        )
        print(f"premium ${replay.premium_usd:,.0f}; unhedged P&L ${replay.unhedged_pnl:,.0f}")
        print(results_table(replay.results))
        for note in replay.notes:
            print(f"note: {note}")
        return 0
    config = BacktestConfig(
        legs=legs,
        policies=runs,
        model=PathModel(
            kind=args.model, s0=args.s0, sigma=args.sigma, history=args.history, start=args.start
        ),
        costs=costs,
        horizon_days=args.days,
        step_seconds=args.step_seconds,
        n_paths=1 if args.model == "replay" else args.paths,
        seed=args.seed,
    )
    report = run_backtest(config)
    if args.plot:
        plot_frontier(report.results, args.plot)
    if args.json:
        print(report.to_json())
        return 0
    print(results_table(report.results))
    for note in report.notes:
        print(f"note: {note}")
    if args.plot:
        print(f"frontier written to {args.plot}")
    return 0
