"""The daemon's monitor: it is told what happened, in plain values, and turns that into metrics,
health answers, alerts and systemd notifications.

The daemon calls, in order: ``starting`` → ``reconciled`` (or ``refused``) → per loop ``loop``
and per cycle ``cycle`` → ``stopped``; the wiring calls ``close``. After each cycle it reads the
ledger (the trading state, orders, new fills) so the figures it serves are the record's. Nothing
here can stop the daemon: every hook catches its own errors and logs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar

import structlog

from bot.clock import Clock
from bot.config import Settings, hedge_instruments
from bot.domain import Fill, HedgeDecision, OrderStatus, PortfolioGreeks, TradingState
from bot.monitor.alerts import (
    Alert,
    AlertGate,
    AlertSender,
    Transport,
    alert_urls,
    redactor,
    url_secrets,
)
from bot.monitor.costs import FillCost, fill_cost
from bot.monitor.daily import DailyTotals
from bot.monitor.metrics import Metrics
from bot.monitor.rules import ERROR_STATUSES, GLOBAL, AlertRules, CycleFacts
from bot.monitor.sdnotify import SystemdNotifier
from bot.monitor.server import ProbeServer
from bot.store.ledger import Ledger

log = structlog.get_logger("hedgebot.monitor")

P = ParamSpec("P")
R = TypeVar("R")
# Fills the reconciliation adds carry the venue's (older) times: re-read this far back.
FILL_REREAD = timedelta(days=1)


def _guarded(fn: Callable[P, R]) -> Callable[P, R | None]:
    """A monitoring fault is logged, never raised into the daemon."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | None:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            log.error("monitor_failed", hook=fn.__name__, error=f"{type(exc).__name__}: {exc}")
            return None

    return wrapper


class Monitor:
    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        clock: Clock,
        *,
        environ: Mapping[str, str],
        transport: Transport | None = None,
        secrets: Iterable[str] = (),
        wall_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        timer: Callable[[], float] = time.perf_counter,
        clock_offset: Callable[[], float | None] | None = None,
    ) -> None:
        """``environ`` supplies ``HEDGEBOT_ALERT_URLS`` and systemd's ``NOTIFY_SOCKET`` and
        ``WATCHDOG_USEC``; ``transport`` replaces apprise (tests); ``secrets`` are redacted
        from every alert; ``wall_sleep`` paces the watchdog (systemd counts wall time) and
        ``timer`` times venue requests; ``clock_offset`` reads the venue clock's last measured
        offset (None until measured) after each cycle."""
        self._s = settings.monitor
        self._max_age = settings.risk.max_data_age_seconds
        self._ledger, self._clock = ledger, clock
        self.metrics = Metrics(clock.now)
        urls = alert_urls(environ)
        a = self._s.alerts
        self._sender = AlertSender(
            urls,
            timeout_seconds=a.send_timeout_seconds,
            queue_size=a.queue_size,
            transport=transport,
        )
        self._gate = AlertGate(clock.now, a.dedupe_seconds, a.max_per_hour)
        self._rules = AlertRules(a, self._max_age)
        self._redact = redactor([*url_secrets(urls), *secrets])
        self._notifier = SystemdNotifier(environ)
        self._wall_sleep, self._timer = wall_sleep, timer
        self._offset_source = clock_offset
        self._hedges = hedge_instruments(settings.venue.facts)
        self._server: ProbeServer | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._currencies: tuple[str, ...] = ()
        self._every = 60.0
        self._started = self._stopped = self._reconciled = False
        self._refusal: str | None = None
        self._last_loop: datetime | None = None
        self._last_read: dict[str, datetime] = {}
        self._states: dict[str, TradingState] = {}  # by scope: global, then each currency
        self._offset: float | None = None
        self._seen_fills: dict[str, datetime] = {}  # trade id -> time, inside the re-read window
        self._fills_since: datetime | None = None
        self._day: DailyTotals | None = None

    @property
    def port(self) -> int | None:
        """Where /metrics listens (useful with ``monitor.port: 0``)."""
        return self._server.port if self._server else None

    # -- hooks the daemon calls -----------------------------------------------------------------

    @_guarded
    def starting(self, currencies: tuple[str, ...], every_seconds: float) -> None:
        self._currencies, self._every = currencies, every_seconds
        self._started, self._stopped = True, False
        self._last_loop = self._clock.now()
        self._day = DailyTotals(self._last_loop.date())
        for c in currencies:
            self.metrics.track(c)
        if self._notifier.watchdog_seconds and self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().create_task(self._keep_watchdog())
        if self._s.metrics and self._server is None:
            self._serve()
        self._read_ledger()

    def _serve(self) -> None:
        """A port that cannot be bound is logged, not fatal: hedging matters more."""
        try:
            self._server = ProbeServer(
                self._s.host, self._s.port, self.metrics.registry, self.alive, self.ready
            )
        except OSError as exc:
            log.error("metrics_not_served", host=self._s.host, port=self._s.port, error=str(exc))
            return
        self._server.start()
        log.info("metrics_serving", host=self._s.host, port=self._server.port)

    @_guarded
    def refused(self, reason: str) -> None:
        self._refusal = reason
        self._stopped = True  # the refusal is the alert; no second one for the exit
        self._alert(self._rules.refused(reason, self._clock.now()))

    @_guarded
    def reconciled(self) -> None:
        self._reconciled = True
        self._notifier.notify("READY=1\nSTATUS=reconciled, hedging")

    @_guarded
    def loop(self) -> None:
        self._last_loop = self._clock.now()
        self._notifier.notify("WATCHDOG=1")

    @_guarded
    def cycle(
        self,
        currency: str,
        status: str,
        reason: str,
        greeks: PortfolioGreeks | None,
        decision: HedgeDecision | None,
        filled_amount: float | None,
    ) -> None:
        """After one cycle of ``currency``: ``filled_amount`` is what its orders filled (signed,
        hedge units), None when nothing was sent."""
        now = self._clock.now()
        if self._day is not None and now.date() != self._day.day:
            if self._day.cycles and self._s.alerts.daily_summary:
                self._alert(self._day.summary())
            self._day = self._day.next_day(now.date())
        self.metrics.cycle(currency, status)
        if status not in ERROR_STATUSES:
            self.metrics.success(currency, now)
        if greeks is not None:
            snap = self._ledger.last_greeks_snapshot(currency)
            read_at = snap.ts if snap is not None else now
            self._last_read[currency] = read_at
            self.metrics.book(greeks, read_at, snap.hedge_position if snap else None)
            if self._day is not None:
                self._day.book(currency, greeks, snap.hedge_position if snap else None)
        if decision is not None:
            self.metrics.decision(currency, decision)
        measured = self._offset_source() if self._offset_source else None
        if measured is not None:
            self.clock_offset(measured)
        self._read_ledger()
        read = self._last_read.get(currency)
        for alert in self._rules.cycle(
            CycleFacts(
                currency=currency,
                status=status,
                reason=reason,
                data_age_seconds=None if read is None else (now - read).total_seconds(),
                delta_after=_delta_after(decision, status, filled_amount),
                target=decision.target if decision else None,
                band_low=decision.band_low if decision else None,
                band_high=decision.band_high if decision else None,
                policy=decision.policy if decision else None,
                clock_offset_seconds=self._offset,
            )
        ):
            self._alert(alert)

    def follow_clock_offset(self, source: Callable[[], float | None]) -> None:
        """Read the venue clock's last measured offset (None until measured) after each cycle."""
        self._offset_source = source

    @_guarded
    def clock_offset(self, seconds: float) -> None:
        """The venue's clock minus ours, when the venue adapter measured it."""
        self._offset = seconds
        self.metrics.clock_offset.set(seconds)

    @_guarded
    def stopped(self, requested: bool, detail: str, cycles: int) -> None:
        self._stopped = True
        self._notifier.notify("STOPPING=1")
        self._alert(self._rules.stopped(requested, detail, cycles, self._clock.now()))

    def close(self) -> None:
        """Stop serving and let queued alerts go (bounded); safe to call twice."""
        if self._started and not self._stopped:
            self.stopped(False, "the process is exiting without a clean stop", 0)
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._server is not None:
            self._server.close()
            self._server = None
        self._sender.close(wait_seconds=self._s.alerts.send_timeout_seconds + 1)

    @contextlib.contextmanager
    def request_timer(self, method: str) -> Iterator[None]:
        """What the venue adapter wraps each request in: feeds the latency histogram."""
        t0 = self._timer()
        try:
            yield
        finally:
            self.metrics.request(method, self._timer() - t0)

    # -- health -----------------------------------------------------------------------------------

    def alive(self) -> tuple[bool, dict[str, Any]]:
        """The loop turns: its last tick is within one period plus ``stall_seconds``."""
        if self._last_loop is None:
            return True, {"loop": "not started"}
        age = (self._clock.now() - self._last_loop).total_seconds()
        return age <= self._every + self._s.stall_seconds, {"last_loop_age_seconds": age}

    def ready(self) -> tuple[bool, dict[str, Any]]:
        """Reconciled, every book read recently enough, and not halted."""
        problems: list[str] = []
        if self._refusal is not None:
            problems.append(f"reconciliation refused: {self._redact(self._refusal)[:300]}")
        elif not self._reconciled:
            problems.append("reconciliation not done yet")
        for scope, state in self._states.items():
            if state is TradingState.HALTED:
                problems.append("trading is halted" + ("" if scope == GLOBAL else f" for {scope}"))
        limit = self._every + self._max_age
        now = self._clock.now()
        for c in self._currencies:
            read = self._last_read.get(c)
            if read is None:
                problems.append(f"{c}: no good read yet")
            elif (age := (now - read).total_seconds()) > limit:
                problems.append(f"{c}: last good read {age:,.0f} s ago (limit {limit:,.0f} s)")
        return not problems, {"problems": problems}

    # -- inside -----------------------------------------------------------------------------------

    async def _keep_watchdog(self) -> None:
        """Ping systemd's watchdog at half its interval while the loop turns; a loop stuck
        past ``stall_seconds`` stops the pings and systemd restarts the service."""
        assert self._notifier.watchdog_seconds is not None
        while True:
            await self._wall_sleep(self._notifier.watchdog_seconds / 2)
            if self.alive()[0]:
                self._notifier.notify("WATCHDOG=1")

    def _read_ledger(self) -> None:
        for scope in (GLOBAL, *self._currencies):
            row = self._ledger.get_trading_state(scope)
            known = self._states.get(scope)
            if row.state is known:
                continue
            if known is not None or row.state is not TradingState.ACTIVE:
                self._alert(
                    self._rules.trading_state(
                        scope, row.state, row.reason, row.updated_at, known or row.state
                    )
                )
            self._states[scope] = row.state
            self.metrics.trading_state(scope, row.state)
        self.metrics.orders(self._ledger.order_counts())
        now = self._clock.now()
        grace = self._s.alerts.unknown_order_grace_seconds
        for o in self._ledger.orders([OrderStatus.UNKNOWN]):
            age = (now - o.created_at).total_seconds()
            if age > grace:
                self._alert(
                    self._rules.unknown_order(o.label, o.instrument, o.side.value, o.amount, age)
                )
        self._ingest_fills()

    def _ingest_fills(self) -> None:
        since = self._fills_since - FILL_REREAD if self._fills_since else None
        for f in self._ledger.fills(since):
            if f.trade_id in self._seen_fills:
                continue
            self._seen_fills[f.trade_id] = f.timestamp
            if self._fills_since is None or f.timestamp > self._fills_since:
                self._fills_since = f.timestamp
            self._count_fill(f)
        # A fill older than the next read's window is never read again: forget it, or the set
        # grows by every fill for as long as the daemon runs.
        if self._fills_since is not None:
            oldest = self._fills_since - FILL_REREAD
            for trade_id in [t for t, at in self._seen_fills.items() if at < oldest]:
                del self._seen_fills[trade_id]

    def _count_fill(self, f: Fill) -> None:
        instrument = self._hedges.get(f.instrument_name)
        if instrument is None:
            log.warning(
                "fill_not_counted",
                instrument=f.instrument_name,
                trade_id=f.trade_id,
                reason="no hedge instrument of venue.facts",
            )
            return
        currency = instrument.currency
        order = self._ledger.order(f.label)
        mid = order.decision_mid if order else None
        cost: FillCost = fill_cost(f, mid, currency, instrument.inverse)
        self.metrics.fill(
            currency, cost.notional_usd, cost.fee_coin, cost.fee_usd, cost.slippage_usd
        )
        if self._day is not None:
            self._day.fill(currency, f.timestamp, cost.fee_usd, cost.slippage_usd)

    def _alert(self, alert: Alert) -> None:
        verdict = self._gate.admit(alert)
        fate = verdict if verdict != "send" else ("queued" if self._sender.enabled else "logged")
        body = self._redact(alert.body())
        if verdict == "send" and self._gate.suppressed:
            body += f"\n({self._gate.suppressed} earlier alerts were held back by the rate limit)"
            self._gate.suppressed = 0
        title = self._redact(alert.title)
        if verdict == "send":
            log.warning("alert", kind=alert.kind, title=title, body=body)
            if self._sender.enabled and not self._sender.send(
                Alert(alert.kind, alert.key, alert.severity, title, body), body
            ):
                fate = "dropped"
        self.metrics.alerts.labels(alert.kind, fate).inc()


def _delta_after(d: HedgeDecision | None, status: str, filled: float | None) -> float | None:
    if d is None:
        return None
    if status != "traded" or not d.trade_amount or filled is None:
        return d.delta_before
    return d.delta_before + d.trade_delta * (filled / d.trade_amount)
