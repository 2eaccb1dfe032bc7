"""What a paper venue persists so that a restart continues where it stopped.

The paper venue owns its own account (balances, positions, orders, trades) apart from the
ledger's record of what hedgebot did: restart recovery then reconciles the two exactly as it
would with a real exchange. The SQL implementation lives in ``bot/store/paper.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from bot.domain import Fill, OrderState


@dataclass(frozen=True)
class PaperPosition:
    instrument_name: str
    size: float  # Deribit units: coin for options, USD for inverse perps/futures
    average_price: float


@dataclass
class PaperSnapshot:
    """The whole paper account; empty on first start."""

    balances: dict[str, float] = field(default_factory=dict)  # currency -> coin balance
    positions: dict[str, PaperPosition] = field(default_factory=dict)
    orders: dict[str, OrderState] = field(default_factory=dict)  # venue_order_id -> state
    trades: list[Fill] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.balances or self.positions or self.orders or self.trades)


@dataclass(frozen=True)
class PaperChange:
    """One atomic change: upsert balances, positions and orders, append trades."""

    balances: dict[str, float] = field(default_factory=dict)
    positions: tuple[PaperPosition, ...] = ()
    orders: tuple[OrderState, ...] = ()
    trades: tuple[Fill, ...] = ()


@dataclass(frozen=True)
class SimTime:
    """A lockstep venue's time: where its market starts and where its clock stands."""

    start: datetime
    now: datetime


class PaperStateStore(Protocol):
    def load(self) -> PaperSnapshot: ...

    def save(self, change: PaperChange) -> None:
        """Apply ``change`` in one transaction."""
        ...

    def order(self, venue_order_id: str) -> OrderState | None:
        """One saved order by id; None when there is none."""
        ...

    def orders_by_label(self, label: str) -> list[OrderState]:
        """Every saved order carrying ``label`` (any currency, any status)."""
        ...

    def trades(self, since: datetime | None = None) -> list[Fill]:
        """Saved trades at or after ``since`` (all when None), oldest first (time, trade id)."""
        ...

    def load_time(self) -> SimTime | None:
        """The saved lockstep time; None before the first start."""
        ...

    def save_time(self, time: SimTime) -> None: ...


class MemoryPaperStore:
    """A paper store that lives as long as the process: tests and throwaway runs."""

    def __init__(self) -> None:
        self._snap = PaperSnapshot()
        self._time: SimTime | None = None

    def load_time(self) -> SimTime | None:
        return self._time

    def save_time(self, time: SimTime) -> None:
        self._time = time

    def load(self) -> PaperSnapshot:
        return PaperSnapshot(
            balances=dict(self._snap.balances),
            positions=dict(self._snap.positions),
            orders=dict(self._snap.orders),
            trades=list(self._snap.trades),
        )

    def order(self, venue_order_id: str) -> OrderState | None:
        return self._snap.orders.get(venue_order_id)

    def orders_by_label(self, label: str) -> list[OrderState]:
        return [o for o in self._snap.orders.values() if o.label == label]

    def trades(self, since: datetime | None = None) -> list[Fill]:
        found = [t for t in self._snap.trades if since is None or t.timestamp >= since]
        return sorted(found, key=lambda t: (t.timestamp, t.trade_id))

    def save(self, change: PaperChange) -> None:
        self._snap.balances.update(change.balances)
        for pos in change.positions:
            self._snap.positions[pos.instrument_name] = pos
        for order in change.orders:
            self._snap.orders[order.venue_order_id] = order
        known = {t.trade_id for t in self._snap.trades}
        for trade in change.trades:  # idempotent on trade_id, within one change too
            if trade.trade_id not in known:
                known.add(trade.trade_id)
                self._snap.trades.append(trade)
