"""Fill intake: every fill hedgebot records passes here, in a cycle and at start-up alike.

A fill that is malformed, of another instrument or side than its order, or larger than its
order is refused unrecorded (:func:`bot.risk.check_fill`): nothing sized on it can be trusted.
A well-formed fill priced beyond its order's limit, charged far more than the fee schedule, or
taking its order's recorded fills past the order's amount, did happen at the venue: it is
recorded (no fill is lost), and then
:class:`~bot.risk.FillOutOfBounds` is raised, which halts trading wherever it surfaces. Only
fills recorded by this call are judged against the bounds, so a halt is raised once, not at
every later look-up of the same order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import structlog

from bot.domain import Fill, Instrument, OrderState, Side
from bot.risk import FillBounds, FillOutOfBounds, check_fill, fill_out_of_bounds
from bot.store.ledger import Ledger
from bot.store.records import OrderRow

log = structlog.get_logger("hedgebot.intake")


@dataclass(frozen=True)
class OrderTerms:
    """What a fill is judged against: its order as we recorded it (or the venue's word)."""

    instrument: str
    side: Side
    amount: float
    limit: float | None
    mid: float | None

    @classmethod
    def of(cls, order: OrderRow | OrderState) -> OrderTerms:
        if isinstance(order, OrderRow):
            return cls(order.instrument, order.side, order.amount, order.price, order.decision_mid)
        return cls(order.instrument_name, order.side, order.amount, order.price, None)


class FillIntake:
    """Checks, records and judges fills on one ledger."""

    def __init__(
        self, ledger: Ledger, instruments: Mapping[str, Instrument], bounds: FillBounds
    ) -> None:
        self._ledger = ledger
        self._instruments = instruments
        self.bounds = bounds

    def terms_of(self, fill: Fill) -> OrderTerms | None:
        """The recorded order ``fill`` belongs to (by label, else by venue id), if any."""
        row = self._ledger.order(fill.label) if fill.label else None
        if row is None and fill.venue_order_id:
            row = self._ledger.order_by_venue_id(fill.venue_order_id)
        return OrderTerms.of(row) if row is not None else None

    def ingest(
        self, fills: Iterable[Fill], order: OrderRow | OrderState | None = None
    ) -> tuple[Fill, ...]:
        """Record ``fills`` of ``order`` (None: each fill's own recorded order, when the ledger
        has one); returns those newly recorded. Raises as the module says."""
        given = OrderTerms.of(order) if order is not None else None
        recorded: list[Fill] = []
        problems: list[str] = []
        over: set[str] = set()  # orders already found overfilled in this call
        for fill in fills:
            terms = given or self.terms_of(fill)
            if terms is None:  # an order of ours the ledger lost: no terms to hold it to
                check_fill(fill, math.inf)
            else:
                check_fill(fill, terms.amount, terms.instrument, terms.side)
            fill = _without_bad_index(fill)
            if not self._ledger.record_fill(fill):
                continue
            recorded.append(fill)
            log.info(
                "fill_recorded",
                label=fill.label,
                trade_id=fill.trade_id,
                amount=fill.amount,
                price=fill.price,
                fee=fill.fee,
            )
            instrument = self._instruments.get(fill.instrument_name)
            problem = fill_out_of_bounds(
                fill,
                fill.side if terms is None else terms.side,
                None if terms is None else terms.limit,
                None if terms is None else terms.mid,
                inverse=True if instrument is None else instrument.inverse,
                bounds=self.bounds,
            )
            if problem is None and terms is not None:
                problem = self._overfilled(fill, terms, over)
            if problem is not None:
                log.error("fill_out_of_bounds", trade_id=fill.trade_id, problem=problem)
                problems.append(problem)
        if problems:
            raise FillOutOfBounds("; ".join(problems))
        return tuple(recorded)

    def _overfilled(self, fill: Fill, terms: OrderTerms, over: set[str]) -> str | None:
        """Each fill may be within its order and their sum not (the same trade reported under
        two ids, say): the sum recorded for the order is held to its amount too."""
        order_id = fill.venue_order_id
        if not order_id or order_id in over:
            return None
        total = self._ledger.filled_amount_of(order_id)
        if total <= terms.amount * (1 + 1e-9):
            return None
        over.add(order_id)
        return (
            f"the fills of order {fill.label or order_id} add up to {total:,.2f}, "
            f"more than its {terms.amount:,.2f}"
        )


def _without_bad_index(fill: Fill) -> Fill:
    """The index price a fill carries is only for reports: a bad one (NaN, zero, a string) is
    dropped with a warning, never a reason to leave the fill itself unrecorded."""
    index = fill.index_price
    if index is None:
        return fill
    usable = isinstance(index, int | float) and not isinstance(index, bool)
    if usable and math.isfinite(index) and index > 0:
        return fill
    log.warning("fill_index_price_dropped", trade_id=fill.trade_id, index_price=repr(index))
    return replace(fill, index_price=None)


__all__ = ["FillIntake", "OrderTerms"]
