"""Order updates the venue pushes, by label: they end a resting order's wait early.

A post-only order rests for ``execution.reprice_seconds`` before the executor looks it up and
cancels the rest. With the venue's ``user.orders`` stream (Deribit:
https://docs.deribit.com/#user-orders-kind-currency-raw), a push saying the order has ended
(filled, cancelled, rejected) ends that wait at once; the executor then reads the order over
REST as it always does, so the ledger's record still comes from the venue's REST answer and a
missed push only costs the wait it would have saved.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable

ENDED = frozenset({"filled", "cancelled", "canceled", "rejected", "closed", "expired"})
_RECENT = 1_000  # labels remembered that ended before anyone waited on them


class OrderPushes:
    """Pushed order states by label; see the module docstring."""

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Event] = {}
        self._recent: deque[str] = deque(maxlen=_RECENT)
        self.heard_count = 0

    def heard(self, label: object, state: object) -> None:
        """A pushed order: its label and Deribit ``order_state`` (or ccxt's status)."""
        if not isinstance(label, str) or not isinstance(state, str):
            return
        self.heard_count += 1
        if state.lower() not in ENDED:
            return
        self._recent.append(label)
        waiting = self._waiting.get(label)
        if waiting is not None:
            waiting.set()

    async def rest(self, label: str, sleep: Callable[[], Awaitable[None]]) -> bool:
        """Await ``sleep()`` unless a push says ``label`` ended first; True when a push did."""
        if label in self._recent:
            return True
        ended = self._waiting.setdefault(label, asyncio.Event())
        sleeper = asyncio.ensure_future(sleep())
        waiter = asyncio.ensure_future(ended.wait())
        try:
            await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._waiting.pop(label, None)
            for task in (sleeper, waiter):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        if sleeper.done() and not sleeper.cancelled():
            sleeper.result()
        return waiter.done() and not waiter.cancelled()
