"""The ``hedgebot`` command: run, rebalance, status, db (and the analysis commands).

Exit codes: 0 done, 1 failed, 2 bad settings, arguments or venue settings, 3 database schema
behind the code, 4 another process holds the book, 5 start-up reconciliation failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from bot.app import App, UnsupportedMode, build_app, database_url
from bot.cli import analysis, backtest, watch
from bot.cli.status import render_status, status_data
from bot.config import ConfigError, Settings, load_settings
from bot.cycle import Plan, rebalance_once
from bot.daemon import Daemon, install_signal_handlers
from bot.lock import BookLocked
from bot.logs import configure_logging
from bot.policy import schedule_seconds
from bot.reconcile import ReconciliationFailed, reconcile
from bot.sim.faults import WireFaultPlan
from bot.sim.serve import serve
from bot.store.db import SchemaOutOfDate, current_revision, head_revision, make_engine, upgrade
from bot.venues.deribit.adapter import UnsafeUrl
from bot.venues.errors import AuthError

EXIT_CONFIG, EXIT_SCHEMA, EXIT_LOCKED, EXIT_RECONCILE = 2, 3, 4, 5

Handler = Callable[[argparse.Namespace, Settings], int]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"hedgebot: invalid settings in {args.config}:", file=sys.stderr)
        for line in exc.lines:
            print(f"  {line}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(args.log_format or settings.logging.format, settings.logging.level)
    handler: Handler = args.handler
    try:
        return handler(args, settings)
    except SchemaOutOfDate as exc:
        print(f"hedgebot: {exc}", file=sys.stderr)
        return EXIT_SCHEMA
    except BookLocked as exc:
        print(f"hedgebot: {exc}; sending nothing", file=sys.stderr)
        return EXIT_LOCKED
    except ReconciliationFailed as exc:
        print(f"hedgebot: refusing to start: {exc}", file=sys.stderr)
        return EXIT_RECONCILE
    except UnsupportedMode as exc:
        print(f"hedgebot: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except (AuthError, UnsafeUrl) as exc:
        print(f"hedgebot: venue settings refused: {exc}", file=sys.stderr)
        return EXIT_CONFIG


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hedgebot", description=__doc__)
    p.add_argument("--config", default="config.yaml", help="settings file (default config.yaml)")
    p.add_argument("--log-format", choices=["auto", "console", "json"], default=None)
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="the daemon: hedge on the policy's schedule")
    run.add_argument("--paper", action="store_true", help="paper venue and paper database")
    run.add_argument("--duration", type=float, default=None, help="stop after N clock seconds")
    run.add_argument("--max-cycles", type=int, default=None, help="stop after N cycles")
    run.set_defaults(handler=cmd_run)

    reb = sub.add_parser("rebalance", help="one cycle by hand: show the plan, confirm, send")
    reb.add_argument("--paper", action="store_true")
    reb.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    reb.add_argument("--dry-run", action="store_true", help="print the plan, send nothing")
    reb.add_argument("--currency", default=None, help="one currency (default: all configured)")
    reb.set_defaults(handler=cmd_rebalance)

    st = sub.add_parser("status", help="book, greeks, last rebalances, trading state")
    st.add_argument("--paper", action="store_true")
    st.add_argument("--json", action="store_true")
    st.set_defaults(handler=cmd_status)

    db = sub.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade", "current"])
    db.add_argument("--paper", action="store_true")
    db.set_defaults(handler=cmd_db)
    sim = sub.add_parser("sim", help="a Deribit-compatible simulated venue on 127.0.0.1")
    sim.add_argument("--port", type=int, default=8642, help="TCP port (default 8642; 0: any)")
    sim.add_argument(
        "--db",
        default="sqlite:///hedgebot-sim.db",
        help="the venue's own account ('' keeps it in memory)",
    )
    sim.add_argument(
        "--faults",
        default=None,
        metavar="JSON",
        help='a fault plan, e.g. \'{"seed": 1, "accept_then_drop": [1], "drop_mode": "hold"}\'',
    )
    sim.set_defaults(handler=cmd_sim)
    backtest.add_parser(sub)
    analysis.add_parsers(sub)
    watch.add_parser(sub)
    return p


def cmd_sim(args: argparse.Namespace, settings: Settings) -> int:
    plan = None
    if args.faults:
        try:
            raw = json.loads(args.faults)
            if isinstance(raw.get("latency_ms"), list):
                raw["latency_ms"] = tuple(raw["latency_ms"])
            plan = WireFaultPlan(**raw)
        except (ValueError, TypeError, AttributeError) as exc:
            print(f"hedgebot sim: bad --faults: {exc}", file=sys.stderr)
            return EXIT_CONFIG
    asyncio.run(
        serve(settings, "127.0.0.1", args.port, database_url=args.db or None, fault_plan=plan)
    )
    return 0


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    url = database_url(settings, args.paper)
    if args.action == "upgrade":
        before, after = upgrade(url)
        print(f"database {url}: {before or 'empty'} -> {after}")
    else:
        print(
            f"database {url}: at {current_revision(make_engine(url)) or 'no schema'}, "
            f"code needs {head_revision()}"
        )
    return 0


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_run(args, settings))


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    app = build_app(settings, paper=args.paper)
    stop = asyncio.Event()
    install_signal_handlers(stop)
    try:
        with app.lock():
            daemon = Daemon(
                app.ctx,
                settings.venue.currencies,
                min(schedule_seconds(settings.policy_for(c)) for c in settings.venue.currencies),
                settings.daemon.heartbeat_seconds,
                settings.daemon.stop_grace_seconds,
                monitor=app.monitor,
            )
            until = None
            if args.duration is not None:
                until = app.clock.now() + timedelta(seconds=args.duration)
            stats = await daemon.run(stop, until=until, max_cycles=args.max_cycles)
            print(json.dumps({"cycles": stats.cycles, "by_status": stats.by_status}))
    finally:
        await app.close()
    return 0


def cmd_rebalance(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_rebalance(args, settings))


async def _rebalance(args: argparse.Namespace, settings: Settings) -> int:
    app = build_app(settings, paper=args.paper, mode="oneshot")
    currencies = (args.currency,) if args.currency else settings.venue.currencies
    failed = False
    try:
        with app.lock():
            for currency in currencies:
                if not args.dry_run:
                    await reconcile(app.ctx, currency)  # as the daemon does, before deciding
                confirm = None if (args.yes or args.dry_run) else _ask
                result = await rebalance_once(
                    app.ctx, currency, dry_run=args.dry_run, confirm=confirm
                )
                if result.plan is not None:
                    print(_format_plan(result.plan))
                print(f"{currency}: {result.status} ({result.reason})")
                if result.execution is not None:
                    e = result.execution
                    print(
                        f"  order {e.label}: {e.status.value}, filled {e.filled_amount:+,.0f}"
                        f" at {e.average_price or 0:,.2f}, fees {e.fees:.8f} {currency}"
                    )
                failed = failed or result.status in ("skipped", "failed")
    finally:
        await app.close()
    return 1 if failed else 0


async def _ask(plan: Plan) -> bool:
    print(_format_plan(plan))
    answer = await asyncio.to_thread(input, "Send this order? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def _format_plan(plan: Plan) -> str:
    side = "BUY" if plan.trade_amount > 0 else "SELL"
    return (
        f"{plan.currency} plan ({plan.target_mode.value} target):\n"
        f"  book delta     {plan.delta_before:+.5f} {plan.currency}\n"
        f"  target         {plan.target:+.5f} {plan.currency}\n"
        f"  order          {side} {abs(plan.trade_amount):,.0f} {plan.instrument}"
        f" at ~{plan.price:,.2f}\n"
        f"  delta after    {plan.expected_delta_after:+.5f} {plan.currency}\n"
        f"  est. cost      ${plan.est_cost_usd:,.2f}  ({plan.reason})"
    )


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_status(args, settings))


async def _status(args: argparse.Namespace, settings: Settings) -> int:
    app: App = build_app(settings, paper=args.paper, mode="status")
    try:
        data: dict[str, Any] = await status_data(app)
    finally:
        await app.close()
    print(json.dumps(data, indent=2, default=str) if args.json else render_status(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
