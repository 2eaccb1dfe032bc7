"""Wiring: settings → venue, ledger, tracker, risk gate, executor, cycle context.

Paper mode is a different venue and a different database, never a flag inside live code: the
paper venue fills locally against the configured market's data and keeps its own account in
the paper database, so restart recovery runs in paper mode exactly as it does live.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import structlog
from pydantic import SecretStr

from bot.clock import Clock, SeededIds, SystemClock, clock_for, day_start
from bot.config import SIM_API_KEY, SIM_API_SECRET, Settings, VenueSettings, hedge_instruments
from bot.cycle import CycleContext
from bot.daemon import Events
from bot.events import EventTrigger
from bot.exclusion import AccountWatch
from bot.execution import Executor
from bot.labels import LEDGER_ID_LENGTH, Labels
from bot.lock import BookLease, account_identity, book_key
from bot.monitor import Monitor
from bot.order_pushes import OrderPushes
from bot.policy import VolSource
from bot.positions import PositionTracker
from bot.risk import FillBounds, RiskGate
from bot.store.db import make_engine, open_ledger
from bot.store.identity import ledger_id
from bot.store.lease import LeaseStore
from bot.store.ledger import Ledger
from bot.store.paper import SqlPaperStore
from bot.venues.base import Venue
from bot.venues.deribit.adapter import DeribitVenue, RequestTimer, build_client
from bot.venues.deribit.live_market import ImportedBook, LiveMarket, LivePaperVenue
from bot.venues.paper.market import SimMarket
from bot.venues.paper.timekeeping import lockstep_clock
from bot.venues.paper.venue import PaperVenue
from bot.venues.sim_clock import SimClockUnavailable, SimVenueClock
from bot.venues.venue_clock import VenueClock

_log = structlog.get_logger("hedgebot.app")


@dataclass
class App:
    settings: Settings
    clock: Clock
    venue: Venue
    ledger: Ledger
    ctx: CycleContext
    database_url: str
    paper: bool
    venue_clock: VenueClock | None = None
    mode: str = "daemon"
    lease_clock: Clock = field(default_factory=SystemClock)
    monitor: Monitor | None = None
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    pushes: OrderPushes | None = None  # the order stream's wake-ups (daemon with events)

    def books(self) -> tuple[str, ...]:
        """This process's books: the venue account and each configured currency."""
        account = account_identity(self.settings, self.paper)
        return tuple(book_key(account, c) for c in self.settings.venue.currencies)

    def lock(self, currencies: tuple[str, ...] | None = None) -> BookLease:
        """The lease on this app's books (all configured currencies unless narrowed), held in
        the ledger; its expiry runs on wall time, whatever clock the market runs on."""
        account = account_identity(self.settings, self.paper)
        books = tuple(book_key(account, c) for c in currencies or self.settings.venue.currencies)
        return BookLease(
            LeaseStore(self.ledger.engine),
            books,
            self.lease_clock,
            self.settings.daemon.lease_seconds,
            self.mode,
        )

    async def close(self) -> None:
        if self.monitor is not None:
            self.monitor.close()
        await self.venue.close()
        for close in self.closers:
            await close()


def make_clock(settings: Settings) -> Clock:
    """Wall time, or for the simulated venue time faster than the wall (``market.speed``),
    counted from ``market.clock_anchor`` so a daemon and a simulated venue agree."""
    return clock_for(settings.market.speed, settings.market.clock_anchor)


def lockstep(settings: Settings, paper: bool) -> bool:
    """Whether this process follows a simulated venue's time; refuses it for a real venue."""
    if settings.market.clock != "lockstep":
        return False
    if not paper and settings.venue.kind != "sim":
        raise UnsupportedMode(
            "market.clock: lockstep needs the simulated venue (venue.kind: sim) or --paper; "
            "a real venue keeps the wall clock"
        )
    return True


def follow_sim_venue(settings: Settings) -> SimVenueClock:
    """The clock of ``hedgebot sim`` at ``venue.sim_url``, followed in lockstep."""
    try:
        return SimVenueClock.connect(settings.venue.sim_url, pace=settings.market.pace)
    except SimClockUnavailable as exc:
        raise UnsupportedMode(str(exc)) from exc


def id_salt(clock: Clock, ledger: Ledger) -> str:
    """What tells this process's run from an earlier one on the same ledger: where its clock
    starts and how many rows the ledger holds (a killed cycle that recorded anything moved
    the count; one that recorded nothing left no id to collide with)."""
    summary = ledger.summary()
    rows = sum(summary.rebalances_by_status.values()) + sum(summary.orders_by_status.values())
    return f"{clock.now().isoformat()}|{rows}"


# Commands that only read: they never write the ledger's id (a read-only database role works).
READ_ONLY_MODES = frozenset({"status", "check", "risk"})


def name_ledger(settings: Settings, clock: Clock, ledger: Ledger, mode: str = "daemon") -> str:
    """The ledger's id (stamped into order labels): the one it has, else one drawn now from
    the seed, the clock and the ledger's address (without its password), so two ledgers
    created at one instant with one seed still get different ids."""
    where = ledger.engine.url.render_as_string(hide_password=True)
    salt = f"ledger|{where}|{clock.now().isoformat()}"
    candidate = SeededIds(settings.market.seed, salt).cycle_id()[:LEDGER_ID_LENGTH]
    return ledger_id(ledger.engine, candidate, clock.now(), record=mode not in READ_ONLY_MODES)


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
    store: SqlPaperStore | None = None,
    start: datetime | None = None,
) -> Venue:
    """The venue the settings name.

    ``--paper``: a paper venue filling locally, its account in the paper database: on the
    simulated market (``sim``), or on a real Deribit's public data (``deribit``). ``sim``: the
    simulated Deribit of ``hedgebot sim`` through ccxt, with its local credentials unless
    others are set. ``deribit``: Deribit through ccxt.
    """
    if paper and settings.venue.kind == "deribit":
        return live_paper_venue(settings, clock, url)
    if paper:
        market = SimMarket(
            settings.market,
            tuple(settings.venue.facts),  # every currency: an account may hold any of them
            clock,
            settings.venue.facts,
            start=start or day_start(clock),
        )
        return PaperVenue(
            market,
            store or SqlPaperStore(make_engine(url)),
            clock,
            settings.venue.facts,
            settings.venue.fees,
            name="paper",
            equity=settings.market.equity,
        )
    venue = venue_connection(settings)
    # At an accelerated speed both sides share an anchored clock; a round trip would be
    # magnified into a false offset, so the venue's clock is measured at speed 1 only.
    return DeribitVenue(
        venue,
        clock,
        rng=np.random.default_rng(settings.market.seed),
        measure_clock=settings.market.speed == 1 and settings.market.clock == "wall",
        request_timer=request_timer,
    )


def venue_connection(settings: Settings) -> VenueSettings:
    """The venue settings a ccxt client connects with: ``sim`` is Deribit at ``sim_url``
    with the simulated venue's local keys unless others are set."""
    venue = settings.venue
    if venue.kind != "sim":
        return venue
    return venue.model_copy(
        update={
            "network": "custom",
            "url": venue.sim_url,
            "api_key": venue.api_key or SecretStr(SIM_API_KEY),
            "api_secret": venue.api_secret or SecretStr(SIM_API_SECRET),
        }
    )


def cancel_on_disconnect(settings: Settings) -> bool:
    """Whether the daemon's stream session enables Deribit's cancel-on-disconnect (``auto``:
    for a real Deribit only)."""
    mode = settings.daemon.cancel_on_disconnect
    return mode == "on" or (mode == "auto" and settings.venue.kind == "deribit")


def build_events(app: App) -> Events | None:
    """The daemon's stream side: the event trigger on the perpetuals' tickers when
    ``daemon.events.enabled``, and the session keeping cancel-on-disconnect alive when that is
    on. None for a paper venue (no venue session to hold) or when neither is wanted. The
    stream's own waits (backoff, silence) are transport, on ``app.lease_clock`` (wall time)."""
    from bot.venues.deribit.streams import DeribitStreams, StreamPlan, build_stream_client

    settings = app.settings
    events = settings.daemon.events
    if app.paper or not isinstance(app.venue, DeribitVenue):
        if events.enabled:
            _log.warning("events_need_a_venue_session", venue=app.venue.name)
        return None
    connection = venue_connection(settings)
    keyed = connection.api_key is not None and connection.api_secret is not None
    cod = cancel_on_disconnect(settings) and keyed
    if not events.enabled and not cod:
        return None
    currencies = settings.venue.currencies
    tickers = {settings.venue.facts[c].perpetual: c for c in currencies} if events.enabled else {}
    plan = StreamPlan(
        tickers,
        cod,
        events.silence_seconds,
        events.reconnect_min_seconds,
        events.reconnect_max_seconds,
    )
    stream = DeribitStreams(
        plan,
        lambda: build_stream_client(connection),
        app.lease_clock,
        np.random.default_rng([settings.market.seed, 1]),
        on_order=app.pushes.heard if app.pushes is not None else None,
    )
    trigger = EventTrigger(events, app.clock) if events.enabled else None
    return Events(trigger, stream)


def live_paper_venue(
    settings: Settings, clock: Clock, url: str, imported: ImportedBook | None = None
) -> LivePaperVenue:
    """Paper fills on the real venue's public data: a key-less, public-only ccxt client."""
    public = settings.venue.model_copy(update={"api_key": None, "api_secret": None})
    facts = {c: settings.venue.facts[c] for c in settings.venue.currencies}
    data = DeribitVenue(
        public,
        clock,
        rng=np.random.default_rng(settings.market.seed),
        client=build_client(public, public_only=True),
        measure_clock=settings.market.speed == 1,
    )
    market = LiveMarket(
        data,
        facts,
        clock,
        equity=settings.market.equity,
        legs=settings.market.book,
        imported=imported,
    )
    return LivePaperVenue(
        market,
        data,
        SqlPaperStore(make_engine(url)),
        clock,
        facts,
        settings.venue.fees,
        equity=settings.market.equity,
    )


def build_app(
    settings: Settings,
    *,
    paper: bool,
    clock: Clock | None = None,
    mode: str = "daemon",
    venue: Venue | None = None,
    ledger: Ledger | None = None,
    lease_clock: Clock | None = None,
) -> App:
    """Everything one process needs. Refuses a ledger whose schema is behind the code.
    ``venue`` and ``ledger`` replace the ones the settings name (tests inject faults so);
    ``lease_clock`` the wall clock the book lease expires on (a test's restarted process
    stands "later" on it, as if the dead holder's lease had run out).

    With ``market.clock: lockstep`` the clock is the simulated venue's: in paper mode one
    shared with the paper venue (and saved with its account), against ``hedgebot sim`` that
    venue's, followed over HTTP. Nothing past this function knows which clock it has.
    """
    url = database_url(settings, paper)
    ledger = ledger or open_ledger(url)
    closers: list[Callable[[], Awaitable[None]]] = []
    store, start = None, None
    if clock is None and lockstep(settings, paper) and venue is None:
        if paper:
            store = SqlPaperStore(make_engine(url))
            clock, start = lockstep_clock(store, settings.market, SystemClock())
        else:
            followed = follow_sim_venue(settings)
            closers.append(followed.close)
            clock = followed
    clock = clock or make_clock(settings)
    monitor = _monitor(settings, ledger, clock) if mode == "daemon" else None
    timer = monitor.request_timer if monitor else None
    venue = venue or build_venue(
        settings, clock, url, paper, request_timer=timer, store=store, start=start
    )
    # data age is judged on the venue's clock when it is measured (see bot.venues.venue_clock)
    venue_clock = getattr(venue, "venue_clock", None)
    if monitor is not None and venue_clock is not None:
        monitor.follow_clock_offset(lambda: venue_clock.offset_seconds)
    tracker = PositionTracker(venue, settings.venue.facts, venue_clock or clock, settings.risk)

    risk = RiskGate(settings.risk, clock, ledger)
    labels = Labels(settings.venue.label_prefix, name_ledger(settings, clock, ledger, mode))
    # Order pushes only with events on: those need the wall clock, whose sleeps may be cut short.
    events_on = mode == "daemon" and not paper and settings.daemon.events.enabled
    pushes = OrderPushes() if events_on else None
    executor = Executor(
        venue,
        ledger,
        clock,
        settings.execution,
        labels,
        may_send=risk.rate_ok,
        instruments=hedge_instruments(settings.venue.facts),
        fill_bounds=FillBounds.of(settings.risk),
        pushes=pushes,
    )
    vol = VolSource(settings.policy.volatility, ledger)
    ids = SeededIds(settings.market.seed, id_salt(clock, ledger))
    watch = AccountWatch(venue, ledger, labels, executor.intake, clock, executor.fill_lookback)
    ctx = CycleContext(
        settings, tracker, ledger, risk, executor, clock, mode=mode, vol=vol, ids=ids, watch=watch
    )
    return App(
        settings,
        clock,
        venue,
        ledger,
        ctx,
        url,
        paper,
        venue_clock,
        mode,
        lease_clock=lease_clock or SystemClock(),
        monitor=monitor,
        closers=closers,
        pushes=pushes,
    )


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
