"""The simulated server's fault plan: seeded and replayable, and each fault doing to the real
ccxt client what a bad day at Deribit does."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import ccxt.async_support as ccxt
import pytest

from bot.sim.faults import FaultSchedule, WireFaultPlan
from bot.venues.paper.matching import round_down
from tests.support.sim_server_kit import (
    KEY,
    PERP,
    PERP_SYMBOL,
    SECRET,
    ccxt_client,
    raw_get,
    running,
)


def _draws(
    plan: WireFaultPlan, n: int, order_every: int = 3
) -> list[tuple[float, bool, bool, bool, bool]]:
    schedule = FaultSchedule(plan)
    out = []
    for i in range(n):
        f = schedule.next(is_order=i % order_every == 0)
        out.append((f.latency_s, f.error_5xx, f.rate_limited, f.drop_reply, f.partial_fill))
    return out


def test_same_seed_replays_the_same_faults_and_another_seed_does_not() -> None:
    plan = WireFaultPlan(
        seed=5, latency_ms=(1, 50), error_5xx=0.2, rate_limit_burst=0.1, accept_then_drop=0.3
    )
    assert _draws(plan, 200) == _draws(plan, 200)
    assert _draws(plan, 200) != _draws(WireFaultPlan(**{**plan.__dict__, "seed": 6}), 200)


def test_switching_other_faults_on_leaves_the_latency_draws_unchanged() -> None:
    latency_only = WireFaultPlan(seed=9, latency_ms=(0, 100))
    everything = WireFaultPlan(
        seed=9, latency_ms=(0, 100), error_5xx=0.3, accept_then_drop=0.3, rate_limit_burst=0.1
    )
    assert [d[0] for d in _draws(latency_only, 300)] == [d[0] for d in _draws(everything, 300)]
    assert any(d[1] for d in _draws(everything, 300))
    assert any(d[3] for d in _draws(everything, 300))


def test_request_numbers_fire_exactly_there() -> None:
    schedule = FaultSchedule(WireFaultPlan(error_5xx=(2, 5), accept_then_drop=(2,)))
    fired = [schedule.next(is_order=True) for _ in range(6)]
    assert [f.error_5xx for f in fired] == [False, True, False, False, True, False]
    assert [f.order_number for f in fired] == [1, None, 2, 3, None, 4]
    assert [f.drop_reply for f in fired] == [False, False, True, False, False, False]


def test_a_rate_limit_burst_lasts_its_length() -> None:
    schedule = FaultSchedule(WireFaultPlan(rate_limit_burst=(3,), rate_limit_burst_length=4))
    limited = [schedule.next(is_order=False).rate_limited for _ in range(9)]
    assert limited == [False, False, True, True, True, True, False, False, False]


def test_latency_is_drawn_within_its_range() -> None:
    schedule = FaultSchedule(WireFaultPlan(seed=1, latency_ms=(20, 40)))
    latencies = [schedule.next(is_order=False).latency_s for _ in range(100)]
    assert all(0.020 <= s <= 0.040 for s in latencies)
    assert max(latencies) - min(latencies) > 0.01


@pytest.mark.parametrize(
    "bad",
    [
        {"latency_ms": (5, 1)},
        {"error_5xx": 1.5},
        {"accept_then_drop": (0, 2)},
        {"partial_fill_ratio": 1.0},
        {"visibility_delay_s": -1},
        {"rate_limit_burst_length": 0},
        {"drop_mode": "vanish"},
    ],
)
def test_a_plan_with_impossible_settings_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="WireFaultPlan"):
        WireFaultPlan(**bad)  # type: ignore[arg-type]


async def test_latency_is_slept_through_the_given_sleeper() -> None:
    slept: list[float] = []

    async def sleeper(seconds: float) -> None:
        slept.append(seconds)

    plan = WireFaultPlan(seed=3, latency_ms=(100, 200))
    async with running(fault_plan=plan, sleeper=sleeper) as sim:
        status, _ = await raw_get(sim, "public/get_time")
    assert status == 200
    assert [s for s in slept if 0.1 <= s <= 0.2], "the request waited its drawn latency"


async def test_order_accepted_then_connection_closed_exists_and_is_found_by_label() -> None:
    # aiohttp re-sends a GET once when a pooled connection drops, so drop both sends
    plan = WireFaultPlan(accept_then_drop=(1, 2), drop_mode="close")
    async with running(fault_plan=plan) as sim, ccxt_client(sim) as ex:
        await ex.load_markets()
        with pytest.raises(ccxt.NetworkError):
            await ex.create_order(PERP_SYMBOL, "market", "buy", 100, None, {"label": "lost-1"})
        found = await ex.privateGetGetOrderStateByLabel({"currency": "BTC", "label": "lost-1"})
        orders = found["result"]
        assert orders
        assert all(o["order_state"] == "filled" for o in orders)
        positions = {p["symbol"]: p["contracts"] for p in await ex.fetch_positions()}
        assert positions[PERP_SYMBOL] == 100 * len(orders), "orders took effect without a reply"
        again = await ex.create_order(PERP_SYMBOL, "market", "buy", 10, None, {"label": "next"})
        assert again["status"] == "closed", "only the planned orders lose their reply"


async def test_a_closed_connection_after_accept_makes_ccxt_resend_the_order() -> None:
    # ccxt sends buy as a GET and aiohttp retries an idempotent request once on a dropped
    # pooled connection: the client sees success while the venue holds two orders
    plan = WireFaultPlan(accept_then_drop=(1,), drop_mode="close")
    async with running(fault_plan=plan) as sim, ccxt_client(sim) as ex:
        await ex.load_markets()
        placed = await ex.create_order(PERP_SYMBOL, "market", "buy", 100, None, {"label": "dup"})
        found = await ex.privateGetGetOrderStateByLabel({"currency": "BTC", "label": "dup"})
    assert placed["status"] == "closed"
    assert len(found["result"]) == 2


async def test_order_accepted_then_held_times_out_in_the_client_and_rests_in_the_engine() -> None:
    plan = WireFaultPlan(accept_then_drop=(1,), drop_mode="hold", hold_seconds=30)
    # The client gives up long before the 30 s hold, yet leaves every honest read seconds:
    # a 300 ms budget timed out load_markets on a loaded 2-core machine.
    async with running(fault_plan=plan) as sim, ccxt_client(sim, timeout_ms=3000) as ex:
        await ex.load_markets()
        book = await ex.fetch_order_book(PERP_SYMBOL)
        price = book["bids"][0][0] - 10
        with pytest.raises(ccxt.RequestTimeout):
            await ex.create_order(PERP_SYMBOL, "limit", "buy", 40, price, {"label": "held"})
        (resting,) = await ex.fetch_open_orders(PERP_SYMBOL)
        assert resting["info"]["label"] == "held"
        assert resting["price"] == price


async def test_injected_5xx_answers_before_acting_so_nothing_is_placed() -> None:
    async with running(fault_plan=WireFaultPlan(error_5xx=(1,))) as sim:
        params = {"instrument_name": PERP, "amount": 10, "type": "market", "label": "5xx"}
        status, _ = await raw_get(sim, "private/buy", params)
        _, found = await raw_get(
            sim, "private/get_order_state_by_label", {"currency": "BTC", "label": "5xx"}
        )
    assert status == 503
    assert found["result"] == []


async def test_injected_5xx_is_ccxt_exchange_not_available() -> None:
    async with running(fault_plan=WireFaultPlan(error_5xx=(1,))) as sim, ccxt_client(sim) as ex:
        with pytest.raises(ccxt.ExchangeNotAvailable):
            await ex.fetch_time()
        assert await ex.fetch_time() > 0


async def test_injected_rate_limit_burst_is_ddos_protection_then_passes() -> None:
    plan = WireFaultPlan(rate_limit_burst=(2,), rate_limit_burst_length=2)
    async with running(fault_plan=plan) as sim, ccxt_client(sim) as ex:
        assert await ex.fetch_time() > 0
        for _ in range(2):
            with pytest.raises(ccxt.DDoSProtection, match="10028"):
                await ex.fetch_time()
        assert await ex.fetch_time() > 0


async def test_partial_fill_leaves_a_market_order_part_filled_and_cancelled() -> None:
    plan = WireFaultPlan(partial_fill=(1,), partial_fill_ratio=0.3)
    async with running(fault_plan=plan) as sim, ccxt_client(sim) as ex:
        await ex.load_markets()
        order = await ex.create_order(PERP_SYMBOL, "market", "buy", 1000, None)
        assert order["filled"] == round_down(1000 * 0.3, 10) == 300
        assert order["status"] == "canceled"
        trades = await ex.fetch_my_trades(PERP_SYMBOL)
        assert sum(t["amount"] for t in trades) == 300


async def test_partial_fill_of_a_crossing_limit_order_rests_the_remainder() -> None:
    plan = WireFaultPlan(partial_fill=(1,), partial_fill_ratio=0.5)
    async with running(fault_plan=plan) as sim:
        _, ticker = await raw_get(sim, "public/ticker", {"instrument_name": PERP})
        ask = ticker["result"]["best_ask_price"]
        params = {"instrument_name": PERP, "amount": 200, "price": ask}
        _, body = await raw_get(sim, "private/buy", params)
        _, open_orders = await raw_get(
            sim, "private/get_open_orders_by_instrument", {"instrument_name": PERP}
        )
    order = body["result"]["order"]
    assert order["filled_amount"] == 100
    assert order["order_state"] == "open"
    assert [o["order_id"] for o in open_orders["result"]] == [order["order_id"]]


async def test_new_order_is_hidden_from_label_lookups_until_the_delay_passes() -> None:
    plan = WireFaultPlan(visibility_delay_s=5)
    async with running(fault_plan=plan) as sim:
        ticker = (await raw_get(sim, "public/ticker", {"instrument_name": PERP}))[1]["result"]
        price = ticker["best_bid_price"] - 20
        params = {"instrument_name": PERP, "amount": 10, "price": price, "label": "lag"}
        _, placed = await raw_get(sim, "private/buy", params)
        by_label = {"currency": "BTC", "label": "lag"}
        _, hidden = await raw_get(sim, "private/get_order_state_by_label", by_label)
        _, hidden_open = await raw_get(
            sim, "private/get_open_orders_by_currency", {"currency": "BTC"}
        )
        _, by_id = await raw_get(
            sim, "private/get_order_state", {"order_id": placed["result"]["order"]["order_id"]}
        )
        sim.clock.advance(5)
        _, shown = await raw_get(sim, "private/get_order_state_by_label", by_label)
    assert hidden["result"] == []
    assert hidden_open["result"] == []
    assert by_id["result"]["order_state"] == "open", "the id the reply gave still answers"
    assert [o["label"] for o in shown["result"]] == ["lag"]
    assert PERP in shown["result"][0]["instrument_name"]


async def test_websocket_order_accepted_then_dropped_closes_the_connection_unanswered() -> None:
    plan = WireFaultPlan(accept_then_drop=(1,), drop_mode="close")
    async with running(fault_plan=plan) as sim, aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"ws://127.0.0.1:{sim.port}/ws/api/v2")
        await ws.send_json(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "public/auth",
                "params": {
                    "grant_type": "client_credentials",
                    "client_id": KEY,
                    "client_secret": SECRET,
                },
            }
        )
        assert "result" in json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
        await ws.send_json(
            {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "private/buy",
                "params": {"instrument_name": PERP, "amount": 10, "type": "market", "label": "w"},
            }
        )
        closing = await asyncio.wait_for(ws.receive(), 5)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        _, found = await raw_get(
            sim, "private/get_order_state_by_label", {"currency": "BTC", "label": "w"}
        )
    assert [o["order_state"] for o in found["result"]] == ["filled"]
