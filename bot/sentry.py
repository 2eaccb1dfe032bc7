"""The daemon's right to trade, checked around every cycle, and what stopping does.

- The book lease is renewed every cycle and, on the lease's own (wall) clock, every third of
  its length even while the daemon sleeps; a lease lost to another process stops the daemon.
- A SQLite ledger whose file was deleted or replaced stops the daemon.
- While trading is halted (by command or automatically) our resting orders are cancelled, and
  every stop (SIGTERM, end of run, a halt above) cancels them once more; each cancellation is
  recorded on the order in the ledger (``daemon.cancel_on_stop``, on by default).
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from bot.cycle import CycleContext
from bot.domain import TradingState
from bot.lock import BookLease, LeaseLost
from bot.store.identity import LedgerFile

log = structlog.get_logger("hedgebot.sentry")


class Sentry:
    def __init__(
        self,
        ctx: CycleContext,
        currencies: tuple[str, ...],
        *,
        lease: BookLease | None = None,
        ledger_file: LedgerFile | None = None,
        cancel_on_stop: bool = True,
    ) -> None:
        self._ctx = ctx
        self._currencies = currencies
        self._lease = lease
        self._file = ledger_file
        self._cancel = cancel_on_stop
        self.fatal: str | None = None
        self._keeper: asyncio.Task[None] | None = None

    def start(self, stop: asyncio.Event) -> None:
        """Renew the lease in the background, so a long sleep never lets it expire."""
        if self._lease is not None:
            self._keeper = asyncio.create_task(self._keep(self._lease, stop))

    async def _keep(self, lease: BookLease, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await lease.clock.sleep(lease.renew_every)
            try:
                lease.renew()
            except LeaseLost as exc:
                self.fatal = f"lease lost: {exc}"
                log.error("lease_lost", error=str(exc))
                stop.set()
            except Exception as exc:  # the database blinked: the next renewal tries again
                log.warning("lease_renewal_failed", error=repr(exc))

    async def check(self) -> str | None:
        """A reason the daemon must stop now, or None; cancels resting orders while halted."""
        if self.fatal is not None:
            return self.fatal
        problem = self._file.problem() if self._file is not None else None
        if problem is not None:
            self.fatal = problem
            return problem
        if self._lease is not None:
            try:
                self._lease.renew()
            except LeaseLost as exc:
                self.fatal = f"lease lost: {exc}"
                return self.fatal
            except Exception as exc:  # the database blinked; the lease has slack until expiry
                log.warning("lease_renewal_failed", error=repr(exc))
        try:
            state = self._ctx.ledger.get_trading_state()
        except Exception as exc:  # the cycle will fail on the same database and say so
            log.warning("trading_state_unreadable", error=repr(exc))
            return None
        if state.state is TradingState.HALTED:
            await self.cancel_resting(f"trading halted ({state.reason})")
        return None

    async def cancel_resting(self, reason: str) -> list[str]:
        """Cancel our resting orders in every currency (when configured); never raises."""
        if not self._cancel:
            return []
        done: list[str] = []
        for currency in self._currencies:
            try:
                done += await self._ctx.executor.cancel_resting(currency, reason)
            except Exception as exc:  # stopping must go on; the next start re-adopts them
                log.error("cancel_on_stop_failed", currency=currency, error=repr(exc))
        return done

    async def stopped(self, reason: str) -> None:
        """The daemon is stopping: cancel what rests, stop renewing."""
        cancelled = await self.cancel_resting(f"daemon stopped: {reason}")
        log.info("daemon_stop_cancelled", orders=cancelled, reason=reason)
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
