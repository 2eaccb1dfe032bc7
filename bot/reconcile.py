"""Start-up reconciliation: agree with the venue before the first decision.

Orders we recorded but never saw settled are resolved by label; fills the venue has and the
ledger lacks are recorded (exactly once: fills are unique on the venue's trade id). When this
fails the daemon does not start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from bot.venues.errors import VenueError

if TYPE_CHECKING:
    from bot.cycle import CycleContext

log = structlog.get_logger("hedgebot.reconcile")


class ReconciliationFailed(Exception):
    """The ledger and the venue could not be brought into agreement: do not trade."""


@dataclass(frozen=True)
class Reconciliation:
    currency: str
    fills_added: int
    unresolved_orders: tuple[str, ...]


async def reconcile(ctx: CycleContext, currency: str) -> Reconciliation:
    try:
        since = ctx.ledger.last_fill_time()
        added = 0
        for fill in await ctx.tracker.venue.fills(currency, since=since):
            if fill.label.startswith(
                ctx.settings.venue.label_prefix + "-"
            ) and ctx.ledger.record_fill(fill):
                added += 1
        unresolved = await ctx.executor.resolve_unknown(currency)
    except VenueError as exc:
        raise ReconciliationFailed(
            f"{currency}: venue did not answer reconciliation: {exc}"
        ) from exc
    log.info("reconciled", currency=currency, fills_added=added, unresolved_orders=unresolved)
    return Reconciliation(currency, added, tuple(unresolved))
