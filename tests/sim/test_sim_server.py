"""The simulated Deribit server: Deribit's shapes (against recorded real messages), its
authentication, and the real ccxt client (REST and WebSocket) trading through it."""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import ccxt.pro as ccxtpro
import pytest

from bot.clock import FakeClock
from bot.config import (
    DEFAULT_FACTS,
    SIM_API_KEY,
    SIM_API_SECRET,
    MarketSettings,
    RateLimitSettings,
    Settings,
)
from bot.greeks import black76, year_fraction
from bot.sim.faults import WireFaultPlan
from bot.sim.serve import KEY_ENV, SECRET_ENV, Credentials, credentials, serve
from bot.sim.server import SimServer
from bot.venues.paper.market import SimMarket
from tests.support.sim_server_kit import (
    KEY,
    NOW,
    PERP,
    PERP_SYMBOL,
    SECRET,
    START,
    Sim,
    ccxt_client,
    raw_get,
    real_message,
    running,
    shared_data,
)

# Fields of real Deribit answers the simulator does not produce, and why:
OPTION_TICKER_OMITTED = {"settlement_price"}  # an option's mark at the last session is not kept
POSITION_OMITTED = {"realized_profit_loss", "total_profit_loss"}  # no session P&L accounting
ENVELOPE = {"jsonrpc", "result", "usIn", "usOut", "usDiff", "testnet"}


def first_option(sim: Sim) -> str:
    return sim.market.instruments("BTC")[1].name


async def test_public_answers_have_deribit_envelope_with_testnet_flag() -> None:
    async with running() as sim:
        status, body = await raw_get(sim, "public/get_time")
        assert status == 200
        assert set(body) == ENVELOPE
        assert body["testnet"] is True
        assert body["result"] == int(NOW.timestamp() * 1000)
        assert body["usDiff"] == body["usOut"] - body["usIn"]


async def test_option_ticker_has_every_field_of_a_real_option_ticker() -> None:
    real = real_message("ticker", "option")["params"]["data"]
    async with running() as sim:
        _, body = await raw_get(sim, "public/ticker", {"instrument_name": first_option(sim)})
    ticker = body["result"]
    assert set(real) - OPTION_TICKER_OMITTED <= set(ticker)
    assert set(ticker["greeks"]) == set(real["greeks"])
    assert set(real["stats"]) <= set(ticker["stats"])
    assert 1 < ticker["mark_iv"] < 500, "mark_iv is in percent, as on Deribit"
    assert ticker["bid_iv"] < ticker["mark_iv"] < ticker["ask_iv"]


async def test_option_ticker_greeks_are_black76_on_its_own_forward_and_iv() -> None:
    async with running() as sim:
        name = first_option(sim)
        _, body = await raw_get(sim, "public/ticker", {"instrument_name": name})
        option = sim.market.instrument(name)
    t = body["result"]
    assert option.expiry is not None
    assert option.strike is not None
    g = black76(
        t["underlying_price"],
        option.strike,
        year_fraction(NOW, option.expiry),
        t["mark_iv"] / 100,
        option.option_type is not None and option.option_type.value == "call",
    )
    assert t["greeks"]["delta"] == pytest.approx(float(g.delta), abs=1e-4)
    assert t["greeks"]["vega"] == pytest.approx(float(g.vega), rel=1e-3)
    assert t["mark_price"] == pytest.approx(float(g.price_coin), rel=1e-3)


async def test_perpetual_ticker_and_order_book_have_every_field_of_real_ones() -> None:
    real_ticker = json.loads((shared_data() / "api_examples" / "ws_ticker.json").read_text())
    real_book = real_message("l2_snapshot", "inverse_swap")["result"]
    async with running() as sim:
        _, ticker = await raw_get(sim, "public/ticker", {"instrument_name": PERP})
        _, book = await raw_get(sim, "public/get_order_book", {"instrument_name": PERP, "depth": 3})
    assert set(real_ticker["params"]["data"]) <= set(ticker["result"])
    assert set(real_ticker["params"]["data"]["stats"]) <= set(ticker["result"]["stats"])
    assert set(real_book) <= set(book["result"])
    assert len(book["result"]["bids"]) == 3
    assert book["result"]["bids"][0][0] < book["result"]["asks"][0][0]


async def test_book_summary_rows_have_real_fields_and_options_carry_mark_iv() -> None:
    real_option = real_message("open_interest", "option")["result"][0]
    real_perp = real_message("open_interest", "inverse_swap")["result"][0]
    async with running() as sim:
        _, options = await raw_get(
            sim, "public/get_book_summary_by_currency", {"currency": "BTC", "kind": "option"}
        )
        _, futures = await raw_get(
            sim, "public/get_book_summary_by_currency", {"currency": "BTC", "kind": "future"}
        )
    assert len(options["result"]) == len(sim.market.instruments("BTC")) - 1
    assert all(set(real_option) | {"mark_iv"} <= set(row) for row in options["result"])
    assert [row["instrument_name"] for row in futures["result"]] == [PERP]
    assert set(real_perp) <= set(futures["result"][0])


async def test_positions_have_the_fields_of_deribits_documented_example() -> None:
    example = json.loads((shared_data() / "api_examples" / "http_get_positions.json").read_text())
    fields = set(example["result"][0]) - POSITION_OMITTED
    async with running() as sim:
        await raw_get(sim, "private/buy", {"instrument_name": PERP, "amount": 50, "type": "market"})
        status, body = await raw_get(sim, "private/get_positions", {"currency": "BTC"})
    assert status == 200
    rows = {row["instrument_name"]: row for row in body["result"]}
    perp = rows.pop(PERP)
    assert fields <= set(perp)
    assert perp["direction"] == "buy"
    assert perp["size"] == 50
    assert perp["kind"] == "future"
    assert perp["delta"] == pytest.approx(50 / perp["mark_price"])
    assert rows, "the account starts with the settings' short options"
    for row in rows.values():
        assert fields - {"leverage"} <= set(row)
        assert row["kind"] == "option"
        assert row["direction"] == "sell"
        assert row["size"] < 0


async def test_instruments_carry_deribits_fields_and_inverse_perp_in_usd() -> None:
    async with running(currencies=("BTC", "ETH")) as sim:
        _, body = await raw_get(
            sim, "public/get_instruments", {"currency": "ETH", "kind": "future"}
        )
        _, all_kinds = await raw_get(sim, "public/get_instruments")
    (perp,) = body["result"]
    assert perp["instrument_name"] == "ETH-PERPETUAL"
    assert perp["settlement_period"] == "perpetual"
    assert perp["kind"] == "future"
    assert perp["instrument_type"] == perp["future_type"] == "reversed"
    assert perp["contract_size"] == 1
    assert perp["min_trade_amount"] == 1
    assert perp["quote_currency"] == "USD"
    assert perp["settlement_currency"] == "ETH"
    names = {row["instrument_name"] for row in all_kinds["result"]}
    assert {"BTC-PERPETUAL", "ETH-PERPETUAL"} <= names


async def test_private_call_with_wrong_secret_is_refused_with_13009() -> None:
    async with running() as sim:
        status, body = await raw_get(
            sim, "private/get_account_summary", {"currency": "BTC"}, secret="not-the-secret"
        )
        good_status, good = await raw_get(sim, "private/get_account_summary", {"currency": "BTC"})
    assert status == 400
    assert body["error"]["code"] == 13009
    assert body["error"]["message"] == "unauthorized"
    assert good_status == 200
    assert good["result"]["currency"] == "BTC"


async def test_signature_over_other_parameters_or_another_key_is_refused() -> None:
    async with running() as sim:
        _, wrong_key = await raw_get(
            sim, "private/get_positions", {"currency": "BTC"}, key="someone-else"
        )
        forged = "deri-hmac-sha256 id={},ts=1,sig={},nonce=n".format(KEY, "0" * 64)
        _, forged_sig = await raw_get(sim, "private/get_positions", header=forged)
        _, unsigned = await raw_get(sim, "private/get_positions", secret=None)
    assert wrong_key["error"]["code"] == 13009
    assert forged_sig["error"]["code"] == 13009
    assert unsigned["error"]["code"] == 10000


async def test_auth_grants_bearer_token_that_opens_private_calls() -> None:
    async with running() as sim:
        _, refused = await raw_get(
            sim,
            "public/auth",
            {"grant_type": "client_credentials", "client_id": KEY, "client_secret": "x"},
        )
        _, granted = await raw_get(
            sim,
            "public/auth",
            {"grant_type": "client_credentials", "client_id": KEY, "client_secret": SECRET},
        )
        token = granted["result"]["access_token"]
        status, summary = await raw_get(
            sim, "private/get_account_summary", {"currency": "BTC"}, header=f"bearer {token}"
        )
        _, bad = await raw_get(
            sim, "private/get_account_summary", {"currency": "BTC"}, header="bearer nope"
        )
    assert refused["error"]["code"] == 13004
    assert {"access_token", "refresh_token", "expires_in", "scope"} <= set(granted["result"])
    assert status == 200
    assert summary["result"]["currency"] == "BTC"
    assert bad["error"]["code"] == 13009


async def test_ccxt_wrong_secret_raises_authentication_error() -> None:
    async with running() as sim, ccxt_client(sim, secret="wrong") as ex:
        await ex.load_markets()
        with pytest.raises(ccxt.AuthenticationError):
            await ex.fetch_balance({"code": "BTC"})


async def test_ccxt_loads_markets_and_reads_ticker_balance_and_positions() -> None:
    async with running() as sim, ccxt_client(sim) as ex:
        markets = await ex.load_markets()
        perp = markets[PERP_SYMBOL]
        assert perp["swap"]
        assert perp["inverse"]
        assert perp["contractSize"] == 10
        option = next(m for m in markets.values() if m["option"])
        assert option["settle"] == "BTC"
        assert option["strike"] > 0
        ticker = await ex.fetch_ticker(PERP_SYMBOL)
        assert ticker["bid"] < ticker["markPrice"] < ticker["ask"]
        balance = await ex.fetch_balance({"code": "BTC"})
        assert balance["BTC"]["total"] == pytest.approx(10.0, rel=0.05)
        assert "delta_total" in balance["info"]
        positions = await ex.fetch_positions()
        assert {p["side"] for p in positions} == {"short"}
        assert all(p["contracts"] < 0 and "delta" in p["info"] for p in positions)


async def test_ccxt_fetch_greeks_reads_deribit_units() -> None:
    async with running() as sim, ccxt_client(sim) as ex:
        await ex.load_markets()
        symbol = next(s for s, m in ex.markets.items() if m["option"])
        greeks = await ex.fetch_greeks(symbol)
    assert greeks["delta"] is not None
    assert -1 <= greeks["delta"] <= 1
    assert greeks["vega"] > 0
    assert greeks["theta"] < 0
    assert 1 < greeks["markImpliedVolatility"] < 500
    assert greeks["underlyingPrice"] > 1000


async def test_ccxt_market_and_limit_orders_fill_rest_and_carry_labels() -> None:
    async with running() as sim, ccxt_client(sim) as ex:
        await ex.load_markets()
        book = await ex.fetch_order_book(PERP_SYMBOL)
        bought = await ex.create_order(PERP_SYMBOL, "market", "buy", 100, None, {"label": "hb-m"})
        assert bought["status"] == "closed"
        assert bought["filled"] == 100
        assert bought["info"]["label"] == "hb-m"
        assert bought["average"] == book["asks"][0][0]
        low = book["bids"][0][0] - 100
        rest = await ex.create_order(PERP_SYMBOL, "limit", "buy", 50, low, {"label": "hb-l"})
        assert rest["status"] == "open"
        assert rest["filled"] == 0
        open_orders = await ex.fetch_open_orders(PERP_SYMBOL)
        assert [o["id"] for o in open_orders] == [rest["id"]]
        fetched = await ex.fetch_order(bought["id"])
        assert fetched["status"] == "closed"
        assert fetched["info"]["label"] == "hb-m"
        trades = await ex.fetch_my_trades(PERP_SYMBOL)
        assert [t["order"] for t in trades] == [bought["id"]]
        assert trades[0]["takerOrMaker"] == "taker"
        assert trades[0]["fee"]["cost"] > 0
        assert trades[0]["info"]["label"] == "hb-m"


async def test_ccxt_post_only_rests_and_crossing_post_only_is_invalid_order_11054() -> None:
    async with running() as sim, ccxt_client(sim) as ex:
        await ex.load_markets()
        book = await ex.fetch_order_book(PERP_SYMBOL)
        bid, ask = book["bids"][0][0], book["asks"][0][0]
        resting = await ex.create_order(PERP_SYMBOL, "limit", "buy", 10, bid, {"postOnly": True})
        assert resting["status"] == "open"
        assert resting["postOnly"] is True
        with pytest.raises(ccxt.InvalidOrder, match="11054"):
            await ex.create_order(PERP_SYMBOL, "limit", "buy", 10, ask, {"postOnly": True})


async def test_post_only_without_reject_is_repriced_inside_the_book_as_on_deribit() -> None:
    async with running() as sim:
        _, ticker = await raw_get(sim, "public/ticker", {"instrument_name": PERP})
        ask = ticker["result"]["best_ask_price"]
        params = {"instrument_name": PERP, "amount": 10, "price": ask, "post_only": "true"}
        _, body = await raw_get(sim, "private/buy", params)
    order = body["result"]["order"]
    assert order["order_state"] == "open"
    assert order["price"] == ask - 0.5
    assert body["result"]["trades"] == []


async def test_ccxt_reduce_only_order_is_trimmed_to_the_position() -> None:
    async with running() as sim, ccxt_client(sim) as ex:
        await ex.load_markets()
        await ex.create_order(PERP_SYMBOL, "market", "buy", 100, None)
        sold = await ex.create_order(PERP_SYMBOL, "market", "sell", 300, None, {"reduceOnly": True})
        assert sold["filled"] == 100
        assert sold["info"]["reduce_only"] is True
        positions = {p["symbol"]: p for p in await ex.fetch_positions()}
        assert positions[PERP_SYMBOL]["contracts"] == 0
        assert positions[PERP_SYMBOL]["info"]["direction"] == "zero"
        with pytest.raises(ccxt.ExchangeError):
            await ex.create_order(PERP_SYMBOL, "market", "sell", 10, None, {"reduceOnly": True})


async def test_ccxt_cancel_then_cancel_again_is_not_open_and_unknown_id_is_not_found() -> None:
    async with running() as sim, ccxt_client(sim) as ex:
        await ex.load_markets()
        book = await ex.fetch_order_book(PERP_SYMBOL)
        order = await ex.create_order(PERP_SYMBOL, "limit", "sell", 20, book["asks"][0][0] + 50)
        cancelled = await ex.cancel_order(order["id"])
        assert cancelled["status"] == "canceled"
        with pytest.raises(ccxt.InvalidOrder, match="11044") as again:
            await ex.cancel_order(order["id"])
        assert not isinstance(again.value, ccxt.OrderNotFound)
        with pytest.raises(ccxt.OrderNotFound):
            await ex.cancel_order("no-such-order")
        assert await ex.fetch_open_orders(PERP_SYMBOL) == []


async def test_edit_keeps_the_order_id_and_moves_the_price() -> None:
    async with running() as sim, ccxt_client(sim) as ex:
        await ex.load_markets()
        book = await ex.fetch_order_book(PERP_SYMBOL)
        bid = book["bids"][0][0]
        order = await ex.create_order(PERP_SYMBOL, "limit", "buy", 30, bid - 20, {"label": "e"})
        edited = await ex.edit_order(order["id"], PERP_SYMBOL, "limit", "buy", 40, bid - 10)
        assert edited["id"] == order["id"]
        assert edited["info"]["replaced"] is True
        assert edited["price"] == bid - 10
        assert edited["amount"] == 40
        (still_open,) = await ex.fetch_open_orders(PERP_SYMBOL)
        assert still_open["id"] == order["id"]
        assert still_open["price"] == bid - 10


async def test_orders_are_found_by_label_and_trades_page_newest_first() -> None:
    async with running() as sim:
        for label in ("a", "b", "a"):
            params = {"instrument_name": PERP, "amount": 10, "type": "market", "label": label}
            await raw_get(sim, "private/buy", params)
        _, by_label = await raw_get(
            sim, "private/get_order_state_by_label", {"currency": "BTC", "label": "a"}
        )
        _, page = await raw_get(
            sim, "private/get_user_trades_by_currency", {"currency": "BTC", "count": 2}
        )
    assert [o["label"] for o in by_label["result"]] == ["a", "a"]
    assert all(o["order_state"] == "filled" for o in by_label["result"])
    trades = page["result"]["trades"]
    assert page["result"]["has_more"] is True
    assert len(trades) == 2
    assert trades[0]["trade_seq"] > trades[1]["trade_seq"]
    real_trade = real_message("trade", "inverse_swap")["params"]["data"][0]
    assert set(real_trade) <= set(trades[0])


async def test_limit_price_beyond_the_band_is_refused_as_deribit_does() -> None:
    async with running() as sim:
        _, ticker = await raw_get(sim, "public/ticker", {"instrument_name": PERP})
        too_high = ticker["result"]["max_price"] + 100
        params = {"instrument_name": PERP, "amount": 10, "price": too_high}
        _, body = await raw_get(sim, "private/buy", params)
    assert body["error"]["code"] == 10007


async def test_eth_perpetual_trades_in_one_dollar_contracts() -> None:
    async with running(currencies=("BTC", "ETH")) as sim:
        params = {"instrument_name": "ETH-PERPETUAL", "amount": 7, "type": "market"}
        _, body = await raw_get(sim, "private/buy", params)
        _, off_step = await raw_get(sim, "private/buy", {**params, "amount": 7.5})
    assert body["result"]["order"]["filled_amount"] == 7
    assert body["result"]["order"]["contracts"] == 7
    assert off_step["error"]["code"] == 10021


async def test_ccxt_rate_limit_answer_is_ddos_protection() -> None:
    limits = RateLimitSettings(matching_per_second=1.0, matching_burst=2)
    async with running(rate_limits=limits, timer=lambda: 0.0) as sim, ccxt_client(sim) as ex:
        await ex.load_markets()
        for _ in range(2):
            await ex.create_order(PERP_SYMBOL, "market", "buy", 10, None)
        with pytest.raises(ccxt.DDoSProtection, match="10028"):
            await ex.create_order(PERP_SYMBOL, "market", "buy", 10, None)
        assert (await ex.fetch_ticker(PERP_SYMBOL))["bid"] > 0, "other calls have their own bucket"


async def test_server_refuses_to_listen_beyond_loopback() -> None:
    async with running() as sim:
        other = SimServer(sim.market, sim.venue, api_key=KEY, api_secret=SECRET, clock=sim.clock)
        with pytest.raises(ValueError, match="loopback"):
            await other.start("0.0.0.0", 0)


async def test_partial_fill_plan_needs_the_thinnable_market() -> None:
    async with running() as sim:
        plain = SimMarket(MarketSettings(), ("BTC",), sim.clock, DEFAULT_FACTS, start=START)
        with pytest.raises(ValueError, match="ThinnableMarket"):
            SimServer(
                plain,
                sim.venue,
                api_key=KEY,
                api_secret=SECRET,
                clock=sim.clock,
                fault_plan=WireFaultPlan(partial_fill=0.5),
            )


async def _next_push(ws: aiohttp.ClientWebSocketResponse, channel: str) -> Any:
    while True:
        message = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
        if message.get("params", {}).get("channel") == channel:
            return message["params"]["data"]


async def test_websocket_pushes_ticker_and_the_accounts_orders_and_trades() -> None:
    async with running() as sim, aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"ws://127.0.0.1:{sim.port}/ws/api/v2")
        await ws.send_json(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "public/subscribe",
                "params": {"channels": [f"ticker.{PERP}.100ms", "user.orders.any.any.raw"]},
            }
        )
        ticker = await _next_push(ws, f"ticker.{PERP}.100ms")
        assert ticker["instrument_name"] == PERP
        assert ticker["best_bid_price"] > 0
        sim.clock.advance(120)
        moved = await _next_push(ws, f"ticker.{PERP}.100ms")
        assert moved["timestamp"] > ticker["timestamp"]
        await ws.send_json(
            {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "public/auth",
                "params": {
                    "grant_type": "client_credentials",
                    "client_id": KEY,
                    "client_secret": SECRET,
                },
            }
        )
        channels = ["user.orders.future.BTC.raw", "user.trades.future.BTC.100ms"]
        await ws.send_json(
            {
                "jsonrpc": "2.0",
                "id": 3,
                "method": "private/subscribe",
                "params": {"channels": channels},
            }
        )
        await raw_get(
            sim,
            "private/buy",
            {"instrument_name": PERP, "amount": 10, "type": "market", "label": "ws"},
        )
        order = await _next_push(ws, channels[0])
        trades = await _next_push(ws, channels[1])
        await ws.close()
    assert order["label"] == "ws"
    assert order["order_state"] == "filled"
    assert trades[0]["order_id"] == order["order_id"]
    assert trades[0]["amount"] == 10


async def test_websocket_private_channels_need_authentication() -> None:
    async with running() as sim, aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"ws://127.0.0.1:{sim.port}/ws/api/v2")
        await ws.send_json(
            {
                "jsonrpc": "2.0",
                "id": 7,
                "method": "private/subscribe",
                "params": {"channels": ["user.orders.any.any.raw"]},
            }
        )
        answer = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
        await ws.close()
    assert answer["id"] == 7
    assert answer["error"]["code"] == 13009


async def test_ccxt_pro_watches_ticker_orders_and_trades() -> None:
    async with running() as sim:
        ex = ccxtpro.deribit({"apiKey": KEY, "secret": SECRET, "timeout": 5000})
        ex.set_sandbox_mode(True)
        ex.urls["api"] = {"rest": sim.url, "ws": f"ws://127.0.0.1:{sim.port}/ws/api/v2"}
        try:
            await ex.load_markets()
            ticker = await asyncio.wait_for(ex.watch_ticker(PERP_SYMBOL), 5)
            assert ticker["bid"] > 0
            orders = asyncio.ensure_future(ex.watch_orders())
            trades = asyncio.ensure_future(ex.watch_my_trades())
            await asyncio.sleep(0.2)
            placed = await ex.create_order(PERP_SYMBOL, "market", "sell", 20, None)
            seen_orders = await asyncio.wait_for(orders, 5)
            seen_trades = await asyncio.wait_for(trades, 5)
        finally:
            await ex.close()
    assert placed["id"] in {o["id"] for o in seen_orders}
    assert {t["order"] for t in seen_trades} == {placed["id"]}


async def _serving(
    url: str, clock: FakeClock, action: Callable[[str], Awaitable[Any]]
) -> tuple[str, Any]:
    """Run ``serve`` until ``action`` (given the base URL) is done; return its output too."""
    out, stop = io.StringIO(), asyncio.Event()
    env = {KEY_ENV: KEY, SECRET_ENV: SECRET}
    task = asyncio.create_task(
        serve(Settings(), database_url=url, clock=clock, out=out, stop=stop, env=env)
    )
    try:
        for _ in range(500):
            if "api secret" in out.getvalue() or task.done():
                break
            await asyncio.sleep(0.01)
        match = re.search(r"http://127\.0\.0\.1:(\d+)", out.getvalue())
        assert match, out.getvalue()
        result = await action(f"http://127.0.0.1:{match.group(1)}")
    finally:
        stop.set()
        await task
    return out.getvalue(), result


async def test_serve_prints_port_and_keys_and_keeps_the_account_across_restarts(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'sim.db'}"
    clock = FakeClock(NOW)

    async def place(base: str) -> str:
        _, ticker = await raw_get(base, "public/ticker", {"instrument_name": PERP})
        price = ticker["result"]["best_bid_price"] - 30
        params = {"instrument_name": PERP, "amount": 20, "price": price, "label": "kept"}
        _, placed = await raw_get(base, "private/buy", params)
        order_id: str = placed["result"]["order"]["order_id"]
        return order_id

    async def look(base: str) -> tuple[dict[str, Any], dict[str, Any]]:
        _, by_id = await raw_get(base, "private/get_order_state", {"order_id": order_id})
        by_label = {"currency": "BTC", "label": "kept"}
        _, labelled = await raw_get(base, "private/get_order_state_by_label", by_label)
        return by_id, labelled

    printed, order_id = await _serving(url, clock, place)
    assert f"api key: {KEY}" in printed
    assert SECRET in printed
    _, (by_id, labelled) = await _serving(url, clock, look)
    assert by_id["result"]["order_state"] == "open"
    assert [o["order_id"] for o in labelled["result"]] == [order_id]


async def test_a_restarted_server_still_answers_for_orders_that_closed_before_it_started(
    tmp_path: Path,
) -> None:
    """A venue restart must not forget an acknowledged order: the daemon settles an order of
    unknown outcome only from the venue's word on it (found by the kill storm)."""
    url = f"sqlite:///{tmp_path / 'sim.db'}"
    clock = FakeClock(NOW)

    async def trade(base: str) -> tuple[str, str]:
        _, ticker = await raw_get(base, "public/ticker", {"instrument_name": PERP})
        price = ticker["result"]["best_bid_price"] - 30
        params = {"instrument_name": PERP, "amount": 20, "price": price, "label": "gone"}
        _, placed = await raw_get(base, "private/buy", params)
        gone: str = placed["result"]["order"]["order_id"]
        await raw_get(base, "private/cancel", {"order_id": gone})
        market = {"instrument_name": PERP, "amount": 30, "type": "market", "label": "traded"}
        _, bought = await raw_get(base, "private/buy", market)
        traded: str = bought["result"]["order"]["order_id"]
        return gone, traded

    async def look(base: str) -> list[dict[str, Any]]:
        seen = []
        for order_id, label in ((gone, "gone"), (traded, "traded")):
            _, by_id = await raw_get(base, "private/get_order_state", {"order_id": order_id})
            query = {"currency": "BTC", "label": label}
            _, labelled = await raw_get(base, "private/get_order_state_by_label", query)
            seen += [by_id["result"], *labelled["result"]]
        return seen

    _, (gone, traded) = await _serving(url, clock, trade)
    _, seen = await _serving(url, clock, look)
    assert [(o["order_id"], o["order_state"], o["filled_amount"]) for o in seen] == [
        (gone, "cancelled", 0),
        (gone, "cancelled", 0),
        (traded, "filled", 30),
        (traded, "filled", 30),
    ]


async def test_trades_older_than_a_day_are_served_only_from_the_historical_store() -> None:
    """As Deribit keeps its recent store of trades for 24 hours
    (https://docs.deribit.com/articles/accessing-historical-trades-orders)."""
    async with running() as sim:
        market = {"instrument_name": PERP, "amount": 10, "type": "market", "label": "day-old"}
        await raw_get(sim, "private/buy", market)
        sim.clock.advance(25 * 3600)
        read = {"currency": "BTC", "count": 100}
        _, recent = await raw_get(sim, "private/get_user_trades_by_currency", read)
        _, old = await raw_get(
            sim, "private/get_user_trades_by_currency", {**read, "historical": "true"}
        )
    assert recent["result"]["trades"] == []
    assert [t["label"] for t in old["result"]["trades"]] == ["day-old"]


def test_env_credentials_are_used_as_given_and_the_local_pair_otherwise() -> None:
    assert credentials({KEY_ENV: "k", SECRET_ENV: "s"}) == Credentials("k", "s", generated=False)
    assert credentials({}) == Credentials(SIM_API_KEY, SIM_API_SECRET, generated=False)


async def test_account_summary_is_the_venues_account_with_deribits_option_sums() -> None:
    async with running() as sim:
        _, body = await raw_get(sim, "private/get_account_summary", {"currency": "BTC"})
        _, positions = await raw_get(sim, "private/get_positions", {"currency": "BTC"})
        account = await sim.venue.account("BTC")
    summary = body["result"]
    assert summary["equity"] == pytest.approx(account.equity)
    assert summary["delta_total"] == pytest.approx(account.delta_total)
    assert summary["available_funds"] == pytest.approx(account.available)
    options = [p for p in positions["result"] if p["kind"] == "option"]
    assert summary["options_delta"] == pytest.approx(sum(p["delta"] for p in options))
    assert summary["options_gamma"] == pytest.approx(sum(p["gamma"] for p in options))
    assert summary["options_value"] == pytest.approx(
        sum(p["size"] * p["mark_price"] for p in options)
    )


async def test_index_price_answers_the_markets_index() -> None:
    async with running() as sim:
        _, body = await raw_get(sim, "public/get_index_price", {"index_name": "btc_usd"})
        _, unknown = await raw_get(sim, "public/get_index_price", {"index_name": "doge_usd"})
    assert body["result"]["index_price"] == pytest.approx(sim.market.index("BTC"))
    assert unknown["error"]["code"] == -32602


async def test_cancel_all_by_instrument_cancels_only_that_instruments_open_orders() -> None:
    async with running() as sim, ccxt_client(sim) as ex:
        await ex.load_markets()
        bid = (await ex.fetch_order_book(PERP_SYMBOL))["bids"][0][0]
        for i in range(3):
            await ex.create_order(PERP_SYMBOL, "limit", "buy", 10, bid - 10 * (i + 1))
        filled = await ex.create_order(PERP_SYMBOL, "market", "buy", 10, None)
        _, count = await raw_get(sim, "private/cancel_all_by_instrument", {"instrument_name": PERP})
        assert count["result"] == 3
        assert await ex.fetch_open_orders(PERP_SYMBOL) == []
        history = await ex.fetch_closed_orders(PERP_SYMBOL)
        assert [o["id"] for o in history] == [filled["id"]], (
            "unfilled cancels need include_unfilled"
        )
        order_trades = await ex.fetch_order_trades(filled["id"])
        assert [t["order"] for t in order_trades] == [filled["id"]]


async def test_unknown_method_and_missing_parameter_are_json_rpc_errors() -> None:
    async with running() as sim:
        _, unknown = await raw_get(sim, "public/no_such_method")
        _, missing = await raw_get(sim, "public/ticker")
        _, over_http = await raw_get(sim, "public/subscribe", {"channels": "x"})
    assert unknown["error"]["code"] == -32601
    assert missing["error"]["code"] == -32602
    assert missing["error"]["data"]["param"] == "instrument_name"
    assert over_http["error"]["code"] == 10030
