"""A whole hedging stack on a fake clock: sim market, paper venue, SQLite ledger, real cycle.

Faults come in through constructors: a PaperFaultPlan for the paper venue, or a wrapper venue that
lies in one specific way.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from bot.app import App, build_app
from bot.clock import FakeClock
from bot.config import Settings, load_settings
from bot.domain import Mark, OrderRequest, OrderState, Position
from bot.store.db import make_engine, upgrade
from bot.store.paper import SqlPaperStore
from bot.venues.base import Venue
from bot.venues.errors import TransientError
from bot.venues.paper.market import SimMarket
from bot.venues.paper.venue import PaperFaultPlan, PaperVenue
from tests.support.books import NOW


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "database": {
            "url": f"sqlite:///{tmp_path}/live.db",
            "paper_url": f"sqlite:///{tmp_path}/paper.db",
        },
    }
    for section, values in overrides.items():
        base.setdefault(section, {}).update(values)
    return load_settings(None, **base)


def paper_venue(
    s: Settings, clock: FakeClock, url: str, faults: PaperFaultPlan | None = None, seed: int = 1
) -> PaperVenue:
    market = SimMarket(s.market, s.venue.currencies, clock, s.venue.facts, start=clock.now())
    return PaperVenue(
        market,
        SqlPaperStore(make_engine(url)),
        clock,
        s.venue.facts,
        s.venue.fees,
        rng=np.random.default_rng(seed),
        faults=faults,
        equity=s.market.equity,
    )


def stack(
    tmp_path: Path,
    *,
    clock: FakeClock | None = None,
    faults: PaperFaultPlan | None = None,
    wrap: Any = None,
    **overrides: Any,
) -> App:
    """A paper-mode app on ``tmp_path`` with a fake clock; ``wrap(venue)`` may replace the venue."""
    s = settings(tmp_path, **overrides)
    clock = clock or FakeClock(NOW)
    upgrade(s.database.paper_url)
    venue: Venue = paper_venue(s, clock, s.database.paper_url, faults)
    if wrap is not None:
        venue = wrap(venue)
    return build_app(s, paper=True, clock=clock, venue=venue)


class Passthrough:
    """A venue that forwards everything; subclasses lie in one way."""

    def __init__(self, inner: Venue) -> None:
        self.inner = inner
        self.name = inner.name

    def __getattr__(self, item: str) -> Any:
        return getattr(self.inner, item)

    async def instruments(self, currency: str) -> Any:
        return await self.inner.instruments(currency)

    async def positions(self, currency: str) -> list[Position]:
        return await self.inner.positions(currency)

    async def account(self, currency: str) -> Any:
        return await self.inner.account(currency)

    async def marks(self, currency: str, instruments: Collection[str] | None = None) -> list[Mark]:
        return await self.inner.marks(currency, instruments)

    async def quote(self, instrument_name: str) -> Any:
        return await self.inner.quote(instrument_name)

    async def place_order(self, request: OrderRequest) -> OrderState:
        return await self.inner.place_order(request)

    async def cancel_order(self, venue_order_id: str) -> OrderState:
        return await self.inner.cancel_order(venue_order_id)

    async def order_by_label(self, currency: str, label: str) -> OrderState | None:
        return await self.inner.order_by_label(currency, label)

    async def order_by_id(self, currency: str, venue_order_id: str) -> OrderState | None:
        return await self.inner.order_by_id(currency, venue_order_id)

    async def open_orders(self, currency: str) -> list[OrderState]:
        return await self.inner.open_orders(currency)

    async def fills(self, currency: str, since: datetime | None = None) -> Any:
        return await self.inner.fills(currency, since)

    async def close(self) -> None:
        await self.inner.close()


@dataclass
class Counter:
    placed: int = 0


class CountingVenue(Passthrough):
    """Counts order placements that reached the venue."""

    def __init__(self, inner: Venue) -> None:
        super().__init__(inner)
        self.count = Counter()

    async def place_order(self, request: OrderRequest) -> OrderState:
        self.count.placed += 1
        return await self.inner.place_order(request)


class StaleMarks(Passthrough):
    """Marks that are ``lag`` seconds old."""

    lag = 120.0

    async def marks(self, currency: str, instruments: Collection[str] | None = None) -> list[Mark]:
        return [
            replace(m, timestamp=m.timestamp - timedelta(seconds=self.lag))
            for m in await self.inner.marks(currency, instruments)
        ]


class NanIndex(Passthrough):
    async def quote(self, instrument_name: str) -> Any:
        q = await self.inner.quote(instrument_name)
        return replace(q, index_price=float("nan"))


class EmptyPositions(Passthrough):
    """Answers with no positions after the first ``honest`` reads."""

    honest = 1

    async def positions(self, currency: str) -> list[Position]:
        if self.honest > 0:
            self.honest -= 1
            return await self.inner.positions(currency)
        return []


class WrongDeltaTotal(Passthrough):
    async def account(self, currency: str) -> Any:
        a = await self.inner.account(currency)
        return replace(a, delta_total=(a.delta_total or 0.0) + 1.0)


class VenueClockBehind(Passthrough):
    """A venue whose clock runs ``lag`` seconds behind ours: its fills carry older times."""

    lag = 30.0

    async def fills(self, currency: str, since: datetime | None = None) -> Any:
        shifted = [
            replace(f, timestamp=f.timestamp - timedelta(seconds=self.lag))
            for f in await self.inner.fills(currency, None)
        ]
        return [f for f in shifted if since is None or f.timestamp >= since]


class FillsReadFailsOnce(Passthrough):
    """The first read of fills after an order was placed fails after retries; later reads
    work (reads before any order, such as the check for another hedgebot, work too)."""

    failures = 1
    placed = False

    async def place_order(self, request: OrderRequest) -> OrderState:
        self.placed = True
        return await self.inner.place_order(request)

    async def fills(self, currency: str, since: datetime | None = None) -> Any:
        if self.placed and self.failures > 0:
            self.failures -= 1
            raise TransientError("fills read timed out")
        return await self.inner.fills(currency, since)
