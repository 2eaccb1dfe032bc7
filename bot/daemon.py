"""The daemon's loop: a state, a throttle, a heartbeat and a call to ``rebalance_once``.

Stopping is cooperative: SIGINT or SIGTERM sets an event; the sleep ends at once, a cycle in
flight gets ``stop_grace_seconds`` of wall time to finish and is then cancelled. A cancelled
cycle is safe to abandon because every order was recorded before it was sent and is resolved by
label at the next start.

A :class:`~bot.sentry.Sentry`, when given, is asked before and after every round of cycles
whether the daemon may go on (lease, ledger file) and cancels resting orders on a halt; every
stop ends with it cancelling what still rests.

With :class:`Events` (``daemon.events.enabled``), a stream of venue prices runs beside the
loop and its :class:`~bot.events.EventTrigger` may end a sleep early: the asked-for currencies
get a cycle at once, and the schedule's grid is not moved by it. Whatever the stream does
(silent, down, reconnecting), the schedule runs as it would without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from bot.clock import day_start
from bot.cycle import CycleContext, CycleResult, rebalance_once
from bot.domain import RebalanceStatus
from bot.events import Anchor, EventTrigger, anchor_of
from bot.heartbeat import day_figures
from bot.monitor import Monitor
from bot.reconcile import reconcile
from bot.sentry import Sentry

log = structlog.get_logger("hedgebot.daemon")


class PriceStream(Protocol):
    """A venue's price stream: calls ``on_price(currency, index)`` until ``stop`` is set."""

    async def run(self, on_price: Callable[[str, float], object], stop: asyncio.Event) -> None: ...


@dataclass
class Events:
    """The event-driven side: the trigger and the stream that feeds it (None: the stream
    session only keeps cancel-on-disconnect alive, no prices are watched)."""

    trigger: EventTrigger | None
    stream: PriceStream


@dataclass
class DaemonStats:
    cycles: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    abandoned: int = 0
    halted: str | None = None  # why the daemon stopped itself (lease lost, ledger replaced)
    event_cycles: int = 0  # cycles the event trigger asked for (also counted in ``cycles``)

    def count(self, result: CycleResult) -> None:
        self.cycles += 1
        self.by_status[result.status] = self.by_status.get(result.status, 0) + 1


class Daemon:
    def __init__(
        self,
        ctx: CycleContext,
        currencies: tuple[str, ...],
        schedule_seconds: float,
        heartbeat_seconds: float,
        stop_grace_seconds: float,
        sentry: Sentry | None = None,
        monitor: Monitor | None = None,
        events: Events | None = None,
    ) -> None:
        self._sentry = sentry
        self._events = events
        self._trigger = events.trigger if events is not None else None
        self._ctx = ctx
        self._monitor = monitor
        self._currencies = currencies
        self._every = schedule_seconds
        self._heartbeat = heartbeat_seconds
        self._grace = stop_grace_seconds
        self.stats = DaemonStats()
        self._last_beat = ctx.clock.now()
        self._until: datetime | None = None
        self._max_cycles: int | None = None

    async def run(
        self,
        stop: asyncio.Event,
        *,
        until: datetime | None = None,
        max_cycles: int | None = None,
    ) -> DaemonStats:
        self._until, self._max_cycles = until, max_cycles
        monitor = self._monitor
        if monitor:
            monitor.starting(self._currencies, self._every)
        try:
            started = await self._start_up(stop)
        except Exception as exc:
            if monitor:
                monitor.refused(str(exc))
            raise
        if not started:
            log.info("daemon_stopped_during_start_up")
            if monitor:
                monitor.stopped(True, "asked to stop during start-up", 0)
            return self.stats
        if monitor:
            monitor.reconciled()
        log.info("daemon_started", currencies=list(self._currencies), every_seconds=self._every)
        if self._sentry is not None:
            self._sentry.start(stop)
        streaming = self._start_stream()
        try:
            await self._loop(stop, until, max_cycles)
        finally:
            await self._stop_stream(streaming)
            if self._sentry is not None:
                why = self.stats.halted or ("stop requested" if stop.is_set() else "run ended")
                await self._sentry.stopped(why)
            if monitor:
                why = self.stats.halted or (
                    "asked to stop" if stop.is_set() else "end time or cycle count reached"
                )
                monitor.stopped(self.stats.halted is None, why, self.stats.cycles)
        log.info("daemon_stopped", cycles=self.stats.cycles, abandoned=self.stats.abandoned)
        return self.stats

    async def _start_up(self, stop: asyncio.Event) -> bool:
        """Reconcile every currency (raises: refuses to start); False when a stop request came
        first. Start-up may wait out ``unknown_grace_seconds`` per currency, so a signal must
        not wait for it: the reconcile is abandoned, which is as safe as abandoning a cycle
        (everything it does is by label and done again at the next start)."""
        for currency in self._currencies:
            task = asyncio.create_task(reconcile(self._ctx, currency))
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stopper
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                log.warning("start_up_abandoned", currency=currency)
                return False
            task.result()
        return True

    def _start_stream(self) -> tuple[asyncio.Task[None], asyncio.Event] | None:
        if self._events is None:
            return None
        quit_ = asyncio.Event()
        trigger = self._trigger
        on_price = trigger.on_price if trigger is not None else (lambda c, p: None)
        return asyncio.create_task(self._events.stream.run(on_price, quit_)), quit_

    async def _stop_stream(
        self, streaming: tuple[asyncio.Task[None], asyncio.Event] | None
    ) -> None:
        """Ends the stream's session after the sentry's last word: a cancel-on-disconnect
        session closing now has nothing of ours left to cancel, or cancels what still rests."""
        if streaming is None:
            return
        task, quit_ = streaming
        quit_.set()
        try:
            await asyncio.wait_for(task, timeout=self._grace)
        except TimeoutError:
            log.warning("stream_stop_timed_out")
        except Exception as exc:  # the stream never decides how the daemon ends
            log.warning("stream_failed", error=repr(exc))

    async def _guard(self) -> bool:
        """False when the sentry says the daemon must stop (recorded in ``stats.halted``)."""
        if self._sentry is None:
            return True
        why = await self._sentry.check()
        if why is not None:
            self.stats.halted = why
            log.error("daemon_halted", reason=why)
        return why is None

    async def _loop(
        self, stop: asyncio.Event, until: datetime | None, max_cycles: int | None
    ) -> None:
        clock = self._ctx.clock
        self._last_beat = tick = clock.now()
        while not stop.is_set() and await self._guard():
            if self._run_over():
                break
            if self._monitor:
                self._monitor.loop()
            for currency in self._currencies:
                result = await self._one(currency, stop, tick)
                if result is None:
                    break
                self._counted(currency, result)
            if not await self._guard() or self._run_over():
                break  # the last cycle of a bounded run: no sleep after it
            self._beat_if_due()
            tick = self._next_tick(tick, clock.now())
            wake = tick if until is None else min(tick, until)  # never sleep past the end
            if not await self._sleep(stop, (wake - clock.now()).total_seconds()):
                break

    def _run_over(self) -> bool:
        """The run's end time or cycle count is reached (event cycles count too)."""
        clock = self._ctx.clock
        if self._until is not None and clock.now() >= self._until:
            return True
        return self._max_cycles is not None and self.stats.cycles >= self._max_cycles

    def _counted(self, currency: str, result: CycleResult) -> None:
        """Count a finished cycle, tell the monitor, and anchor the event trigger on it."""
        self.stats.count(result)
        if self._monitor:
            e = result.execution
            self._monitor.cycle(
                currency,
                result.status,
                result.reason,
                result.greeks,
                result.decision,
                e.filled_amount if e else None,
            )
        if self._trigger is not None:
            self._trigger.anchor(currency, self._anchor(currency, result))

    def _anchor(self, currency: str, result: CycleResult) -> Anchor | None:
        traded = result.status == RebalanceStatus.TRADED
        e, d = result.execution, result.decision
        full = bool(e and d and math.isclose(e.filled_amount, d.trade_amount, abs_tol=1e-9))
        policy = self._ctx.settings.policy_for(currency)
        if result.status not in (RebalanceStatus.TRADED, RebalanceStatus.NO_TRADE):
            return None
        return anchor_of(
            result.greeks,
            d,
            traded=traded,
            filled_in_full=full,
            time_band=policy.kind == "time_band",
        )

    async def _event_cycles(self, stop: asyncio.Event) -> bool:
        """Run the cycles the trigger asks for; False when the daemon must stop."""
        trigger = self._trigger
        if trigger is None:
            return True
        for currency in trigger.due():
            if stop.is_set() or self._run_over() or not await self._guard():
                return False
            result = await self._one(currency, stop, self._ctx.clock.now())
            if result is None:
                return False
            self.stats.event_cycles += 1
            self._counted(currency, result)
        return True

    def _next_tick(self, tick: datetime, now: datetime) -> datetime:
        """The next due instant on the fixed grid ``start + k * every`` after ``tick``; a cycle
        that overran skips the ticks it missed rather than running them late in a burst."""
        every = timedelta(seconds=self._every)
        missed = max(0, math.ceil((now - tick) / every) - 1) if now > tick else 0
        if missed:
            log.warning("ticks_missed", missed=missed, every_seconds=self._every)
        return tick + every * (missed + 1)

    async def _one(self, currency: str, stop: asyncio.Event, due: datetime) -> CycleResult | None:
        """One cycle; on a stop request it gets the grace period, then it is abandoned."""
        task = asyncio.create_task(rebalance_once(self._ctx, currency, due=due))
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if task not in done:
            finished, _ = await asyncio.wait({task}, timeout=self._grace)
            if not finished:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                self.stats.abandoned += 1
                log.warning("cycle_abandoned", currency=currency)
                return None
        stopper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stopper
        try:
            return task.result()
        except Exception as exc:  # one bad cycle must not end the hedging
            log.exception("cycle_failed", currency=currency, error=repr(exc))
            return CycleResult("", currency, RebalanceStatus.FAILED, repr(exc))

    def _beat_if_due(self) -> None:
        """Log the heartbeat when ``heartbeat_seconds`` have passed since the last one."""
        clock = self._ctx.clock
        if (clock.now() - self._last_beat).total_seconds() < self._heartbeat:
            return
        self._last_beat = clock.now()
        try:
            day = day_figures(self._ctx.ledger, self._currencies, day_start(clock))
        except Exception as exc:  # the heartbeat must not stop the hedging
            day = {"day_figures_error": repr(exc)}
        log.info("heartbeat", cycles=self.stats.cycles, by_status=self.stats.by_status, **day)

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> bool:
        """Sleep to the next tick (a fixed rate, not a fixed gap), or until asked to stop; the
        heartbeat is due on its own interval, so the sleep wakes for it when it comes first,
        and so it does for the event trigger, whose cycles run inside the sleep. False when
        the daemon must stop."""
        clock = self._ctx.clock
        end = clock.now() + timedelta(seconds=seconds)
        while not stop.is_set():
            if not await self._event_cycles(stop) or self._run_over():
                return False
            left = (end - clock.now()).total_seconds()
            if left <= 0:
                return True
            to_beat = self._heartbeat - (clock.now() - self._last_beat).total_seconds()
            wait = min(left, max(to_beat, 0.0))
            deferred = self._trigger.next_deferred() if self._trigger is not None else None
            if deferred is not None:
                wait = min(wait, max((deferred - clock.now()).total_seconds(), 0.0))
            await self._sleep_once(stop, wait)
            self._beat_if_due()
        return True

    async def _sleep_once(self, stop: asyncio.Event, seconds: float) -> None:
        """A clock that cannot sleep (a simulated venue's clock whose venue is gone) ends the
        run: going on would run cycle after cycle at one instant. The trigger's ``wake`` ends
        the sleep early (events need the wall clock, whose sleep is safe to cut short)."""
        sleeper = asyncio.create_task(self._ctx.clock.sleep(seconds))
        stopper = asyncio.create_task(stop.wait())
        waiters = {sleeper, stopper}
        if self._trigger is not None:
            waiters.add(asyncio.create_task(self._trigger.wake.wait()))
        _, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for p in pending:
            p.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await p
        if sleeper.done() and not sleeper.cancelled():
            sleeper.result()


def install_signal_handlers(stop: asyncio.Event) -> None:
    """SIGINT and SIGTERM ask the loop to stop; a second SIGINT still just waits for the grace."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _request_stop, stop, sig)


def _request_stop(stop: asyncio.Event, sig: signal.Signals) -> None:
    log.info("stop_requested", signal=sig.name)
    stop.set()
