"""The daemon serves Prometheus metrics that agree with its ledger."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from bot.analysis.costs import fill_cost as report_fill_cost
from bot.clock import FakeClock
from bot.domain import Fill, Liquidity, OrderStatus, OrderType, Side, TimeInForce
from bot.monitor import Monitor
from bot.monitor.costs import fill_cost
from bot.monitor.metrics import Metrics
from bot.store.records import OrderRow
from tests.monitor.kit import monitored, scrape, value
from tests.support.books import NOW


async def test_a_scrape_during_and_after_a_simulated_run_matches_the_ledger(
    tmp_path: Path,
) -> None:
    clock = FakeClock(NOW)
    daemon, app, mon = monitored(tmp_path, clock)
    try:
        run = asyncio.create_task(daemon.run(asyncio.Event(), max_cycles=60))
        while mon.port is None:  # the listener opens before reconciliation
            await asyncio.sleep(0)
        during = await asyncio.to_thread(scrape, mon.port)
        await run
        after = await asyncio.to_thread(scrape, mon.port)
    finally:
        await app.close()

    cycles_during = sum(v for (n, _), v in during.items() if n == "hedgebot_cycles_total")
    assert 0 <= cycles_during <= 60

    ledger = app.ledger
    by_status = Counter(r.status.value for r in ledger.rebalances())
    assert by_status["traded"] >= 1
    for status, n in by_status.items():
        assert value(after, "hedgebot_cycles_total", currency="BTC", status=status) == n
    fills = ledger.fills()
    assert value(after, "hedgebot_fills_total", currency="BTC") == len(fills) > 0
    fees = sum(f.fee for f in fills)
    paid = value(after, "hedgebot_fees_coin_total", currency="BTC", kind="paid")
    rebate = value(after, "hedgebot_fees_coin_total", currency="BTC", kind="rebate")
    assert abs((paid - rebate) - fees) < 1e-12
    assert value(after, "hedgebot_traded_usd_total", currency="BTC") == sum(f.amount for f in fills)
    orders = Counter(o.status.value for o in ledger.orders())
    assert ledger.order_counts() == dict(orders)
    assert value(after, "hedgebot_orders_total", status="filled") == orders["filled"]
    assert value(after, "hedgebot_orders_unknown") == orders["unknown"] == 0

    snap = ledger.last_greeks_snapshot("BTC")
    assert snap is not None
    assert value(after, "hedgebot_delta_coin", currency="BTC") == snap.delta_coin
    assert value(after, "hedgebot_gamma_coin_per_usd", currency="BTC") == snap.gamma
    assert value(after, "hedgebot_vega_usd", currency="BTC") == snap.vega
    assert value(after, "hedgebot_hedge_position_usd", currency="BTC") == snap.hedge_position
    assert value(after, "hedgebot_trading_state", scope="global", state="active") == 1
    assert value(after, "hedgebot_trading_state", scope="global", state="halted") == 0
    assert value(after, "hedgebot_trading_state", scope="BTC", state="active") == 1
    last = ledger.last_rebalances(1)[0]
    assert value(after, "hedgebot_band_low_coin", currency="BTC") == last.band_low
    assert value(after, "hedgebot_band_high_coin", currency="BTC") == last.band_high
    # the run ends on the clock of its last cycle: the ages are those of that cycle
    assert value(after, "hedgebot_last_read_age_seconds", currency="BTC") == (
        (clock.now() - snap.ts).total_seconds()
    )
    assert value(after, "hedgebot_last_success_age_seconds", currency="BTC") >= 0


def test_request_latency_is_observed_per_method_through_the_timer_the_adapter_wraps(
    tmp_path: Path,
) -> None:
    ticks = iter([10.0, 10.25, 20.0, 20.002])
    clock = FakeClock(NOW)
    _, app, _ = monitored(tmp_path, clock)
    mon = Monitor(app.settings, app.ledger, clock, environ={}, timer=lambda: next(ticks))
    with mon.request_timer("create_order"):
        pass
    with mon.request_timer("get_positions"):
        pass
    reg = mon.metrics.registry
    name = "hedgebot_venue_request_duration_seconds"
    assert reg.get_sample_value(f"{name}_sum", {"method": "create_order"}) == 0.25
    assert reg.get_sample_value(f"{name}_count", {"method": "get_positions"}) == 1
    assert reg.get_sample_value(f"{name}_bucket", {"method": "get_positions", "le": "0.005"}) == 1


def test_two_monitors_keep_separate_registries() -> None:
    a, b = Metrics(FakeClock(NOW).now), Metrics(FakeClock(NOW).now)
    a.cycle("BTC", "traded")
    assert (
        a.registry.get_sample_value(
            "hedgebot_cycles_total", {"currency": "BTC", "status": "traded"}
        )
        == 1
    )
    assert (
        b.registry.get_sample_value(
            "hedgebot_cycles_total", {"currency": "BTC", "status": "traded"}
        )
        is None
    )


def test_the_monitor_costs_a_fill_exactly_as_the_cost_report_does() -> None:
    for side, price, fee_ccy, instrument, inverse in [
        (Side.BUY, 90_010.0, "BTC", "BTC-PERPETUAL", True),
        (Side.SELL, 89_990.0, "BTC", "BTC-PERPETUAL", True),
        (Side.BUY, 90_020.0, "USDC", "BTC_USDC-PERPETUAL", False),
    ]:
        fill = Fill(
            "t1",
            "o1",
            "hb-x-1",
            instrument,
            side,
            1000.0,
            price,
            -0.0001,
            fee_ccy,
            Liquidity.MAKER,
            NOW,
            index_price=90_000.0,
        )
        mine = fill_cost(fill, 90_000.0, "BTC", inverse)
        order = OrderRow(
            label="hb-x-1",
            cycle_id="c",
            rebalance_id=None,
            venue_order_id="o1",
            instrument=instrument,
            side=side,
            amount=1000.0,
            price=None,
            order_type=OrderType.LIMIT,
            post_only=True,
            reduce_only=False,
            time_in_force=TimeInForce.GTC,
            status=OrderStatus.FILLED,
            filled_amount=1000.0,
            average_price=price,
            decision_mid=90_000.0,
            created_at=NOW,
            updated_at=NOW,
        )
        theirs = report_fill_cost(fill, order, "BTC", inverse)
        assert mine.fee_coin == theirs.fee_coin
        assert mine.fee_usd == theirs.fee_usd
        assert abs((mine.slippage_usd or 0) - (theirs.slippage_usd or 0)) < 1e-9


def test_the_monitor_forgets_fills_older_than_its_reread_window_and_counts_each_once(
    tmp_path: Path,
) -> None:
    clock = FakeClock(NOW)
    _, app, _ = monitored(tmp_path, clock)
    mon = Monitor(app.settings, app.ledger, clock, environ={})

    def fill(n: int) -> Fill:
        return Fill(
            f"t{n}", f"o{n}", f"hb-x-{n}", "BTC-PERPETUAL", Side.BUY, 10.0, 90_000.0,
            0.0, "BTC", Liquidity.MAKER, clock.now(), index_price=90_000.0,
        )  # fmt: skip

    count = "hedgebot_fills_total"
    for n in range(3):
        app.ledger.record_fill(fill(n))
        mon.cycle("BTC", "no_trade", "inside the band", None, None, None)
        clock.advance(2 * 24 * 3600)  # two days: past the one-day re-read window
    assert mon.metrics.registry.get_sample_value(count, {"currency": "BTC"}) == 3
    assert len(mon._seen_fills) == 1  # only the newest is still inside the window
