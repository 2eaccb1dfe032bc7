"""Stop means stop: a stop request or a halt cancels our resting orders and records it; a
deleted or replaced ledger file, or a lost lease, stops the daemon."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from bot.app import App
from bot.clock import FakeClock
from bot.daemon import Daemon
from bot.domain import OrderRequest, OrderStatus, Side, TradingState
from bot.sentry import Sentry
from bot.store.identity import LedgerFile
from tests.support.books import NOW
from tests.support.harness import stack

PASSIVE = {
    "policy": {"delta_band": {"band": 0.2, "rebalance_to": "target"}},
    "hedge": {"target_delta": 0.3},
    "execution": {"urgent_band_multiple": 10, "reprice_seconds": 30},
}


class RealSleepClock(FakeClock):
    """Fake time that takes real time to sleep: a resting order waits long enough to be caught
    resting, and time (so the market) moves only when a sleep completes."""

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self.advance(seconds)


def daemon(app: App, *, cancel_on_stop: bool = True, **sentry: object) -> Daemon:
    guard = Sentry(app.ctx, ("BTC",), cancel_on_stop=cancel_on_stop, **sentry)  # type: ignore[arg-type]
    return Daemon(
        app.ctx, ("BTC",), 60, heartbeat_seconds=600, stop_grace_seconds=0.1, sentry=guard
    )


async def stop_once_an_order_rests(app: App, stop: asyncio.Event) -> None:
    for _ in range(500):  # bounded: 10 s at most
        if any(o.status is OrderStatus.OPEN for o in app.ledger.orders()):
            stop.set()
            return
        await asyncio.sleep(0.02)
    stop.set()


async def resting(app: App, label: str) -> None:
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


async def test_a_stop_request_mid_cycle_cancels_the_resting_order_and_records_why(
    tmp_path: Path,
) -> None:
    app = stack(tmp_path, clock=RealSleepClock(NOW), **PASSIVE)
    stop = asyncio.Event()
    watcher = asyncio.create_task(stop_once_an_order_rests(app, stop))
    stats = await asyncio.wait_for(daemon(app).run(stop), timeout=20)
    await watcher
    assert stats.abandoned == 1
    assert await app.venue.open_orders("BTC") == []
    (order,) = app.ledger.orders()
    assert order.status is OrderStatus.CANCELLED
    assert "daemon stopped: stop requested" in app.ledger.order_events(order.label)[-1].detail


async def test_with_cancel_on_stop_off_the_resting_order_is_left_working(tmp_path: Path) -> None:
    app = stack(tmp_path, clock=RealSleepClock(NOW), **PASSIVE)
    stop = asyncio.Event()
    watcher = asyncio.create_task(stop_once_an_order_rests(app, stop))
    await asyncio.wait_for(daemon(app, cancel_on_stop=False).run(stop), timeout=20)
    await watcher
    assert len(await app.venue.open_orders("BTC")) == 1


async def test_a_halt_set_by_another_process_cancels_resting_orders_and_records_it(
    tmp_path: Path,
) -> None:
    app = stack(tmp_path)
    await resting(app, "hb-rest-1")
    guard = Sentry(app.ctx, ("BTC",))
    assert await guard.check() is None
    assert len(await app.venue.open_orders("BTC")) == 1  # active: left working
    app.ledger.set_trading_state(TradingState.HALTED, "operator: market closed", app.clock.now())
    assert await guard.check() is None  # a halt does not stop the daemon, it stops trading
    assert await app.venue.open_orders("BTC") == []
    row = app.ledger.order("hb-rest-1")
    assert row is not None
    assert row.status is OrderStatus.CANCELLED
    detail = app.ledger.order_events("hb-rest-1")[-1].detail
    assert "trading halted (operator: market closed)" in detail


async def test_a_deleted_ledger_file_stops_the_daemon_before_any_cycle(tmp_path: Path) -> None:
    app = stack(tmp_path)
    watch = LedgerFile(app.ledger.engine)
    assert watch.path == (tmp_path / "paper.db").resolve()
    os.remove(tmp_path / "paper.db")
    stats = await asyncio.wait_for(daemon(app, ledger_file=watch).run(asyncio.Event()), 20)
    assert stats.cycles == 0
    assert stats.halted is not None
    assert "was deleted" in stats.halted


async def test_a_replaced_ledger_file_is_noticed(tmp_path: Path) -> None:
    app = stack(tmp_path)
    watch = LedgerFile(app.ledger.engine)
    assert watch.problem() is None
    (tmp_path / "other.db").write_bytes((tmp_path / "paper.db").read_bytes())
    os.replace(tmp_path / "other.db", tmp_path / "paper.db")
    problem = watch.problem()
    assert problem is not None
    assert "replaced" in problem


async def test_a_lease_lost_to_another_process_stops_the_daemon(tmp_path: Path) -> None:
    app = stack(tmp_path)
    clock = FakeClock(NOW)
    app.lease_clock = clock
    lease = app.lock()
    lease.acquire()
    clock.advance(3600)  # stalled past its expiry; another process takes the book
    other = app.lock()
    other.acquire()
    stats = await asyncio.wait_for(daemon(app, lease=lease).run(asyncio.Event()), 20)
    assert stats.cycles == 0
    assert stats.halted is not None
    assert "lease lost" in stats.halted
    other.release()
