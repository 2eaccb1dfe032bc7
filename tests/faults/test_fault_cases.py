"""Named faults, each on the paper venue behind a faulty front, on a fake clock, with every
invariant checked after every cycle (see ``kit.check_invariants``)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bot.domain import OrderRequest, OrderStatus, OrderType, Side, TimeInForce, TradingState
from bot.lock import BookLocked
from tests.faults.kit import Faults, World

IOC_ONLY = {"execution": {"post_only": False}}


def world(tmp_path: Path, *, seed: int = 0, **script: int) -> World:
    return World(tmp_path, Faults(seed=seed, script=Counter(script)), **IOC_ONLY)


def labels_at_venue(w: World) -> list[str]:
    return sorted(o.label for o in w.truth._orders.values())


async def run(w: World, cycles: int) -> None:
    for _ in range(cycles):
        await w.cycle()


async def test_submit_timed_out_after_the_venue_accepted_then_no_second_order(
    tmp_path: Path,
) -> None:
    w = world(tmp_path, accept_then_timeout=1)
    first = await w.cycle()
    assert first is not None
    assert first.execution is not None
    label = first.execution.label
    assert labels_at_venue(w).count(label) == 1
    row = w.ledger.order(label)
    assert row is not None
    assert row.status is OrderStatus.FILLED
    await run(w, 3)


async def test_submit_timed_out_before_the_venue_accepted_is_written_off_only_after_the_grace(
    tmp_path: Path,
) -> None:
    w = world(tmp_path, timeout_before_accept=1)
    first = await w.cycle()
    assert first is not None
    assert first.execution is not None
    assert first.execution.status is OrderStatus.UNKNOWN
    label = first.execution.label
    second = await w.cycle()  # 300 s later: the grace (60 s) has passed
    row = w.ledger.order(label)
    assert row is not None
    assert row.status is OrderStatus.REJECTED
    assert label not in labels_at_venue(w)
    assert second is not None
    assert second.status == "traded"


async def test_an_order_visible_only_after_several_look_ups_is_found_without_a_resend(
    tmp_path: Path,
) -> None:
    w = world(tmp_path, accept_then_timeout=1, hidden=1)
    w.faults.hide_for = 3
    first = await w.cycle()
    assert first is not None
    assert first.execution is not None
    assert first.execution.status is OrderStatus.FILLED
    assert len(w.truth._orders) == 1
    await run(w, 2)


async def test_a_fill_seen_before_the_order_is_ever_acknowledged_settles_it_from_its_trades(
    tmp_path: Path,
) -> None:
    w = world(tmp_path, accept_then_timeout=1, hidden=1)
    w.faults.hide_for = -1  # never visible by look-up; its trade is
    first = await w.cycle()
    assert first is not None
    assert first.execution is not None
    assert first.execution.status is OrderStatus.UNKNOWN
    label = first.execution.label
    await w.cycle()
    row = w.ledger.order(label)
    assert row is not None
    assert row.status is OrderStatus.FILLED
    assert labels_at_venue(w).count(label) == 1
    await run(w, 2)


async def test_a_definitive_reject_is_recorded_and_the_rest_goes_on(tmp_path: Path) -> None:
    w = world(tmp_path, reject=1)
    first = await w.cycle()
    assert first is not None
    assert first.execution is not None
    rejected = [o for o in w.ledger.orders() if o.status is OrderStatus.REJECTED]
    assert len(rejected) == 1
    assert rejected[0].label not in labels_at_venue(w)
    await run(w, 2)


async def test_a_rate_limit_burst_sends_nothing_twice(tmp_path: Path) -> None:
    w = world(tmp_path, rate_limited=4)
    await run(w, 6)
    assert len(set(labels_at_venue(w))) == len(labels_at_venue(w))


async def test_a_partial_fill_then_cancel_records_the_part(tmp_path: Path) -> None:
    w = World(
        tmp_path,
        Faults(),
        execution={"post_only": False, "slippage_cap_bps": 0.5},
        market={"depth_usd": 100.0},
        hedge={"target_delta": 3.0},
    )
    await w.cycle()
    parts = [
        o
        for o in w.ledger.orders()
        if o.status is OrderStatus.CANCELLED and 0 < o.filled_amount < o.amount
    ]
    assert parts, [(o.status, o.filled_amount, o.amount) for o in w.ledger.orders()]
    await run(w, 2)


async def test_a_venue_reporting_less_filled_than_the_ledger_does_not_double_the_hedge(
    tmp_path: Path,
) -> None:
    w = World(
        tmp_path,
        Faults(script=Counter(accept_then_timeout=1, understate=1)),
        execution={"post_only": False, "allow_market": True},
    )
    first = await w.cycle()
    assert first is not None
    assert first.decision is not None
    assert first.execution is not None
    traded = sum(f.amount for f in w.ledger.fills())
    assert traded == pytest.approx(abs(first.decision.trade_amount))
    assert len(w.truth._orders) == 1  # no market order for the "unfilled" rest
    await run(w, 2)


async def test_a_crash_after_the_decision_is_recorded_sends_nothing_and_the_restart_goes_on(
    tmp_path: Path,
) -> None:
    w = world(tmp_path, crash_before_send=1)
    assert await w.cycle() is None
    assert w.crashes == 1
    assert w.truth._orders == {}
    await run(w, 3)
    assert any(r is not None and r.status == "traded" for r in w.results[1:])


async def test_a_crash_after_send_is_recovered_by_label_with_one_order(tmp_path: Path) -> None:
    w = world(tmp_path, crash_after_send=1)
    assert await w.cycle() is None
    (pending,) = w.ledger.open_orders()
    await w.cycle()
    row = w.ledger.order(pending.label)
    assert row is not None
    assert row.status is OrderStatus.FILLED
    assert labels_at_venue(w).count(pending.label) == 1
    await run(w, 2)


async def test_a_crash_after_a_fill_before_it_was_recorded_records_it_once(
    tmp_path: Path,
) -> None:
    w = world(tmp_path, crash_after_fill=1)
    assert await w.cycle() is None
    assert w.ledger.fills() == []
    await run(w, 3)
    assert len(w.ledger.fills()) == len({f.trade_id for f in w.ledger.fills()}) >= 1


async def test_the_venue_restarting_and_forgetting_closed_orders_loses_no_fill(
    tmp_path: Path,
) -> None:
    w = world(tmp_path, crash_after_send=1)
    assert await w.cycle() is None  # an order sent, its outcome not recorded
    w.faults.forget_closed = True  # and the venue restarted: closed orders are gone
    await run(w, 3)
    assert all(o.status.terminal for o in w.ledger.orders())


async def test_orders_and_positions_the_ledger_does_not_know(tmp_path: Path) -> None:
    w = world(tmp_path)
    await w.cycle()
    quote = await w.truth.quote("BTC-PERPETUAL")
    stray = OrderRequest(
        label=w.app.ctx.executor.labels.make("0123456789abcdef", 1),  # ours, lost from the ledger
        instrument_name="BTC-PERPETUAL",
        side=Side.SELL,
        amount=100,
        price=round(quote.ask * 1.2),
        post_only=True,
    )
    await w.truth.place_order(stray)  # sent before a restart, then lost from the ledger
    w.clock.advance(1)
    w.restart()
    await w.cycle()
    assert await w.truth.open_orders("BTC") == []  # our ledger's id, unknown: cancelled
    manual = OrderRequest(
        label="manual",
        instrument_name="BTC-PERPETUAL",
        side=Side.BUY,
        amount=1000,
        order_type=OrderType.MARKET,
        time_in_force=TimeInForce.IOC,
    )
    await w.truth.place_order(manual)
    placed = w.venue.placed
    result = await w.cycle(check=False)
    assert result is not None
    assert result.status == "skipped"
    assert w.ledger.get_trading_state().state is TradingState.HALTED
    await w.cycle(check=False)
    assert w.venue.placed == placed
    await w.check(position=False)


async def test_the_database_failing_before_send_sends_nothing(tmp_path: Path) -> None:
    w = world(tmp_path, db_before_send=1)
    assert await w.cycle() is None
    assert w.truth._orders == {}
    await run(w, 2)


async def test_the_database_failing_after_send_is_resolved_next_cycle(tmp_path: Path) -> None:
    w = world(tmp_path, db_after_send=1)
    assert await w.cycle() is None
    assert len(w.truth._orders) == 1
    await run(w, 2)
    assert all(o.status.terminal for o in w.ledger.orders())


async def test_a_one_shot_rebalance_beside_a_running_daemon_is_refused(tmp_path: Path) -> None:
    w = world(tmp_path)
    daemon = w.app.lock()
    daemon.acquire()
    await w.cycle()
    placed = w.venue.placed
    oneshot = w.process(mode="oneshot")  # another process on the same ledger and venue
    with pytest.raises(BookLocked, match="daemon pid"):
        oneshot.lock().acquire()
    assert w.venue.placed == placed
    daemon.release()


async def test_a_partly_filled_order_the_restarted_venue_forgot_ends_cancelled_with_its_part(
    tmp_path: Path,
) -> None:
    w = World(
        tmp_path,
        Faults(script=Counter(crash_after_send=1)),
        execution={"post_only": False, "slippage_cap_bps": 0.5},
        market={"depth_usd": 100.0},
        hedge={"target_delta": 3.0},
    )
    assert await w.cycle() is None  # sent, partly filled, outcome never recorded
    w.faults.forget_closed = True
    (pending,) = w.ledger.open_orders()
    await run(w, 2)
    row = w.ledger.order(pending.label)
    assert row is not None
    assert row.status is OrderStatus.CANCELLED
    assert 0 < row.filled_amount < row.amount


async def test_an_acknowledged_order_that_closed_unfilled_and_was_forgotten_ends_cancelled(
    tmp_path: Path,
) -> None:
    """Deribit keeps a closed order readable for 30 minutes: one that closed unfilled while no
    hedgebot ran is gone from every order read. Absent from the open orders past the grace,
    with no trade, it closed with nothing filled; it must not block every later cycle."""
    w = World(tmp_path, Faults())
    await w.cycle()
    quote = await w.truth.quote("BTC-PERPETUAL")
    label = w.app.ctx.executor.labels.make("0123456789abcdef", 1)
    resting = OrderRequest(
        label=label,
        instrument_name="BTC-PERPETUAL",
        side=Side.BUY,
        amount=100,
        price=round(quote.bid * 0.8),
        post_only=True,
    )
    now = w.clock.now()
    w.ledger.record_order(resting, cycle_id="c", rebalance_id=None, decision_mid=None, ts=now)
    placed = await w.truth.place_order(resting)
    w.ledger.update_order(label, placed, now)  # acknowledged, then the process died
    await w.truth.cancel_order(placed.venue_order_id)  # closed at the venue, nothing filled
    w.faults.forget_closed = True  # and long enough ago that no order read shows it
    w.restart()
    await run(w, 2)
    row = w.ledger.order(label)
    assert row is not None
    assert row.status is OrderStatus.CANCELLED
    assert row.filled_amount == 0
    assert w.ledger.open_orders() == []
