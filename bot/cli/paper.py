"""``hedgebot paper import-book``: copy a real account's option book, once, into a fresh paper
account that then trades on the venue's live public data (``--paper`` with ``venue.kind:
deribit``).

The real account is read with a read-only key (a key that may trade is refused: Deribit's
``trade:read_write`` scope); only its option positions are copied, at the venue's marks, with
the settings' starting equity (``market.equity``). The hedge starts flat: the first paper
rebalance hedges the copied book as a live one would. A paper account that already exists is
never overwritten.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: `hedgebot --help` imports nothing heavy
    from bot.clock import Clock
    from bot.config import Settings


class ImportRefused(Exception):
    """A book that cannot be imported, with the one line that says why."""


def register(sub: Any) -> None:
    p = sub.add_parser("paper", help="paper trading on a real venue's live data")
    actions = p.add_subparsers(dest="paper_action", required=True)
    imp = actions.add_parser(
        "import-book",
        help="copy a real account's options once into a fresh paper account (read-only key)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    imp.set_defaults(handler=cmd_import_book)


def cmd_import_book(args: argparse.Namespace, settings: Settings) -> int:
    try:
        import asyncio  # not at module top: `hedgebot --help` stays quick

        lines = asyncio.run(import_book(settings))
    except ImportRefused as exc:
        print(f"hedgebot paper import-book: {exc}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0


async def import_book(settings: Settings, clock: Clock | None = None) -> list[str]:
    """Read the real book, seed the paper account with it; the lines to print. ``clock``
    replaces the settings' clock (tests)."""
    from bot.app import live_paper_venue, make_clock
    from bot.domain import DataError
    from bot.store.db import open_ledger
    from bot.store.paper import SqlPaperStore
    from bot.venues.deribit.adapter import DeribitVenue
    from bot.venues.errors import VenueError

    if settings.venue.kind != "deribit":
        raise ImportRefused("venue.kind must be deribit: the book is copied from a real account")
    url = settings.database.paper_url
    ledger = open_ledger(url)  # a paper database behind the code is refused (exit 3)
    exists = not SqlPaperStore(ledger.engine).load().empty
    ledger.close()
    if exists:
        raise ImportRefused(
            f"the paper account in {url} already exists; a book is imported once, into a "
            "fresh paper database (set database.paper_url to a new file)"
        )
    import numpy as np

    clock = clock or make_clock(settings)
    real = DeribitVenue(
        settings.venue,
        clock,
        rng=np.random.default_rng(settings.market.seed),
        measure_clock=settings.market.speed == 1,
    )
    imported: dict[str, list[tuple[str, float]]] = {}
    lines = []
    try:
        scope = (await real.key_scope()).split()
        if "trade:read_write" in scope:
            raise ImportRefused(
                "this key may trade (trade:read_write): import with a read-only key "
                "(trade:read), the paper account never needs more"
            )
        now = clock.now()
        for currency in settings.venue.currencies:
            legs = []
            for p in await real.positions(currency):
                if not p.instrument.is_option or p.size == 0:
                    continue
                if p.instrument.expiry is not None and p.instrument.expiry <= now:
                    lines.append(f"{currency}: {p.instrument.name} has expired: not copied")
                    continue
                legs.append((p.instrument.name, p.size))
            imported[currency] = legs
    except (VenueError, DataError) as exc:
        raise ImportRefused(f"cannot read the real account: {type(exc).__name__}: {exc}") from exc
    finally:
        await real.close()
    paper = live_paper_venue(settings, clock, url, imported=imported)
    try:
        for currency, legs in imported.items():
            held = await paper.positions(currency)  # the first read seeds the paper account
            lines.append(f"{currency}: {len(legs)} option positions copied into {url}")
            lines += [f"  {p.instrument.name:<28} {p.size:+,.4f}" for p in held]
    except (VenueError, DataError) as exc:
        raise ImportRefused(f"cannot seed the paper account: {type(exc).__name__}: {exc}") from exc
    finally:
        await paper.close()
    return lines
