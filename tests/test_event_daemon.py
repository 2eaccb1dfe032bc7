"""Event-driven hedging end to end: the daemon on the simulated venue over 127.0.0.1, its
stream through ccxt.pro. The venue's time moves only when a test moves it (``rig.move``), and
the daemon's schedule is an hour, so a cycle between two hours is the event trigger's doing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np

from bench.event_kit import EventRig, event_rig, wait_for
from bot.app import venue_connection
from bot.clock import SystemClock
from bot.config import Settings
from bot.domain import OrderRequest, OrderStatus, Side
from bot.events import Verdict
from bot.venues.deribit.streams import DeribitStreams, StreamPlan, build_stream_client

NARROW = {"policy": {"delta_band": {"band": 0.005}}}  # a one-minute move leaves this band
WIDE = {"policy": {"delta_band": {"band": 2.0}}}  # no one-minute move leaves this one


@asynccontextmanager
async def running(rig: EventRig) -> AsyncIterator[asyncio.Event]:
    """The daemon running until the block ends, after its first (scheduled) cycle."""
    stop = asyncio.Event()
    task = asyncio.create_task(rig.daemon.run(stop))
    try:
        await wait_for(lambda: rig.daemon.stats.cycles >= 1 or task.done(), what="first cycle")
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def connected(rig: EventRig) -> Callable[[], bool]:
    stream = rig.events.stream
    assert isinstance(stream, DeribitStreams)
    return stream.connected.is_set


async def test_a_price_move_past_the_band_runs_a_cycle_and_sends_an_order_without_the_schedule(
    tmp_path: Path,
) -> None:
    async with event_rig(tmp_path, **NARROW) as rig, running(rig):
        await wait_for(connected(rig), what="the stream")
        orders = rig.orders_sent()
        await rig.move(60)  # one market step; the schedule is an hour away
        await wait_for(lambda: rig.orders_sent() > orders, what="a hedge order")
        await wait_for(lambda: rig.daemon.stats.event_cycles >= 1, what="the event cycle")
        assert rig.daemon.stats.by_status.get("traded", 0) >= 1
        pushes = rig.app.pushes
        assert pushes is not None
        await wait_for(lambda: pushes.heard_count >= 1, what="the order's push")
    assert rig.daemon.stats.cycles == 1 + rig.daemon.stats.event_cycles


async def test_a_small_move_runs_no_event_cycle(tmp_path: Path) -> None:
    async with event_rig(tmp_path, **WIDE) as rig, running(rig):
        await wait_for(connected(rig), what="the stream")
        trigger = rig.events.trigger
        assert trigger is not None
        for _ in range(3):
            await rig.move(60)
        await wait_for(lambda: trigger.counts[Verdict.QUIET] >= 3, what="three quiet ticks")
        assert rig.daemon.stats.event_cycles == 0
        assert rig.daemon.stats.cycles == 1


async def test_a_burst_of_moves_inside_the_debounce_gap_runs_one_event_cycle(
    tmp_path: Path,
) -> None:
    gap = {"daemon": {"events": {"min_gap_seconds": 3600}}}  # the test's clock never gets there
    async with event_rig(tmp_path, **NARROW, **gap) as rig, running(rig):
        await wait_for(connected(rig), what="the stream")
        trigger = rig.events.trigger
        assert trigger is not None
        await rig.move(60)
        await wait_for(lambda: rig.daemon.stats.event_cycles >= 1, what="the event cycle")
        for _ in range(4):
            await rig.move(60)
        await wait_for(
            lambda: trigger.counts[Verdict.DEFER] + trigger.counts[Verdict.QUIET] >= 4,
            what="four more ticks judged",
        )
        assert trigger.counts[Verdict.DEFER] >= 1
        assert rig.daemon.stats.event_cycles == 1


class FlakyFactory:
    """Stream clients that cannot connect (a dead port) for the first ``failures`` sessions."""

    def __init__(self, settings: Settings, failures: int) -> None:
        self._good = venue_connection(settings)
        dead = self._good.model_copy(update={"url": "http://127.0.0.1:9"})  # discard: refused
        self._dead = dead
        self._left = failures

    def __call__(self) -> Any:
        if self._left > 0:
            self._left -= 1
            return build_stream_client(self._dead)
        return build_stream_client(self._good)


class Made:
    """A stream maker for the rig that keeps what it made, to look at its sessions."""

    def __init__(self, failures: int = 0, silence: float = 3600.0) -> None:
        self._failures = failures
        self._silence = silence
        self.stream: DeribitStreams | None = None

    def __call__(self, settings: Settings) -> DeribitStreams:
        plan = StreamPlan({"BTC-PERPETUAL": "BTC"}, False, self._silence, 0.05, 0.2)
        factory = FlakyFactory(settings, self._failures)
        self.stream = DeribitStreams(plan, factory, SystemClock(), np.random.default_rng(3))
        return self.stream


async def test_a_stream_that_cannot_connect_leaves_the_schedule_running_and_reconnects(
    tmp_path: Path,
) -> None:
    made = Made(failures=3)
    async with event_rig(tmp_path, stream=made, **NARROW) as rig, running(rig):
        stream = made.stream
        assert stream is not None
        await rig.move(3600)  # the schedule's next tick, while the stream may still be down
        await wait_for(lambda: rig.daemon.stats.cycles >= 2, what="a scheduled cycle")
        await wait_for(stream.connected.is_set, what="the reconnected stream")
        assert stream.drops >= 3
        assert stream.sessions >= 4
        before = rig.daemon.stats.event_cycles
        await rig.move(60)
        await wait_for(lambda: rig.daemon.stats.event_cycles > before, what="an event cycle")


async def test_a_dropped_session_reconnects_and_events_come_through_again(tmp_path: Path) -> None:
    made = Made()
    async with event_rig(tmp_path, stream=made, **NARROW) as rig, running(rig):
        stream = made.stream
        assert stream is not None
        await wait_for(stream.connected.is_set, what="the stream")
        assert await rig.server.hub.drop_connections() >= 1
        await wait_for(lambda: stream.sessions >= 2 and stream.connected.is_set(), what="reconnect")
        assert stream.drops >= 1
        before = rig.daemon.stats.event_cycles
        await rig.move(60)
        await wait_for(lambda: rig.daemon.stats.event_cycles > before, what="an event cycle")


async def test_a_silent_stream_is_reconnected_while_the_schedule_goes_on(tmp_path: Path) -> None:
    made = Made(silence=1.0)
    async with event_rig(tmp_path, stream=made, **WIDE) as rig, running(rig):
        stream = made.stream
        assert stream is not None
        # no move: the venue pushes nothing new, so after 1 s of silence the session is renewed
        await wait_for(lambda: stream.sessions >= 2, what="a renewed session")
        assert stream.drops >= 1
        await rig.move(3600)
        await wait_for(lambda: rig.daemon.stats.cycles >= 2, what="a scheduled cycle")


async def resting(rig: EventRig, label: str) -> None:
    app = rig.app
    quote = await app.venue.quote("BTC-PERPETUAL")
    req = OrderRequest(
        label=label,
        instrument_name="BTC-PERPETUAL",
        side=Side.BUY,
        amount=100,
        price=round(quote.bid * 0.95),
        post_only=True,
    )
    app.ledger.record_order(
        req, cycle_id=label, rebalance_id=None, decision_mid=None, ts=app.clock.now()
    )
    app.ledger.update_order(label, await app.venue.place_order(req), app.clock.now())


async def test_a_dropped_session_leaves_our_http_order_resting_and_the_next_cycle_cancels_it(
    tmp_path: Path,
) -> None:
    """Deribit's cancel-on-disconnect takes only orders created over that WebSocket connection
    (https://docs.deribit.com/api-reference/session-management/private-enable_cancel_on_disconnect);
    hedgebot sends its orders over HTTP, so they stay. The daemon does not count on it: its next
    cycle finds the order working and cancels it itself, recorded."""
    cod = {"daemon": {"cancel_on_disconnect": "on", "events": {"enabled": False}}}
    async with event_rig(tmp_path, **WIDE, **cod) as rig, running(rig):
        stream = rig.events.stream
        assert isinstance(stream, DeribitStreams)
        await wait_for(stream.connected.is_set, what="the session")
        await resting(rig, "hb-cod-1")
        await rig.server.hub.drop_connections()  # as if the daemon's connection died
        await asyncio.sleep(0.3)  # the venue would have cancelled by now; it must not
        assert await rig.open_labels() == ["hb-cod-1"]
        await rig.move(3600)  # the next scheduled cycle looks the order up
        await wait_for(lambda: rig.daemon.stats.cycles >= 2, what="a scheduled cycle")
        await wait_for(lambda: _none_open(rig), what="the daemon's cancel")
        row = rig.app.ledger.order("hb-cod-1")
        assert row is not None
        assert row.status is OrderStatus.CANCELLED


async def _none_open(rig: EventRig) -> bool:
    return await rig.open_labels() == []


async def test_a_run_of_one_cycle_ends_after_it_and_runs_no_event_cycle_past_its_count(
    tmp_path: Path,
) -> None:
    async with event_rig(tmp_path, **NARROW) as rig:
        stop = asyncio.Event()
        run = asyncio.create_task(rig.daemon.run(stop, max_cycles=1))
        try:
            await wait_for(lambda: rig.daemon.stats.cycles >= 1 or run.done(), what="a cycle")
            if not run.done():
                await rig.move(60)  # a move past the band while the run should be over
            stats = await asyncio.wait_for(asyncio.shield(run), 30)
        finally:
            stop.set()
            await asyncio.wait_for(run, 30)
        assert stats.cycles == 1
        assert stats.event_cycles == 0
