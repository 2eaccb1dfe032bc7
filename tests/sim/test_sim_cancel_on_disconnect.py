"""Deribit's cancel-on-disconnect on the simulated venue's WebSocket: a connection that enabled
it takes the orders created over it with it when it closes; orders created over HTTP or another
connection stay, as on Deribit (https://docs.deribit.com/api-reference/session-management/
private-enable_cancel_on_disconnect)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from bot.sim.faults import WireFaultPlan
from tests.support.sim_server_kit import KEY, PERP, SECRET, Sim, raw_get, running


async def call(ws: aiohttp.ClientWebSocketResponse, rid: int, method: str, **params: Any) -> Any:
    await ws.send_json({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
    while True:
        message = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
        if message.get("id") == rid:
            return message


def resting_params(price: float, label: str) -> dict[str, Any]:
    return {"instrument_name": PERP, "amount": 10, "type": "limit", "price": price, "label": label}


async def resting_price(sim: Sim) -> float:
    _, book = await raw_get(sim, "public/ticker", {"instrument_name": PERP})
    return float(round(book["result"]["best_bid_price"] * 0.9))


async def resting_order(sim: Sim) -> str:
    """A resting order placed over HTTP."""
    _, placed = await raw_get(sim, "private/buy", resting_params(await resting_price(sim), "r"))
    return str(placed["result"]["order"]["order_id"])


async def session_then_close(
    sim: Sim, *, enable: bool, scope: str = "connection", place: bool = False
) -> tuple[dict[str, Any], str | None]:
    """A WebSocket session that authenticates, enables cancel-on-disconnect when asked,
    places one resting order over itself when asked (its id is returned), then closes."""
    price = await resting_price(sim)
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"ws://127.0.0.1:{sim.port}/ws/api/v2")
        auth = {"grant_type": "client_credentials", "client_id": KEY, "client_secret": SECRET}
        await call(ws, 1, "public/auth", **auth)
        answer: dict[str, Any] = {}
        if enable:
            answer = await call(ws, 2, "private/enable_cancel_on_disconnect", scope=scope)
            got = await call(ws, 3, "private/get_cancel_on_disconnect", scope=scope)
            assert got["result"] == {"scope": scope, "enabled": True}
        placed: str | None = None
        if place:
            reply = await call(ws, 4, "private/buy", **resting_params(price, "ws"))
            placed = str(reply["result"]["order"]["order_id"])
        await ws.close()
    return answer, placed


async def open_order_ids(sim: Sim, expected: set[str]) -> set[str]:
    """The account's open orders, once they are ``expected`` (the server notices a close on
    its own task) or after a bounded wait."""
    orders: set[str] = set()
    for _ in range(100):
        orders = {o.venue_order_id for o in await sim.venue.open_orders("BTC")}
        if orders == expected:
            return orders
        await asyncio.sleep(0.02)
    return orders


async def test_cancel_on_disconnect_cancels_the_orders_created_over_the_connection_that_drops() -> (
    None
):
    async with running() as sim:
        answer, placed = await session_then_close(sim, enable=True, place=True)
        assert answer["result"] == "ok"
        assert placed is not None
        assert await open_order_ids(sim, set()) == set()
        _, state = await raw_get(sim, "private/get_order_state", {"order_id": placed})
        assert state["result"]["order_state"] == "cancelled"


async def test_cancel_on_disconnect_leaves_an_order_placed_over_http_resting() -> None:
    async with running() as sim:
        order_id = await resting_order(sim)
        await session_then_close(sim, enable=True)
        await asyncio.sleep(0.1)
        assert await open_order_ids(sim, {order_id}) == {order_id}


async def test_a_connection_without_it_leaves_the_orders_it_created_resting() -> None:
    async with running() as sim:
        _, placed = await session_then_close(sim, enable=False, place=True)
        assert placed is not None
        await asyncio.sleep(0.1)
        assert await open_order_ids(sim, {placed}) == {placed}


async def test_scope_account_makes_every_later_connection_start_with_it() -> None:
    async with running() as sim:
        await session_then_close(sim, enable=True, scope="account")
        _, placed = await session_then_close(sim, enable=False, place=True)
        assert await open_order_ids(sim, set()) == set()
        _, state = await raw_get(sim, "private/get_order_state", {"order_id": placed})
        assert state["result"]["order_state"] == "cancelled"


async def test_an_order_whose_reply_was_lost_with_the_connection_is_cancelled_with_it() -> None:
    """Accepted, then the connection closed before the reply (the fault plan's lost reply):
    the order was still created over that connection, so its cancel-on-disconnect takes it;
    that is the case the feature exists for."""
    async with running(fault_plan=WireFaultPlan(accept_then_drop=(1,))) as sim:
        price = await resting_price(sim)
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(f"ws://127.0.0.1:{sim.port}/ws/api/v2")
            auth = {"grant_type": "client_credentials", "client_id": KEY, "client_secret": SECRET}
            await call(ws, 1, "public/auth", **auth)
            await call(ws, 2, "private/enable_cancel_on_disconnect", scope="connection")
            await ws.send_json(
                {
                    "jsonrpc": "2.0",
                    "id": 3,
                    "method": "private/buy",
                    "params": resting_params(price, "lost"),
                }
            )
            closed = await asyncio.wait_for(ws.receive(), 5)  # no reply: the server closes
            assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert await open_order_ids(sim, set()) == set()
        placed = await sim.venue.order_by_label("BTC", "lost")
        assert placed is not None
        assert placed.status.value == "cancelled"
