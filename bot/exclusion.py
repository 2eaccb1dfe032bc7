"""One hedgebot per venue account: what the book lease cannot see, the venue can.

The lease (:mod:`bot.lock`) is held in a ledger, so two ledgers pointed at one venue account
never meet it, and each would hedge the whole book: every hedge doubled. The venue shows them
to each other: an open order or a trade carrying a hedgebot label (:mod:`bot.labels`) that is
not this ledger's, and that this ledger never recorded, is another hedgebot's. At start and
before every cycle the watch reads the open orders and the trades since its last look; such an
order or trade halts trading with one line naming both ledgers, and nothing of the other's is
touched (cancelling it would fight the other process, not stop it). Once the other is
stopped, ``hedgebot db rebaseline`` accepts the position it left and moves the start of what
start-up looks at past its trades; ``hedgebot resume`` lifts the halt.

A trade stamped with this ledger's own id whose order the ledger lost (a restored backup, say)
is ours: it is recorded (through :mod:`bot.intake`), never halted on. That can only be an order
from before this process started: every order this process sends is recorded, durably, before
it leaves. One stamped with our id but made since is a copy of this ledger trading on the same
account (a copied database file carries its id): it halts like any other hedgebot.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import structlog

from bot.clock import Clock
from bot.domain import Fill, OrderState
from bot.intake import FillIntake
from bot.labels import Labels
from bot.store.ledger import Ledger
from bot.venues.base import Venue

log = structlog.get_logger("hedgebot.exclusion")

FOREIGN_HALT = "another hedgebot trades on this venue account"


class AccountWatch:
    """Looks at the venue account for another hedgebot's orders and trades."""

    def __init__(
        self,
        venue: Venue,
        ledger: Ledger,
        labels: Labels,
        intake: FillIntake,
        clock: Clock,
        lookback: timedelta,
    ) -> None:
        self._venue = venue
        self._ledger = ledger
        self.labels = labels
        self._intake = intake
        self._clock = clock
        self._lookback = lookback
        self._since: dict[str, datetime] = {}
        self.started = clock.now()  # our own orders made since are all on record

    def foreign(self, label: str) -> bool:
        """A hedgebot label that is neither stamped with our id nor recorded in our ledger (a
        label from before ledger ids that we recorded is ours)."""
        if not label or not self.labels.hedgebots(label) or self.labels.ours(label):
            return False
        return self._ledger.order(label) is None

    async def check(self, currency: str, fills: Sequence[Fill] | None = None) -> str | None:
        """None when only our orders and trades are seen; else the halt reason. ``fills``: the
        trades already read by the caller (start-up); otherwise those since the last look."""
        now = self._clock.now()
        if fills is None:
            since = self._since.get(currency, now) - self._lookback
            fills = await self._venue.fills(currency, since=since)
        orders = await self._venue.open_orders(currency)
        unknown = [f for f in fills if self.labels.ours(f.label) and not self._known(f)]
        lost = [f for f in unknown if f.timestamp < self.started]
        if lost:
            log.warning("lost_fills_recovered", labels=sorted({f.label for f in lost}))
            self._intake.ingest(lost)  # raises: halt
        seen = self.others(orders, fills)
        seen += [("copy's trade", f.label) for f in unknown if f.timestamp >= self.started]
        seen += [
            ("copy's order", o.label)
            for o in orders
            if self.labels.ours(o.label)
            and o.timestamp >= self.started
            and self._ledger.order(o.label) is None
        ]
        self._since[currency] = now
        if not seen:
            return None
        return self._describe(currency, seen)

    def others(self, orders: Sequence[OrderState], fills: Sequence[Fill]) -> list[tuple[str, str]]:
        """Another hedgebot's open orders and trades among these, as (kind, label); reads and
        records nothing (``hedgebot check`` asks this too)."""
        seen = [("order", o.label) for o in orders if self.foreign(o.label)]
        return seen + [("trade", f.label) for f in fills if self.foreign(f.label)]

    def _known(self, fill: Fill) -> bool:
        return self._ledger.order(fill.label) is not None

    def _describe(self, currency: str, seen: list[tuple[str, str]]) -> str:
        kind, label = seen[0]
        theirs = self.labels.ledger_of(label)
        if kind.startswith("copy"):
            other = "a copy of this ledger (same id; made since this process started)"
        else:
            other = f"ledger {theirs}" if theirs else "a ledger without an id in its labels"
        more = f" and {len(seen) - 1} more" if len(seen) > 1 else ""
        log.error("foreign_hedgebot", currency=currency, label=label, ledger=theirs, seen=len(seen))
        return (
            f"{FOREIGN_HALT}: {currency} {kind} {label}{more} is from {other}, not recorded in "
            f"this ledger {self.labels.ledger_id} (labels {self.labels.ours_prefix}…); two "
            "ledgers on one account double every hedge: stop one of them, then `hedgebot db "
            "rebaseline` and `hedgebot resume`"
        )


__all__ = ["FOREIGN_HALT", "AccountWatch"]
