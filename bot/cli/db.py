"""``hedgebot db upgrade | current``: the ledger's schema (Alembic migrations)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from bot.cli.common import EXIT_OK, redact_url, say
from bot.cli.ledger import ledger_url, require_ledger

if TYPE_CHECKING:
    from bot.config import Settings


def register(sub: Any) -> None:
    db = sub.add_parser("db", help="database schema: upgrade (creates the ledger) or current")
    db.add_argument("action", choices=["upgrade", "current"], help="what to do")
    db.add_argument("--paper", action="store_true", help="the paper ledger")
    db.set_defaults(handler=cmd_db)


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    from bot.store.db import current_revision, head_revision, make_engine, upgrade

    url = ledger_url(args, settings)
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
