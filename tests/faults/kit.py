"""The fault world: a paper venue behind a lying, failing, crashing front; a ledger that can
fail; a fake clock; and the invariants checked after every cycle.

The paper venue underneath is the truth: invariants compare the ledger with it directly, never
through the faulty front. Faults come from a :class:`Faults` plan (a seeded generator for the
soak, a script of exact faults for the named cases); a crash is :class:`Crash` raised at a
chosen point, after which the world drops every in-memory object and starts again on the same
ledger and the same venue, as a restarted process would.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from bot.app import App, build_app
from bot.clock import FakeClock
from bot.cycle import CycleResult, rebalance_once
from bot.domain import Fill, OrderRequest, OrderState, OrderStatus, TradingState
from bot.reconcile import ReconciliationFailed, reconcile
from bot.store.accounting import LedgerAccounts
from bot.store.db import make_engine, upgrade
from bot.store.ledger import Ledger
from bot.venues.errors import OrderRejected, OutcomeUnknown, RateLimited, TransientError
from bot.venues.paper.venue import PaperVenue
from tests.support.books import NOW
from tests.support.harness import Passthrough, paper_venue, settings

PERP = "BTC-PERPETUAL"
PREFIX = "hb-"


class Crash(BaseException):
    """The process dies here: nothing after this point runs, no handler sees it."""


class LedgerDown(Exception):
    """The database refused a write (disk full, server gone)."""


@dataclass
class Faults:
    """What goes wrong. ``script`` fires exact faults on the next eligible calls (a name with
    a count); the probabilities draw from ``seed`` for the soak.

    Place: ``accept_then_timeout``, ``timeout_before_accept``, ``reject``, ``rate_limited``,
    ``crash_before_send``, ``crash_after_send``. Look-ups: ``hidden`` (an order whose reply
    was lost stays invisible to ``hide_for`` look-ups; -1 for ever), ``understate`` (an order
    read reports nothing filled), ``forget_closed`` (the venue restarted: closed orders are
    unknown). Fills read: ``crash_after_fill``. Ledger: ``db_before_send``, ``db_after_send``.
    """

    seed: int = 0
    script: Counter[str] = field(default_factory=Counter)
    p: dict[str, float] = field(default_factory=dict)
    hide_for: int = 3
    forget_closed: bool = False

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.fired: Counter[str] = Counter()

    def fires(self, name: str) -> bool:
        if self.script[name] > 0:
            self.script[name] -= 1
            self.fired[name] += 1
            return True
        chance = self.p.get(name, 0.0)
        hit = chance > 0 and bool(self.rng.random() < chance)
        if hit:
            self.fired[name] += 1
        return hit


class FaultyVenue(Passthrough):
    """The venue as a hedger on a bad day sees it; ``inner`` is the truth."""

    def __init__(self, inner: PaperVenue, faults: Faults) -> None:
        super().__init__(inner)
        self.truth = inner
        self.faults = faults
        self.placed = 0
        self.hidden: dict[str, int] = {}  # label -> look-ups it stays invisible for

    async def place_order(self, request: OrderRequest) -> OrderState:
        f = self.faults
        if f.fires("crash_before_send"):
            raise Crash("before send")
        if f.fires("timeout_before_accept"):
            raise OutcomeUnknown("timed out before the venue accepted")
        if f.fires("reject"):
            raise OrderRejected("definitive reject (fault plan)", code=10041)
        if f.fires("rate_limited"):
            raise RateLimited("burst (fault plan)")
        self.placed += 1
        state = await self.truth.place_order(request)
        if f.fires("crash_after_send"):
            raise Crash("after send")
        if f.fires("accept_then_timeout"):
            if f.fires("hidden"):
                self.hidden[request.label] = f.hide_for
            raise OutcomeUnknown("accepted, reply lost")
        return state

    async def cancel_order(self, venue_order_id: str) -> OrderState:
        if self.faults.fires("rate_limited"):
            raise RateLimited("burst (fault plan)")
        return await self.truth.cancel_order(venue_order_id)

    def _visible(self, state: OrderState | None) -> OrderState | None:
        if state is None:
            return None
        left = self.hidden.get(state.label, 0)
        if left != 0:
            if left > 0:
                self.hidden[state.label] = left - 1
            return None
        if self.faults.forget_closed and state.status.terminal:
            return None
        if self.faults.fires("understate") and state.filled_amount > 0:
            return replace(state, filled_amount=0.0)
        return state

    async def order_by_label(self, currency: str, label: str) -> OrderState | None:
        if self.faults.fires("transient_read"):
            raise TransientError("read timed out")
        return self._visible(await self.truth.order_by_label(currency, label))

    async def order_by_id(self, currency: str, venue_order_id: str) -> OrderState | None:
        return self._visible(await self.truth.order_by_id(currency, venue_order_id))

    async def open_orders(self, currency: str) -> list[OrderState]:
        return await self.truth.open_orders(currency)  # the list of open orders is never late

    async def fills(self, currency: str, since: Any = None) -> list[Fill]:
        found = await self.truth.fills(currency, since)
        if self.faults.fires("crash_after_fill"):
            raise Crash("after the fill, before it was recorded")
        return found


class FlakyLedger(Ledger):
    """A ledger whose database fails on the writes the plan names."""

    faults: Faults

    def record_order(self, *args: Any, **kwargs: Any) -> Any:
        if self.faults.fires("db_before_send"):
            raise LedgerDown("database refused the order row")
        return super().record_order(*args, **kwargs)

    def update_order(self, *args: Any, **kwargs: Any) -> Any:
        if self.faults.fires("db_after_send"):
            raise LedgerDown("database refused the order's state")
        return super().update_order(*args, **kwargs)


SOAK_SETTINGS: dict[str, Any] = {
    "policy": {"kind": "time_band", "time_band": {"interval_seconds": 60}},
    "execution": {"reprice_seconds": 5, "max_reprices": 1},
    "risk": {"max_orders_per_minute": 1000},
}


class World:
    """One hedging process (rebuilt after each crash) against one venue, on one ledger."""

    def __init__(self, tmp_path: Path, faults: Faults, **overrides: Any) -> None:
        merged = {k: dict(v) for k, v in SOAK_SETTINGS.items()}
        for section, values in overrides.items():
            merged.setdefault(section, {}).update(values)
        self.settings = settings(tmp_path, **merged)
        self.clock = FakeClock(NOW)
        self.faults = faults
        url = self.settings.database.paper_url
        upgrade(url)
        self.truth = paper_venue(self.settings, self.clock, url)
        self.venue = FaultyVenue(self.truth, faults)
        self.crashes = 0
        self.cycles = 0
        self.results: list[CycleResult | None] = []
        self.app = self.process()
        self.reconciled = False

    def process(self, mode: str = "daemon") -> App:
        """A fresh process's objects on this world's ledger and venue."""
        ledger = FlakyLedger(make_engine(self.settings.database.paper_url))
        ledger.faults = self.faults
        return build_app(
            self.settings, paper=True, clock=self.clock, venue=self.venue, ledger=ledger, mode=mode
        )

    @property
    def ledger(self) -> Ledger:
        return self.app.ledger

    def restart(self) -> None:
        """The process died: every in-memory object goes; ledger and venue stay."""
        self.crashes += 1
        self.app.ledger.close()
        self.app = self.process()
        self.reconciled = False

    async def cycle(self, *, check: bool = True) -> CycleResult | None:
        """Start-up (until reconciled) then one cycle, as the daemon runs them; then the
        invariants. A crash restarts the process; a failed cycle is logged and passed."""
        halted = self.ledger.get_trading_state().state is TradingState.HALTED
        placed = self.venue.placed
        result: CycleResult | None = None
        try:
            if not self.reconciled:
                await reconcile(self.app.ctx, "BTC")
                self.reconciled = True
            result = await rebalance_once(self.app.ctx, "BTC")
        except Crash:
            self.restart()
        except (ReconciliationFailed, LedgerDown):
            pass  # the daemon refuses to start / logs the failed cycle; the next try goes on
        self.cycles += 1
        self.results.append(result)
        if halted:
            assert self.venue.placed == placed, "an order was sent while trading was halted"
        if check:
            await self.check()
        self.clock.advance(300)
        return result

    async def check(self, *, position: bool = True) -> None:
        await check_invariants(self, position=position)


async def check_invariants(world: World, *, position: bool = True) -> None:
    """The promises, checked against the venue's own truth."""
    ledger = Ledger(world.ledger.engine)
    truth = world.truth
    trades = {f.trade_id: f for f in await truth.fills("BTC") if f.label.startswith(PREFIX)}
    recorded = {f.trade_id: f for f in ledger.fills()}
    phantom = set(recorded) - set(trades)
    assert not phantom, f"fills in the ledger the venue never made: {sorted(phantom)}"
    unresolved = ledger.open_orders()
    per_instrument = Counter(o.instrument for o in unresolved)
    assert all(n <= 1 for n in per_instrument.values()), f"unresolved orders: {per_instrument}"
    if not unresolved:
        missing = set(trades) - set(recorded)
        assert not missing, f"venue trades missing from the ledger: {sorted(missing)}"
        if position:
            base = LedgerAccounts(ledger.engine).baseline(PERP)
            held = sum(p.size for p in await truth.positions("BTC") if p.instrument.name == PERP)
            if base is not None:
                expected = base.position + ledger.hedge_position_from_fills(PERP) - base.fills_total
                assert abs(held - expected) < 1e-6, f"venue holds {held}, ledger says {expected}"
    for row in ledger.orders():
        if not row.status.terminal:
            continue
        venue = await truth.order_by_label("BTC", row.label)
        if row.status is OrderStatus.REJECTED:
            assert venue is None, f"{row.label} written off but the venue has it: {venue}"
            continue
        traded = sum(f.amount for f in trades.values() if f.label == row.label)
        assert venue is not None, f"{row.label} {row.status.value} without the venue knowing it"
        assert venue.status is row.status, f"{row.label}: ledger {row.status}, venue {venue.status}"
        assert abs(traded - venue.filled_amount) < 1e-9, f"{row.label}: trades {traded}"
        assert abs(row.filled_amount - venue.filled_amount) < 1e-9, (
            f"{row.label}: ledger filled {row.filled_amount}, venue {venue.filled_amount}"
        )
