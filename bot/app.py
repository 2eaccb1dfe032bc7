"""Wiring: settings → venue, ledger, tracker, risk gate, executor, cycle context.

Paper mode is a different venue and a different database, never a flag inside live code: the
paper venue fills locally against the configured market's data and keeps its own account in
the paper database, so restart recovery runs in paper mode exactly as it does live.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from pydantic import SecretStr

from bot.clock import Clock, clock_for, day_start
from bot.config import SIM_API_KEY, SIM_API_SECRET, Settings, hedge_instruments
from bot.cycle import CycleContext
from bot.execution import Executor
from bot.lock import BookLock, lock_path_for
from bot.monitor import Monitor
from bot.policy import VolSource
from bot.positions import PositionTracker
from bot.risk import RiskGate
from bot.store.db import make_engine, open_ledger
from bot.store.ledger import Ledger
from bot.store.paper import SqlPaperStore
from bot.store.records import TradingState
from bot.venues.base import Venue
from bot.venues.deribit.adapter import DeribitVenue, RequestTimer
from bot.venues.paper.market import SimMarket
from bot.venues.paper.venue import PaperVenue


@dataclass
class App:
    settings: Settings
    clock: Clock
    venue: Venue
    ledger: Ledger
    ctx: CycleContext
    database_url: str
    paper: bool
    monitor: Monitor | None = None

    def lock(self) -> BookLock:
        return BookLock(lock_path_for(self.settings.daemon.lock_dir, self.database_url))

    async def close(self) -> None:
        if self.monitor is not None:
            self.monitor.close()
        await self.venue.close()


def make_clock(settings: Settings) -> Clock:
    """Wall time, or for the simulated venue time faster than the wall (``market.speed``),
    counted from ``market.clock_anchor`` so a daemon and a simulated venue agree."""
    return clock_for(settings.market.speed, settings.market.clock_anchor)


def database_url(settings: Settings, paper: bool) -> str:
    return settings.database.paper_url if paper else settings.database.url


class UnsupportedMode(Exception):
    """A combination of settings and flags hedgebot does not run."""


def build_venue(
    settings: Settings,
    clock: Clock,
    url: str,
    paper: bool,
    *,
    request_timer: RequestTimer | None = None,
) -> Venue:
    """The venue the settings name.

    ``--paper``: a paper venue filling locally on the simulated market, its account in the
    paper database. ``sim``: the simulated Deribit of ``hedgebot sim`` through ccxt, with its
    local credentials unless others are set. ``deribit``: Deribit through ccxt.
    """
    if paper:
        if settings.venue.kind != "sim":
            raise UnsupportedMode(
                "paper mode fills against the simulated market's data; paper trading on a real "
                "Deribit's public data is not built yet: use venue.kind: sim with --paper"
            )
        market = SimMarket(
            settings.market,
            settings.venue.currencies,
            clock,
            settings.venue.facts,
            start=day_start(clock),
        )
        return PaperVenue(
            market,
            SqlPaperStore(make_engine(url)),
            clock,
            settings.venue.facts,
            settings.venue.fees,
            name="paper",
            equity=settings.market.equity,
        )
    venue = settings.venue
    if venue.kind == "sim":
        venue = venue.model_copy(
            update={
                "network": "custom",
                "url": venue.sim_url,
                "api_key": venue.api_key or SecretStr(SIM_API_KEY),
                "api_secret": venue.api_secret or SecretStr(SIM_API_SECRET),
            }
        )
    return DeribitVenue(venue, clock, request_timer=request_timer)


def build_app(
    settings: Settings,
    *,
    paper: bool,
    clock: Clock | None = None,
    mode: str = "daemon",
    venue: Venue | None = None,
) -> App:
    """Everything one process needs. Refuses a ledger whose schema is behind the code."""
    clock = clock or make_clock(settings)
    url = database_url(settings, paper)
    ledger = open_ledger(url)
    monitor = _monitor(settings, ledger, clock) if mode == "daemon" else None
    timer = monitor.request_timer if monitor else None
    venue = venue or build_venue(settings, clock, url, paper, request_timer=timer)
    tracker = PositionTracker(
        venue, settings.venue.facts, clock, settings.risk.max_data_age_seconds
    )

    def trading_state() -> TradingState:
        return TradingState(ledger.get_trading_state().state)

    risk = RiskGate(settings.risk, clock, trading_state)
    executor = Executor(
        venue,
        ledger,
        clock,
        settings.execution,
        settings.venue.label_prefix,
        on_send=risk.record_sent,
        may_send=risk.rate_ok,
        instruments=hedge_instruments(settings.venue.facts),
    )
    vol = VolSource(settings.policy.volatility, ledger)
    ctx = CycleContext(settings, tracker, ledger, risk, executor, clock, mode=mode, vol=vol)
    return App(settings, clock, venue, ledger, ctx, url, paper, monitor)


def _monitor(settings: Settings, ledger: Ledger, clock: Clock) -> Monitor:
    """Metrics, probes, alerts (``HEDGEBOT_ALERT_URLS``) and systemd's notify socket, all
    from the process environment; the venue keys are redacted from every alert."""
    keys = (settings.venue.api_key, settings.venue.api_secret)
    return Monitor(
        settings,
        ledger,
        clock,
        environ=os.environ,
        secrets=[k.get_secret_value() for k in keys if k is not None],
    )
