"""Deribit's cancel-on-disconnect on the simulated venue's WebSocket: a connection that enabled
it takes the account's open orders with it when it closes; one that did not leaves them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from tests.support.sim_server_kit import KEY, PERP, SECRET, Sim, raw_get, running


async def call(ws: aiohttp.ClientWebSocketResponse, rid: int, method: str, **params: Any) -> Any:
    await ws.send_json({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
    while True:
        message = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
        if message.get("id") == rid:
            return message


async def resting_order(sim: Sim) -> str:
    _, book = await raw_get(sim, "public/ticker", {"instrument_name": PERP})
    price = round(book["result"]["best_bid_price"] * 0.9)
    _, placed = await raw_get(
        sim,
        "private/buy",
        {"instrument_name": PERP, "amount": 10, "type": "limit", "price": price, "label": "r"},
    )
    return str(placed["result"]["order"]["order_id"])


async def session_then_close(sim: Sim, *, enable: bool) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"ws://127.0.0.1:{sim.port}/ws/api/v2")
        auth = {"grant_type": "client_credentials", "client_id": KEY, "client_secret": SECRET}
        await call(ws, 1, "public/auth", **auth)
        answer: dict[str, Any] = {}
        if enable:
            answer = await call(ws, 2, "private/enable_cancel_on_disconnect", scope="connection")
            got = await call(ws, 3, "private/get_cancel_on_disconnect")
            assert got["result"] == {"scope": "connection", "enabled": True}
        await ws.close()
    return answer


async def open_order_ids(sim: Sim) -> set[str]:
    for _ in range(100):  # the server notices the close on its own task: wait for it, bounded
        orders = {o.venue_order_id for o in await sim.venue.open_orders("BTC")}
        if not orders:
            return orders
        await asyncio.sleep(0.02)
    return orders


async def test_a_connection_with_cancel_on_disconnect_cancels_the_open_orders_when_it_drops() -> (
    None
):
    async with running() as sim:
        order_id = await resting_order(sim)
        answer = await session_then_close(sim, enable=True)
        assert answer["result"] == "ok"
        assert await open_order_ids(sim) == set()
        _, state = await raw_get(sim, "private/get_order_state", {"order_id": order_id})
        assert state["result"]["order_state"] == "cancelled"


async def test_a_connection_without_it_leaves_the_orders_resting() -> None:
    async with running() as sim:
        order_id = await resting_order(sim)
        await session_then_close(sim, enable=False)
        await asyncio.sleep(0.1)
        assert {o.venue_order_id for o in await sim.venue.open_orders("BTC")} == {order_id}
