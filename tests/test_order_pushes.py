"""Order pushes end a resting order's wait early; the REST answer still decides its outcome."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.clock import FakeClock
from bot.config import hedge_instruments
from bot.domain import OrderRequest, OrderStatus, Side
from bot.execution import Executor
from bot.order_pushes import OrderPushes
from tests.support.books import NOW
from tests.support.harness import stack


class StuckClock(FakeClock):
    """Fake time whose sleeps never end by themselves (only cancellation ends them)."""

    async def sleep(self, seconds: float) -> None:
        await asyncio.Event().wait()


async def test_a_push_that_the_order_ended_ends_the_wait() -> None:
    pushes = OrderPushes()
    waiting = asyncio.create_task(pushes.rest("hb-1", lambda: asyncio.Event().wait()))
    await asyncio.sleep(0)
    pushes.heard("hb-1", "open")
    await asyncio.sleep(0)
    assert not waiting.done()
    pushes.heard("hb-1", "filled")
    assert await asyncio.wait_for(waiting, 5) is True


async def test_a_push_heard_before_the_wait_began_still_ends_it() -> None:
    pushes = OrderPushes()
    pushes.heard("hb-2", "cancelled")
    assert await asyncio.wait_for(pushes.rest("hb-2", lambda: asyncio.Event().wait()), 5)


async def test_the_wait_runs_its_course_without_a_push() -> None:
    pushes = OrderPushes()
    assert await pushes.rest("hb-3", lambda: asyncio.sleep(0.01)) is False


def test_pushes_without_a_label_or_state_are_ignored() -> None:
    pushes = OrderPushes()
    pushes.heard(None, "filled")
    pushes.heard("hb-4", None)
    assert pushes.heard_count == 0


async def test_a_pushed_fill_ends_the_wait_but_the_venues_rest_answer_decides_the_outcome(
    tmp_path: Path,
) -> None:
    clock = StuckClock(NOW)
    app = stack(tmp_path, clock=clock)
    pushes = OrderPushes()
    executor = Executor(
        app.venue,
        app.ledger,
        clock,
        app.settings.execution,
        app.settings.venue.label_prefix,
        instruments=hedge_instruments(app.settings.venue.facts),
        pushes=pushes,
    )
    quote = await app.venue.quote("BTC-PERPETUAL")
    req = OrderRequest(
        label="hb-push-1",
        instrument_name="BTC-PERPETUAL",
        side=Side.BUY,
        amount=100,
        price=round(quote.bid * 0.95),
        post_only=True,
    )
    state = await app.venue.place_order(req)
    assert state.status is OrderStatus.OPEN
    waiting = asyncio.create_task(executor.wait_and_cancel("BTC", state))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # the clock alone would wait for ever
    pushes.heard("hb-push-1", "filled")  # a push that is wrong: the order still rests
    final = await asyncio.wait_for(waiting, 10)
    assert final.status is OrderStatus.CANCELLED  # REST said open, so it was cancelled
    assert await app.venue.open_orders("BTC") == []
