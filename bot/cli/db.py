"""``hedgebot db upgrade | current | rebaseline``: the ledger's schema (Alembic migrations), and
accepting the venue's hedge position as the new baseline after a position-check halt."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from bot.cli.common import EXIT_OK, redact_url, say
from bot.cli.ledger import ledger_url, require_ledger

if TYPE_CHECKING:
    from bot.config import Settings


def register(sub: Any) -> None:
    db = sub.add_parser(
        "db",
        help="database schema: upgrade (creates the ledger) or current; rebaseline after a check",
    )
    db.add_argument(
        "action",
        choices=["upgrade", "current", "rebaseline"],
        help="upgrade, current, or rebaseline: accept the venue's hedge positions as explained",
    )
    db.add_argument("--paper", action="store_true", help="the paper ledger")
    db.set_defaults(handler=cmd_db)


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    from bot.store.db import current_revision, head_revision, make_engine, upgrade

    url = ledger_url(args, settings)
    if args.action == "rebaseline":
        require_ledger(args, settings, url)
        import asyncio  # not at module top: `hedgebot --help` stays quick

        return asyncio.run(_rebaseline(args, settings))
    if args.action == "upgrade":
        before, after = upgrade(url)
        say(f"database {redact_url(url)}: {before or 'empty'} -> {after}", err=False)
        return EXIT_OK
    require_ledger(args, settings, url)
    engine = make_engine(url)
    try:
        current = current_revision(engine)
    finally:
        engine.dispose()
    say(
        f"database {redact_url(url)}: at {current or 'no schema'}, code needs {head_revision()}",
        err=False,
    )
    return EXIT_OK


async def _rebaseline(args: argparse.Namespace, settings: Settings) -> int:
    """Take the venue's hedge position as explained (after the operator checked it) and resume
    a book halted by the position check."""
    from bot.app import build_app
    from bot.audit import POSITION_HALT, rebaseline
    from bot.domain import TradingState

    app = build_app(settings, paper=args.paper, mode="oneshot")
    try:
        with app.lock():
            for currency in settings.venue.currencies:
                hedge = settings.venue.facts[currency].perpetual
                held = sum(
                    p.size
                    for p in await app.venue.positions(currency)
                    if p.instrument.name == hedge
                )
                rebaseline(app.ledger, hedge, held, app.clock.now())
                say(f"{hedge}: baseline {held:+,.2f}", err=False)
            state = app.ledger.get_trading_state()
            if state.state is TradingState.HALTED and POSITION_HALT in state.reason:
                app.ledger.set_trading_state(
                    TradingState.ACTIVE, "rebaselined by the operator", app.clock.now()
                )
                say("trading resumed (it was halted by the position check)", err=False)
    finally:
        await app.close()
    return EXIT_OK
