"""Checks a command makes before it opens the ledger, so that failing creates nothing.

SQLite creates its file on the first connection, so a command that only finds out that the
schema is missing would leave an empty database behind; the file is looked for first, and the
message names the exact command that makes it (``--paper`` and ``--config`` included).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from bot.cli.common import UsageError, redact_url

if TYPE_CHECKING:
    from bot.config import Settings


class NoLedger(Exception):
    """The ledger's database does not exist yet; the message says how to make it."""


def sqlite_file(url: str) -> Path | None:
    """The file a ``sqlite://`` URL names; None for memory or another database."""
    if not url.startswith("sqlite"):
        return None
    path = unquote(urlsplit(url).path)
    if not path or path in ("/", "/:memory:") or "mode=memory" in url:
        return None
    # sqlite:///relative.db → path "/relative.db"; sqlite:////abs.db → "//abs.db"
    return Path(path[1:]) if path.startswith("/") else Path(path)


def ledger_url(args: argparse.Namespace, settings: Settings) -> str:
    return settings.database.paper_url if getattr(args, "paper", False) else settings.database.url


def fix(args: argparse.Namespace, command: str) -> str:
    """The exact ``hedgebot`` command line that runs ``command`` on this command's ledger."""
    config = f" --config {args.config}" if getattr(args, "config", None) else ""
    paper = " --paper" if getattr(args, "paper", False) else ""
    return f"hedgebot{config} {command}{paper}"


def require_ledger(args: argparse.Namespace, settings: Settings, url: str | None = None) -> str:
    """The ledger URL, after checking that a SQLite ledger's file exists (raises NoLedger)."""
    url = url or ledger_url(args, settings)
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        raise NoLedger(
            f"no ledger at {redact_url(url)} ({path} does not exist): run "
            f"`{fix(args, 'db upgrade')}` to create it"
        )
    return url


def configured_currencies(args: argparse.Namespace, settings: Settings) -> list[str]:
    """``--currency`` if given (and configured), else every configured currency."""
    chosen = getattr(args, "currency", None)
    configured = list(settings.venue.currencies)
    if chosen is None:
        return configured
    if chosen not in configured:
        raise UsageError(
            f"--currency {chosen}: not a configured currency; choose one of "
            f"{', '.join(configured)} (venue.currencies)"
        )
    return [chosen]
