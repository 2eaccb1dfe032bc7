"""Start-up reconciliation: agree with the venue before the first decision.

1. Fills the venue has for our labels and the ledger lacks are recorded (exactly once: fills
   are unique on the venue's trade id).
2. Orders we recorded but never saw finish are resolved by label; orders still working are
   re-adopted (cancelled, fills recorded). Open orders at the venue carrying our label prefix
   that the ledger never recorded, or wrote off, are cancelled and reported.
3. The hedge position at the venue must equal the one last seen plus our fills since; an
   unexplained difference beyond ``risk.position_tolerance`` stops start-up and says what
   differs.

When any step fails the daemon does not start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from bot.domain import DataError
from bot.execution import FILL_LOOKBACK
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
    foreign_orders_cancelled: tuple[str, ...] = ()
    venue_position: float | None = None
    expected_position: float | None = None


async def reconcile(ctx: CycleContext, currency: str) -> Reconciliation:
    venue = ctx.tracker.venue
    prefix = ctx.settings.venue.label_prefix + "-"
    hedge = ctx.settings.venue.facts[currency].perpetual
    try:
        added = 0
        last = ctx.ledger.last_fill_time(instrument=hedge)
        since = last - FILL_LOOKBACK if last is not None else None
        for fill in await venue.fills(currency, since=since):
            if fill.label.startswith(prefix) and ctx.ledger.record_fill(fill):
                added += 1
        unresolved = await ctx.executor.resolve_unknown(currency)
        foreign = await ctx.executor.cancel_strays(currency)
        held = sum(p.size for p in await venue.positions(currency) if p.instrument.name == hedge)
    except (VenueError, DataError) as exc:
        raise ReconciliationFailed(f"{currency}: venue did not answer: {exc}") from exc
    except Exception as exc:  # an order that cannot be settled: do not start on a guess
        raise ReconciliationFailed(f"{currency}: could not settle earlier orders: {exc!r}") from exc
    if unresolved:
        raise ReconciliationFailed(
            f"{currency}: orders of unknown outcome: {', '.join(unresolved)}; the venue has not "
            "confirmed them yet, try again in a minute"
        )
    expected = _expected_position(ctx, currency, hedge)
    if expected is not None and abs(held - expected) > ctx.settings.risk.position_tolerance:
        raise ReconciliationFailed(
            f"{hedge}: the venue holds {held:+,.2f} but the ledger expects {expected:+,.2f} "
            f"(last seen position plus our fills since), a difference of {held - expected:+,.2f} "
            f"beyond the tolerance of {ctx.settings.risk.position_tolerance:,.2f}. Was it traded "
            "outside hedgebot? Check, then start again (or raise risk.position_tolerance)."
        )
    log.info(
        "reconciled",
        currency=currency,
        fills_added=added,
        foreign_orders=foreign,
        venue_position=held,
        expected_position=expected,
    )
    return Reconciliation(currency, added, (), tuple(foreign), held, expected)


def _expected_position(ctx: CycleContext, currency: str, hedge: str) -> float | None:
    """The hedge position last read at the venue plus the fills of that cycle's orders.

    None on a first start, when there is nothing to compare with.
    """
    snap = ctx.ledger.last_greeks_snapshot(currency)
    if snap is None:
        return None
    labels = {o.label for o in ctx.ledger.orders(cycle_id=snap.cycle_id) if o.instrument == hedge}
    since = snap.hedge_position
    for fill in ctx.ledger.fills(instrument=hedge):
        if fill.label in labels:
            since += fill.side.sign * fill.amount
    return since
