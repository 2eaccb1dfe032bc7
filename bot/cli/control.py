"""``hedgebot halt | reduce | resume [--currency C] [--reason TEXT]``: the trading switch.

The state is persisted in the ledger (scope ``global`` for all trading, or one currency), with
when it was set and by whom (``user@host``) and why; the risk gate reads it at every cycle, so a
running daemon obeys it at its next cycle. A currency trades under the stricter of its own state
and the global one. A command that would change nothing is refused with one line (exit 1).
"""

from __future__ import annotations

import argparse
import getpass
import socket
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from bot.cli.common import EXIT_FAILED, EXIT_OK, currency, say
from bot.cli.ledger import configured_currencies, fix, require_ledger

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.store.ledger import Ledger

COMMANDS = (
    ("halt", "halted", "stop sending orders (all currencies, or --currency)"),
    ("reduce", "reducing", "send only orders that shrink the hedge"),
    ("resume", "active", "trade normally again"),
)


def register(sub: Any) -> None:
    for name, state, help_text in COMMANDS:
        p = sub.add_parser(name, help=help_text, description=__doc__)
        p.add_argument("--paper", action="store_true", help="the paper ledger")
        p.add_argument(
            "--currency",
            type=currency,
            metavar="CUR",
            default=None,
            help="one currency (default: all trading)",
        )
        p.add_argument("--reason", default="", metavar="TEXT", help="why, kept in the ledger")
        p.set_defaults(handler=cmd_control, target_state=state)


def who() -> str:
    """``user@host`` of whoever runs the command."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def cmd_control(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import make_clock
    from bot.store.db import open_ledger
    from bot.store.ledger import GLOBAL_SCOPE

    if args.currency is not None:
        configured_currencies(args, settings)
    url = require_ledger(args, settings)
    ledger = open_ledger(url)
    try:
        scope = args.currency or GLOBAL_SCOPE
        refusal = _refusal(args, ledger, scope, settings.venue.currencies)
        if refusal:
            say(f"hedgebot {args.command}: {refusal}; nothing changed")
            return EXIT_FAILED
        reason = f"{args.reason or 'no reason given'} (by {who()})"
        now = make_clock(settings).now()
        ledger.set_trading_state(args.target_state, reason, now, scope=scope)
        if scope == GLOBAL_SCOPE and args.target_state == "active":
            for cur in settings.venue.currencies:  # resume without --currency resumes all
                if ledger.get_trading_state(cur).state != "active":
                    ledger.set_trading_state("active", reason, now, scope=cur)
        what = f"{args.currency} trading" if args.currency else "all trading"
        say(
            f"{what} is now {args.target_state} ({reason}, at {now:%Y-%m-%d %H:%M:%S} UTC); "
            "a running daemon obeys it at its next cycle",
            err=False,
        )
        return EXIT_OK
    finally:
        ledger.close()


def _refusal(
    args: argparse.Namespace, ledger: Ledger, scope: str, currencies: Iterable[str]
) -> str | None:
    """Why setting ``args.target_state`` on ``scope`` would change nothing, or None."""
    from bot.store.ledger import GLOBAL_SCOPE

    target = args.target_state
    overall = ledger.get_trading_state(GLOBAL_SCOPE)
    if scope == GLOBAL_SCOPE:
        if target == "active":
            stuck = [c for c in currencies if ledger.get_trading_state(c).state != "active"]
            if overall.state == "active" and not stuck:
                return "all trading is already active"
            return None
        if overall.state == target:
            return f"all trading is already {target} ({overall.reason})"
        return None
    if target == "active" and overall.state != "active":
        return (
            f"{scope} would stay {overall.state}: all trading is {overall.state} "
            f"({overall.reason}); `{fix(args, 'resume')}` resumes all"
        )
    own = ledger.get_trading_state(scope)
    if own.state == target:
        return f"{scope} trading is already {target} ({own.reason})"
    if target == "reducing" and overall.state == "halted":
        return f"all trading is halted ({overall.reason}), stricter than reducing {scope}"
    return None


def trading_states(ledger: Ledger, currencies: Iterable[str]) -> dict[str, Any]:
    """The global state and each currency's own and effective state, for ``status``."""
    from bot.domain import TradingState
    from bot.store.records import strictest

    overall = ledger.get_trading_state()
    by_currency = {}
    for cur in currencies:
        own = ledger.get_trading_state(cur)
        by_currency[cur] = {
            "state": strictest(TradingState(overall.state), TradingState(own.state)).value,
            "own_state": TradingState(own.state).value,
            "reason": own.reason,
            "updated_at": own.updated_at,
        }
    return {
        "state": TradingState(overall.state).value,
        "reason": overall.reason,
        "updated_at": overall.updated_at,
        "by_currency": by_currency,
    }
