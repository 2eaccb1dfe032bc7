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
from datetime import datetime

import structlog

from bot.cycle import CycleContext, CycleResult, rebalance_once
from bot.monitor import Monitor
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
        monitor: Monitor | None = None,
    ) -> None:
        self._ctx = ctx
        self._monitor = monitor
        self._currencies = currencies
        self._every = schedule_seconds
        self._heartbeat = heartbeat_seconds
        self._grace = stop_grace_seconds
        self.stats = DaemonStats()

    async def run(
        self,
        stop: asyncio.Event,
        *,
        until: datetime | None = None,
        max_cycles: int | None = None,
    ) -> DaemonStats:
        clock = self._ctx.clock
        monitor = self._monitor
        if monitor:
            monitor.starting(self._currencies, self._every)
        try:
            for currency in self._currencies:
                await reconcile(self._ctx, currency)  # refuses to start on failure
        except Exception as exc:
            if monitor:
                monitor.refused(str(exc))
            raise
        if monitor:
            monitor.reconciled()
        log.info("daemon_started", currencies=list(self._currencies), every_seconds=self._every)
        last_beat = clock.now()
        while not stop.is_set():
            started = clock.now()
            if until is not None and clock.now() >= until:
                break
            if max_cycles is not None and self.stats.cycles >= max_cycles:
                break
            if monitor:
                monitor.loop()
            for currency in self._currencies:
                result = await self._one(currency, stop)
                if result is None:
                    break
                self.stats.count(result)
                if monitor:
                    e = result.execution
                    monitor.cycle(
                        currency,
                        result.status,
                        result.reason,
                        result.greeks,
                        result.decision,
                        e.filled_amount if e else None,
                    )
            if (clock.now() - last_beat).total_seconds() >= self._heartbeat:
                last_beat = clock.now()
                log.info("heartbeat", cycles=self.stats.cycles, by_status=self.stats.by_status)
            elapsed = (clock.now() - started).total_seconds()
            await self._sleep(stop, max(0.0, self._every - elapsed))
        if monitor:
            why = "asked to stop" if stop.is_set() else "end time or cycle count reached"
            monitor.stopped(True, why, self.stats.cycles)
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
            return CycleResult("", currency, "failed", repr(exc))

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> None:
        """Sleep to the next tick (a fixed rate, not a fixed gap), or until asked to stop."""
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
