"""The exchange port: what the tracker and executor need from any venue.

Paper trading, the ccxt adapter and test fakes all implement this one protocol, so no code
outside ``bot/venues`` knows which it talks to (no ``if paper:`` branches).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Protocol, runtime_checkable

from bot.domain import (
    Account,
    DataError,
    Fill,
    Instrument,
    Mark,
    OrderRequest,
    OrderState,
    Position,
    Quote,
)


@runtime_checkable
class Venue(Protocol):
    """An exchange account. Every method may raise a ``bot.venues.errors.VenueError``."""

    name: str

    async def instruments(self, currency: str) -> list[Instrument]:
        """Active instruments of ``currency`` (options, futures, perpetual)."""
        ...

    async def positions(self, currency: str) -> list[Position]:
        """Open positions; an empty list means the venue says the account is flat."""
        ...

    async def account(self, currency: str) -> Account: ...

    async def marks(self, currency: str, instruments: Collection[str] | None = None) -> list[Mark]:
        """Marks, IVs and forwards of ``instruments`` (every instrument of ``currency`` when
        None). A named instrument the venue has no usable mark for fails the read
        (``DataError``): a held instrument is never left out silently."""
        ...

    async def quote(self, instrument_name: str) -> Quote:
        """Top of book of one instrument."""
        ...

    async def place_order(self, request: OrderRequest) -> OrderState:
        """Send an order. A timeout raises ``OutcomeUnknown``: the order may exist."""
        ...

    async def cancel_order(self, venue_order_id: str) -> OrderState: ...

    async def order_by_label(self, currency: str, label: str) -> OrderState | None:
        """The most recent order carrying ``label``, or None when the venue has none."""
        ...

    async def order_by_id(self, currency: str, venue_order_id: str) -> OrderState | None:
        """The order with the venue's id (``private/get_order_state``), or None when the venue
        says it has none. Unlike a label look-up it does not depend on the order being recent."""
        ...

    async def open_orders(self, currency: str) -> list[OrderState]: ...

    async def fills(self, currency: str, since: datetime | None = None) -> list[Fill]:
        """Our executions since ``since`` (inclusive), oldest first."""
        ...

    async def close(self) -> None: ...


def select_marks(
    currency: str, marks: list[Mark], instruments: Collection[str] | None
) -> list[Mark]:
    """The marks of ``instruments`` (all of ``marks`` when None), for venues that hold every
    mark at hand; a named instrument without one fails the read, as :meth:`Venue.marks` says."""
    if instruments is None:
        return marks
    wanted = set(instruments)
    out = [m for m in marks if m.instrument_name in wanted]
    missing = sorted(wanted - {m.instrument_name for m in out})
    if missing:
        raise DataError(f"marks of {currency}: no mark for {', '.join(missing)}")
    return out
