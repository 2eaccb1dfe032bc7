"""Start-up reconciliation: agree with the venue before the first decision.

1. Fills the venue has for our labels and the ledger lacks are recorded (exactly once: fills
   are unique on the venue's trade id), read from before the oldest order whose fills may not
   all be on record, so a fill of an order acknowledged long ago is still found. They pass the
   same checks as a cycle's (:mod:`bot.intake`): an oversize or malformed fill, or one beyond
   its order's price or fee bounds, halts trading and stops start-up.
   Another hedgebot's open orders or trades on the same account (:mod:`bot.exclusion`) halt
   trading and stop start-up.
2. Orders we recorded but never saw finish are resolved by label and by venue id; when some
   stay unknown, start-up waits ``unknown_grace_seconds`` on its clock once and looks again
   (on lockstep simulated time nothing else would move the venue's clock); orders
   still working are re-adopted (cancelled, fills recorded). Open orders at the venue stamped
   with our ledger's id that the ledger never recorded, or wrote off, are cancelled and
   reported.
3. The hedge position at the venue must equal the recorded baseline plus our fills since
   (:mod:`bot.audit`); an unexplained difference beyond ``risk.position_tolerance`` stops
   start-up and says what differs.

When any step fails the daemon does not start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import structlog

from bot.audit import audit_position
from bot.domain import DataError
from bot.risk import FillExceedsOrder
from bot.store.accounting import LedgerAccounts
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
    labels = ctx.executor.labels
    hedge = ctx.settings.venue.facts[currency].perpetual
    try:
        since = _recovery_start(ctx, currency, hedge)
        fills = await venue.fills(currency, since=since)
        ours = [f for f in fills if labels.ours(f.label) or ctx.ledger.order(f.label) is not None]
        added = len(ctx.executor.intake.ingest(ours))  # the cycle's fill checks, halts and all
        if ctx.watch is not None:
            watched = _watched_from(ctx, hedge)
            other = await ctx.watch.check(currency, [f for f in fills if f.timestamp >= watched])
            if other is not None:
                ctx.risk.halt(other)
                raise ReconciliationFailed(f"{currency}: trading halted: {other}")
        unresolved = await ctx.executor.resolve_unknown(currency)
        if unresolved:  # wait out the grace once on our clock (a venue's own, in simulation)
            wait = ctx.executor.grace
            log.info("reconcile_waiting", currency=currency, orders=unresolved, seconds=wait)
            await ctx.clock.sleep(wait)
            unresolved = await ctx.executor.resolve_unknown(currency)
        foreign = await ctx.executor.cancel_strays(currency)
        held = sum(p.size for p in await venue.positions(currency) if p.instrument.name == hedge)
    except ReconciliationFailed:
        raise
    except FillExceedsOrder as exc:  # a fill no order of ours explains: halt, as a cycle does
        ctx.risk.halt(f"{currency} at start-up: {exc}")
        raise ReconciliationFailed(f"{currency}: {exc}: trading halted") from exc
    except (VenueError, DataError) as exc:
        raise ReconciliationFailed(f"{currency}: venue did not answer: {exc}") from exc
    except Exception as exc:  # an order that cannot be settled: do not start on a guess
        raise ReconciliationFailed(f"{currency}: could not settle earlier orders: {exc!r}") from exc
    if unresolved:
        raise ReconciliationFailed(
            f"{currency}: orders of unknown outcome: {', '.join(unresolved)}; the venue has not "
            f"confirmed them after {ctx.executor.grace:g} s, try again in a minute"
        )
    audit = audit_position(ctx.ledger, hedge, held, ctx.clock.now())
    tolerance = ctx.settings.risk.position_tolerance
    expected = None if audit.new_baseline else audit.expected_position
    if not audit.agrees(tolerance):
        raise ReconciliationFailed(
            f"{audit.describe(tolerance)}. Was it traded outside hedgebot, or is a fill missing? "
            "Check, then `hedgebot db rebaseline` (or raise risk.position_tolerance)."
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


def _watched_from(ctx: CycleContext, hedge: str) -> datetime:
    """From when another hedgebot's trades count at start: since this ledger began watching
    the hedge (its position baseline), or from now on a first start; earlier trades are the
    account's history (a ledger that was replaced, say), explained by the baseline."""
    since = baseline_watch_start(ctx, hedge)
    return since if since is not None else ctx.clock.now() - ctx.executor.fill_lookback


def baseline_watch_start(ctx: CycleContext, hedge: str) -> datetime | None:
    """The hedge's position baseline less the fill lookback (None without a baseline): trades
    before it were accepted by the baseline (``hedgebot db rebaseline``), never another
    hedgebot's to halt on."""
    base = LedgerAccounts(ctx.ledger.engine).baseline(hedge)
    return base.ts - ctx.executor.fill_lookback if base is not None else None


def _recovery_start(ctx: CycleContext, currency: str, hedge: str) -> datetime | None:
    """Where fill recovery starts reading: before the oldest order of ``currency`` whose fills
    may not all be on record, and before the last recorded fill; None (everything) on a
    ledger with neither."""
    accounts = LedgerAccounts(ctx.ledger.engine)
    marks = [
        t
        for t in (
            accounts.oldest_unaccounted_order(currency),
            ctx.ledger.last_fill_time(instrument=hedge),
        )
        if t is not None
    ]
    return min(marks) - ctx.executor.fill_lookback if marks else None
