"""``hedgebot run`` (the daemon) and ``hedgebot rebalance`` (one cycle by hand, confirmed)."""

from __future__ import annotations

import argparse
import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from bot.cli.common import (
    EXIT_DECLINED,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    currency,
    positive_float,
    positive_int,
    say,
)
from bot.cli.ledger import configured_currencies, require_ledger

if TYPE_CHECKING:
    from bot.cli.prompt import Prompt
    from bot.clock import Clock
    from bot.config import Settings
    from bot.cycle import CycleResult, Plan


def register(sub: Any) -> None:
    run = sub.add_parser("run", help="the daemon: hedge on the policy's schedule")
    run.add_argument("--paper", action="store_true", help="paper venue and paper ledger")
    run.add_argument(
        "--duration",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help="stop after N clock seconds",
    )
    run.add_argument(
        "--max-cycles", type=positive_int, default=None, metavar="N", help="stop after N cycles"
    )
    run.set_defaults(handler=cmd_run)

    reb = sub.add_parser(
        "rebalance",
        help="one cycle by hand: show the plan, confirm, send",
        description="One cycle by hand. The prompt answers no on Ctrl-D (exit 6) and stops on "
        "Ctrl-C (exit 130); either way nothing is sent.",
    )
    reb.add_argument("--paper", action="store_true", help="paper venue and paper ledger")
    reb.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    reb.add_argument("--dry-run", action="store_true", help="print the plan, send nothing")
    reb.add_argument(
        "--currency",
        type=currency,
        metavar="CUR",
        default=None,
        help="one currency (default: all configured)",
    )
    reb.set_defaults(handler=cmd_rebalance)


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    require_ledger(args, settings)
    import asyncio  # not at module top: `hedgebot --help` stays quick

    return asyncio.run(
        run_daemon(settings, paper=args.paper, duration=args.duration, max_cycles=args.max_cycles)
    )


async def run_daemon(
    settings: Settings,
    *,
    paper: bool = False,
    duration: float | None = None,
    max_cycles: int | None = None,
    lease_clock: Clock | None = None,
) -> int:
    """The daemon until ``duration`` clock seconds or ``max_cycles`` pass, or a signal stops
    it; ``lease_clock`` as in :func:`bot.app.build_app` (default the wall)."""
    from bot.app import build_app, build_events
    from bot.daemon import Daemon, install_signal_handlers
    from bot.policy import schedule_seconds
    from bot.sentry import Sentry
    from bot.store.identity import LedgerFile

    app = build_app(settings, paper=paper, lease_clock=lease_clock)
    import asyncio  # not at module top: `hedgebot --help` stays quick

    stop = asyncio.Event()
    install_signal_handlers(stop)
    try:
        with app.lock() as lease:
            sentry = Sentry(
                app.ctx,
                settings.venue.currencies,
                lease=lease,
                ledger_file=LedgerFile(app.ledger.engine),
                cancel_on_stop=settings.daemon.cancel_on_stop,
            )
            daemon = Daemon(
                app.ctx,
                settings.venue.currencies,
                min(schedule_seconds(settings.policy_for(c)) for c in settings.venue.currencies),
                settings.daemon.heartbeat_seconds,
                settings.daemon.stop_grace_seconds,
                sentry=sentry,
                monitor=app.monitor,
                events=build_events(app),
            )
            until = None
            if duration is not None:
                until = app.clock.now() + timedelta(seconds=duration)
            stats = await daemon.run(stop, until=until, max_cycles=max_cycles)
            print(json.dumps({"cycles": stats.cycles, "by_status": stats.by_status}))
    finally:
        await app.close()
    if stats.halted is not None:
        say(f"the daemon stopped itself: {stats.halted}")
        return EXIT_FAILED
    return EXIT_OK


def cmd_rebalance(args: argparse.Namespace, settings: Settings) -> int:
    currencies = configured_currencies(args, settings)
    require_ledger(args, settings)
    import asyncio  # not at module top: `hedgebot --help` stays quick

    return asyncio.run(_rebalance(args, settings, currencies))


async def _rebalance(args: argparse.Namespace, settings: Settings, currencies: list[str]) -> int:
    from bot.app import build_app
    from bot.cli.prompt import Prompt
    from bot.cycle import rebalance_once
    from bot.domain import RebalanceStatus
    from bot.reconcile import reconcile

    app = build_app(settings, paper=args.paper, mode="oneshot")
    prompt = Prompt(format_plan)
    code = EXIT_OK
    try:
        with app.lock(tuple(currencies)):
            for cur in currencies:
                if not args.dry_run:
                    await reconcile(app.ctx, cur)  # as the daemon does, before deciding
                confirm = None if (args.yes or args.dry_run) else prompt
                result = await rebalance_once(app.ctx, cur, dry_run=args.dry_run, confirm=confirm)
                if result.plan is not None and not prompt.showed(result.plan):
                    print(format_plan(result.plan))
                print(outcome(result, prompt))
                if prompt.interrupted:
                    return EXIT_INTERRUPTED
                if prompt.declined(result.plan):
                    code = max(code, EXIT_DECLINED)
                elif result.status in (RebalanceStatus.SKIPPED, RebalanceStatus.FAILED):
                    code = EXIT_FAILED if code == EXIT_OK else code
    finally:
        await app.close()
    return code


def outcome(result: CycleResult, prompt: Prompt) -> str:
    """One line per currency; a declined or interrupted prompt says "nothing sent" once."""
    cur = result.currency
    if prompt.interrupted and prompt.showed(result.plan):
        return f"{cur}: interrupted at the prompt: nothing sent"
    if prompt.declined(result.plan):
        return f"{cur}: declined at the prompt: nothing sent"
    line = f"{cur}: {result.status} ({result.reason})"
    e = result.execution
    if e is not None:
        line += (
            f"\n  order {e.label}: {e.status.value}, filled {e.filled_amount:+,.0f}"
            f" at {e.average_price or 0:,.2f}, fees {e.fees:.8f} {cur}"
        )
    return line


def format_plan(plan: Plan) -> str:
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
