"""The daemon's loop: a state, a throttle, a heartbeat and a call to ``rebalance_once``.

Stopping is cooperative: SIGINT or SIGTERM sets an event; the sleep ends at once, a cycle in
flight gets ``stop_grace_seconds`` of wall time to finish and is then cancelled. A cancelled
cycle is safe to abandon because every order was recorded before it was sent and is resolved by
label at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from bot.clock import day_start
from bot.cycle import CycleContext, CycleResult, rebalance_once
from bot.domain import RebalanceStatus
from bot.heartbeat import day_figures
from bot.reconcile import reconcile

log = structlog.get_logger("hedgebot.daemon")


@dataclass
class DaemonStats:
    cycles: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    abandoned: int = 0

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
    ) -> None:
        self._ctx = ctx
        self._currencies = currencies
        self._every = schedule_seconds
        self._heartbeat = heartbeat_seconds
        self._grace = stop_grace_seconds
        self.stats = DaemonStats()
        self._last_beat = ctx.clock.now()

    async def run(
        self,
        stop: asyncio.Event,
        *,
        until: datetime | None = None,
        max_cycles: int | None = None,
    ) -> DaemonStats:
        clock = self._ctx.clock
        for currency in self._currencies:
            await reconcile(self._ctx, currency)  # refuses to start on failure
        log.info("daemon_started", currencies=list(self._currencies), every_seconds=self._every)
        self._last_beat = clock.now()
        while not stop.is_set():
            started = clock.now()
            if until is not None and clock.now() >= until:
                break
            if max_cycles is not None and self.stats.cycles >= max_cycles:
                break
            for currency in self._currencies:
                result = await self._one(currency, stop)
                if result is None:
                    break
                self.stats.count(result)
            self._beat_if_due()
            elapsed = (clock.now() - started).total_seconds()
            await self._sleep(stop, max(0.0, self._every - elapsed))
        log.info("daemon_stopped", cycles=self.stats.cycles, abandoned=self.stats.abandoned)
        return self.stats

    async def _one(self, currency: str, stop: asyncio.Event) -> CycleResult | None:
        """One cycle; on a stop request it gets the grace period, then it is abandoned."""
        task = asyncio.create_task(rebalance_once(self._ctx, currency))
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

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> None:
        """Sleep to the next tick (a fixed rate, not a fixed gap), or until asked to stop; the
        heartbeat is due on its own interval, so the sleep wakes for it when it comes first."""
        clock = self._ctx.clock
        end = clock.now() + timedelta(seconds=seconds)
        while not stop.is_set():
            left = (end - clock.now()).total_seconds()
            if left <= 0:
                return
            to_beat = self._heartbeat - (clock.now() - self._last_beat).total_seconds()
            await self._sleep_once(stop, min(left, max(to_beat, 0.0)))
            self._beat_if_due()

    async def _sleep_once(self, stop: asyncio.Event, seconds: float) -> None:
        sleeper = asyncio.create_task(self._ctx.clock.sleep(seconds))
        stopper = asyncio.create_task(stop.wait())
        _, pending = await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for p in pending:
            p.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await p


def install_signal_handlers(stop: asyncio.Event) -> None:
    """SIGINT and SIGTERM ask the loop to stop; a second SIGINT still just waits for the grace."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _request_stop, stop, sig)


def _request_stop(stop: asyncio.Event, sig: signal.Signals) -> None:
    log.info("stop_requested", signal=sig.name)
    stop.set()
