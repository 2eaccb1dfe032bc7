"""``hedgebot backtest``: the daemon's policies over many paths, or over real Deribit books.

Without ``--policy`` it sweeps every policy's knob on the same paths and prints (and with
``--plot`` draws) the cost-versus-hedge-error frontier; ``--json`` prints the results for scripts.
``--deribit-replay START`` hedges one real straddle; ``--deribit-rolling`` sells one every week
over the whole recorded chain.

A textbook case (Hull, Options, Futures and Other Derivatives, "performance of delta hedging"):
  hedgebot backtest --s0 49 --sigma 0.2 --mu 0.13 --rate 0.05 --days 140 --step-seconds 604800 \\
    --leg call:-100000:140:strike=50 --continuous --fee 0 --policy time_band:interval_seconds=604800
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from bot.backtest.engine import CostModel, OptionLeg, PolicyRun  # annotations only
    from bot.config import Settings

PROG = "hedgebot backtest"
MODELS = ("gbm", "merton", "heston", "bootstrap", "replay")


class BadInput(ValueError):
    """A user mistake on the command line: one line, exit 2."""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "backtest",
        help="policies over simulated or historical paths, or real Deribit books",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", default="gbm", choices=MODELS, help="price paths (default gbm)")
    p.add_argument("--history", help="prices CSV for bootstrap/replay (shared/data/prices/…)")
    p.add_argument("--start", help="ISO UTC start of a history replay or of --deribit-rolling")
    p.add_argument("--end", help="with --deribit-rolling: ISO UTC of the last sale")
    p.add_argument("--paths", type=int, default=2000, help="number of paths (default 2000)")
    p.add_argument(
        "--chunk-paths",
        type=int,
        default=10_000,
        help="paths simulated at once, a multiple of 1000: bounds memory (default 10000)",
    )
    p.add_argument("--days", type=float, default=7.0, help="horizon in days (default 7)")
    p.add_argument("--step-seconds", type=float, default=900.0, help="decision step (900)")
    p.add_argument("--seed", type=int, default=7, help="random seed, >= 0 (default 7)")
    p.add_argument("--s0", type=float, default=90_000.0, help="start price (simulated paths)")
    p.add_argument("--sigma", type=float, default=0.6, help="volatility of paths and options")
    p.add_argument("--mu", type=float, default=0.0, help="real-world drift, annual (default 0)")
    p.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="annual rate: Black-Scholes on spot, hedge account financed at it, P&L as present"
        " values (default 0; for the perpetual keep 0 and use --funding)",
    )
    p.add_argument(
        "--leg",
        action="append",
        default=[],
        metavar="TYPE:SIZE:DAYS[:MONEYNESS|strike=K]",
        help="an option leg, size < 0 short, > 0 long, e.g. call:-1:7 or put:2:30:strike=80000"
        " (default: short 1 ATM call over the horizon); repeatable",
    )
    p.add_argument(
        "--continuous",
        action="store_true",
        help="hedge in the underlying in any size (no $10 perpetual lots): textbook cases",
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
    p.add_argument(
        "--deribit-rolling",
        action="store_true",
        help="sell a short ATM straddle every Friday over the recorded chain (or --start/--end)"
        " and hedge each with each policy",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the sweep on this Dask scheduler, e.g. tcp://10.0.0.5:8786 (needs the"
        " 'cluster' extra); same numbers as a local run for the same seed (default: here)",
    )
    p.add_argument(
        "--scheduler-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="with --scheduler: how long to try to reach it (default 10)",
    )
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
            raise BadInput(f"--policy {spec}: parameter {item!r} is not key=value")
        values[key.strip()] = _number(raw.strip())
    try:
        return PolicyRun.make(name, **values)
    except TypeError as exc:
        raise BadInput(f"--policy {spec}: {exc}") from None


def parse_leg(spec: str) -> OptionLeg:
    """``TYPE:SIZE:DAYS[:MONEYNESS|strike=K]``."""
    from bot.backtest.engine import OptionLeg

    parts = spec.split(":")
    if len(parts) not in (3, 4) or parts[0] not in ("call", "put"):
        raise BadInput(f"--leg {spec}: not TYPE:SIZE:DAYS[:MONEYNESS|strike=K], TYPE call or put")
    kind: Literal["call", "put"] = "call" if parts[0] == "call" else "put"
    strike, moneyness = None, 1.0
    try:
        size, days = float(parts[1]), float(parts[2])
        if len(parts) == 4:
            key, sep, raw = parts[3].partition("=")
            if sep and key.strip().lower() in ("strike", "k"):
                strike = float(raw)
            elif not sep:
                moneyness = float(parts[3])
            else:
                raise BadInput(f"--leg {spec}: the fourth part is a moneyness or strike=K")
        return OptionLeg(kind, size, days, strike=strike, moneyness=moneyness)
    except BadInput:
        raise
    except ValueError as exc:
        raise BadInput(f"--leg {spec}: {exc}") from None


def _number(raw: str) -> Any:
    try:
        return float(raw)
    except ValueError:
        return raw


def _iso(flag: str, value: str) -> str:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise BadInput(f"{flag} {value!r} is not an ISO UTC time, e.g. 2026-01-05T08:00") from None
    return value


def _existing_file(flag: str, value: str) -> str:
    if not Path(value).is_file():
        raise BadInput(f"{flag} {value}: no such file")
    return value


def _costs(args: argparse.Namespace) -> CostModel:
    from bot.backtest.engine import CostModel

    funding_file, rate = None, 0.0
    if Path(args.funding).suffix == ".csv":
        funding_file = _existing_file("--funding", args.funding)
        if args.start is None and not (args.deribit_replay or args.deribit_rolling):
            raise BadInput("--funding FILE.csv on simulated paths needs --start (ISO UTC)")
    else:
        try:
            rate = float(args.funding)
        except ValueError:
            raise BadInput(
                f"--funding {args.funding!r} is neither a rate per 8 h nor a funding CSV"
            ) from None
    try:
        return CostModel(
            fee_rate=args.fee,
            half_spread=args.half_spread,
            funding_rate_8h=rate,
            funding_file=funding_file,
            funding_start=args.start,
        )
    except ValueError as exc:
        raise BadInput(f"--fee/--half-spread/--funding: {exc}") from None


def check_args(args: argparse.Namespace) -> None:
    """Every mistake that can be seen before any work, as :class:`BadInput`."""
    for flag in ("days", "step_seconds", "s0", "sigma", "mu", "rate", "fee", "half_spread"):
        value = getattr(args, flag)
        if not math.isfinite(value):
            raise BadInput(f"--{flag.replace('_', '-')} must be a finite number, got {value}")
    if args.paths < 1:
        raise BadInput(f"--paths must be at least 1, got {args.paths}")
    if args.chunk_paths < 1000 or args.chunk_paths % 1000:
        raise BadInput(f"--chunk-paths must be a positive multiple of 1000, got {args.chunk_paths}")
    if args.seed < 0:
        raise BadInput(f"--seed must be 0 or more, got {args.seed}")
    for flag in ("days", "step_seconds", "s0", "sigma"):
        if getattr(args, flag) <= 0:
            raise BadInput(
                f"--{flag.replace('_', '-')} must be positive, got {getattr(args, flag)}"
            )
    if not 1e-4 <= args.sigma <= 10:
        raise BadInput(f"--sigma is annual and decimal, 0.0001 to 10, got {args.sigma}")
    if args.deribit_replay and args.deribit_rolling:
        raise BadInput("--deribit-replay and --deribit-rolling are two different runs: pick one")
    if args.expiry and not args.deribit_replay:
        raise BadInput("--expiry only applies to --deribit-replay")
    if args.scheduler is not None and real_chain_run(args):
        raise BadInput("--scheduler runs simulated and history sweeps, not --deribit-* replays")
    if not (math.isfinite(args.scheduler_timeout) and args.scheduler_timeout > 0):
        raise BadInput(f"--scheduler-timeout must be positive, got {args.scheduler_timeout}")
    if args.end and not args.deribit_rolling:
        raise BadInput("--end only applies to --deribit-rolling")
    if args.deribit_replay:
        _iso("--deribit-replay", args.deribit_replay)
    for flag in ("start", "end"):
        if getattr(args, flag) is not None:
            _iso(f"--{flag}", getattr(args, flag))
    real_chain = args.deribit_replay or args.deribit_rolling
    if args.model in ("bootstrap", "replay") and not real_chain and not args.history:
        raise BadInput(f"--model {args.model} needs --history PRICES.csv")
    if args.history:
        _existing_file("--history", args.history)
    if args.plot and not Path(args.plot).resolve().parent.is_dir():
        raise BadInput(f"--plot {args.plot}: the directory does not exist")


def real_chain_run(args: argparse.Namespace) -> bool:
    return bool(args.deribit_replay or args.deribit_rolling)


@contextmanager
def progress(what: str, unit: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on a terminal (stderr), else a log line at every tenth of the work."""
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import Progress

        with Progress(console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task(what, total=None)

            def update(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            yield update
        return
    said = [-1]

    def log(done: int, total: int) -> None:
        tenth = done * 10 // max(total, 1)
        if tenth > said[0]:
            said[0] = tenth
            print(f"{PROG}: {what}: {done:,} of {total:,} {unit}", file=sys.stderr, flush=True)

    yield log


def cmd_backtest(args: argparse.Namespace, settings: Settings) -> int:
    from bot.domain import DataError

    cluster_error: type[Exception] = BadInput
    if args.scheduler is not None:
        from bot.backtest.cluster import ClusterError

        cluster_error = ClusterError

    try:
        check_args(args)
        policies = tuple(parse_policy(p, settings) for p in args.policy)
        legs = tuple(parse_leg(leg) for leg in args.leg)
        costs = _costs(args)
        if args.deribit_replay:
            return _deribit_replay(args, policies, costs)
        if args.deribit_rolling:
            return _deribit_rolling(args, policies, costs)
        return _simulated(args, policies, legs, costs)
    except (BadInput, DataError, cluster_error) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # a config the engine refuses (e.g. days not whole steps)
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2


def _runs(args: argparse.Namespace, policies: tuple[PolicyRun, ...]) -> tuple[PolicyRun, ...]:
    from bot.backtest.frontier import sweep_runs

    return policies or sweep_runs(cost=args.fee + args.half_spread)


def _deribit_replay(
    args: argparse.Namespace, policies: tuple[PolicyRun, ...], costs: CostModel
) -> int:
    import json

    from bot.backtest.frontier import results_table
    from bot.backtest.replay import ReplayConfig, run_replay

    replay = run_replay(
        ReplayConfig(
            start=args.deribit_replay,
            policies=_runs(args, policies),
            expiry=args.expiry,
            costs=costs,
        )
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


def _deribit_rolling(
    args: argparse.Namespace, policies: tuple[PolicyRun, ...], costs: CostModel
) -> int:
    import json

    from bot.backtest.frontier import plot_frontier, rolling_table
    from bot.backtest.rolling import RollingConfig, run_rolling

    config = RollingConfig(
        policies=_runs(args, policies), start=args.start, end=args.end, costs=costs
    )
    with progress("rolling replay", "straddles") as tick:
        report = run_rolling(config, progress=tick)
    if args.plot:
        plot_frontier(report.results, args.plot, title="Weekly short BTC straddles, 1 BTC a leg")
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, default=str))
        return 0
    first, last = report.straddles[0], report.straddles[-1]
    print(
        f"rolling replay: {len(report.straddles)} weekly short ATM BTC straddles (1 BTC a leg),"
        f" sold {first.start[:16]} to {last.start[:16]} UTC; per straddle, USD"
    )
    print(rolling_table(report.results))
    for line in report.skipped:
        print(f"skipped: {line}")
    if args.plot:
        print(f"frontier written to {args.plot}")
    return 0


def _simulated(
    args: argparse.Namespace,
    policies: tuple[PolicyRun, ...],
    legs: tuple[OptionLeg, ...],
    costs: CostModel,
) -> int:
    from bot.backtest.engine import (
        BTC_PERPETUAL_LOT,
        CONTINUOUS_LOT,
        BacktestConfig,
        OptionLeg,
        run_backtest,
    )
    from bot.backtest.frontier import plot_frontier, results_table
    from bot.backtest.paths import PathModel

    config = BacktestConfig(
        legs=legs or (OptionLeg(option_type="call", size=-1.0, expiry_days=args.days),),
        policies=_runs(args, policies),
        model=PathModel(
            kind=args.model,
            s0=args.s0,
            sigma=args.sigma,
            mu=args.mu,
            history=args.history,
            start=args.start,
        ),
        costs=costs,
        horizon_days=args.days,
        step_seconds=args.step_seconds,
        n_paths=1 if args.model == "replay" else args.paths,
        seed=args.seed,
        lot=CONTINUOUS_LOT if args.continuous else BTC_PERPETUAL_LOT,
        rate=args.rate,
        chunk_paths=args.chunk_paths,
    )
    with progress("backtest", "paths") as tick:
        if args.scheduler is None:
            report = run_backtest(config, progress=tick)
        else:
            from bot.backtest.cluster import run_on_cluster

            report = run_on_cluster(config, args.scheduler, tick, args.scheduler_timeout)
    if args.plot:
        plot_frontier(report.results, args.plot)
    if args.json:
        print(report.to_json())
        return 0
    print(
        f"backtest: {report.n_paths:,} {args.model} paths x {report.n_steps:,} steps of"
        f" {args.step_seconds:g} s; per path, USD"
        + (f", present values at {args.rate:g}" if args.rate else "")
    )
    print(f"book value at the start: ${report.book_value:,.2f} per path")
    print(results_table(report.results))
    for note in report.notes:
        print(f"note: {note}")
    if args.plot:
        print(f"frontier written to {args.plot}")
    return 0
