"""A second, minimal Deribit-compatible server, written independently of ``bot/sim``.

It knows nothing of markets or matching: it answers each JSON-RPC method (``GET /api/v2/...``,
as ccxt sends them) with a payload given to it, byte for byte as recorded from Deribit or as
Deribit's documentation shows it. It checks private calls' signatures the way Deribit
documents them (``deri-hmac-sha256``: HMAC-SHA256 over ``ts\\nnonce\\nGET\\nuri\\n\\n``), counts
every call, and can be told to fail a method with a Deribit error. So the real ccxt client and
hedgebot's adapter meet Deribit's own payloads, not our mirror's.

Nothing here imports ``bot``: an independent implementation is the point.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

KEY, SECRET = "replay-key", "replay-secret"
Answer = Any  # a result, an RpcError, or a callable of the parameters returning one


@dataclass(frozen=True)
class RpcError:
    """A Deribit error answer (HTTP 400 with ``error.code``), e.g. 10009 not_enough_funds."""

    code: int
    message: str


@dataclass
class ReplayServer:
    """Answers method → payload. ``answers`` values are a result, a callable of the request's
    parameters, or an :class:`RpcError`. Unknown methods answer Deribit's 'method not found'.

    ``time_ms`` is the venue's clock for ``public/get_time`` and ``usIn``/``usOut``; by
    default the wall clock.
    """

    answers: dict[str, Answer]
    time_ms: Callable[[], int] = field(default=lambda: int(time.time() * 1000))
    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    refuse_private: bool = False

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v2/{kind}/{method}", self._handle)
        return app

    def methods_called(self) -> list[str]:
        return [m for m, _ in self.calls]

    async def _handle(self, request: web.Request) -> web.Response:
        method = f"{request.match_info['kind']}/{request.match_info['method']}"
        params = dict(parse_qsl(request.query_string))
        self.calls.append((method, params))
        if method.startswith("private/"):
            if self.refuse_private:
                return self._error(request, RpcError(13009, "unauthorized: private refused"))
            if not self._signed(request):
                return self._error(request, RpcError(13004, "invalid_credentials"))
        if method == "public/get_time" and method not in self.answers:
            return self._ok(request, self.time_ms())
        answer = self.answers.get(method)
        if answer is None:
            return self._error(request, RpcError(-32601, "Method not found"))
        if callable(answer):
            answer = answer(params)
            if inspect.isawaitable(answer):
                answer = await answer
        if isinstance(answer, RpcError):
            return self._error(request, answer)
        return self._ok(request, answer)

    def _signed(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, rest = header.partition(" ")
        if scheme != "deri-hmac-sha256":
            return False
        parts = dict(p.split("=", 1) for p in rest.split(",") if "=" in p)
        if parts.get("id") != KEY:
            return False
        uri = request.path_qs
        payload = f"{parts.get('ts')}\n{parts.get('nonce')}\nGET\n{uri}\n\n"
        want = hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(want, parts.get("sig", ""))

    def _envelope(self) -> dict[str, Any]:
        us = self.time_ms() * 1000
        return {"jsonrpc": "2.0", "usIn": us, "usOut": us + 50, "usDiff": 50, "testnet": True}

    def _ok(self, _request: web.Request, result: Any) -> web.Response:
        return web.json_response({**self._envelope(), "result": result})

    def _error(self, _request: web.Request, error: RpcError) -> web.Response:
        body = {**self._envelope(), "error": {"code": error.code, "message": error.message}}
        return web.json_response(body, status=400)


@asynccontextmanager
async def serving(server: ReplayServer) -> AsyncIterator[str]:
    """The server on 127.0.0.1 (any free port) for the duration; yields its base URL."""
    runner = web.AppRunner(server.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


# --- the recorded and documented payloads --------------------------------------------------


def recorded(data: Path, module: str, fn: str) -> Any:
    """The ``result`` of one recorded mainnet message (raw_api_messages_2022.jsonl)."""
    for line in (data / "raw_api_messages_2022.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["test_module"] == module and row["test_fn"] == fn:
            message = row["message"]
            message = json.loads(message) if isinstance(message, str) else message
            return message["result"]
    raise LookupError(f"{module}/{fn} not recorded")


def documented_positions(data: Path) -> list[dict[str, Any]]:
    """Deribit's documentation example of ``private/get_positions`` (one BTC-PERPETUAL)."""
    rows: list[dict[str, Any]] = json.loads(
        (data / "api_examples/http_get_positions.json").read_text()
    )["result"]
    return rows


# Rows in the shape of Deribit's documentation examples (public/get_instruments, as ccxt's
# source quotes them) for the instruments of the June 2022 recorded book summaries.
def instrument_rows() -> list[dict[str, Any]]:
    common = {
        "settlement_currency": "BTC",
        "counter_currency": "USD",
        "base_currency": "BTC",
        "is_active": True,
        "creation_timestamp": 1648195209000,
        "block_trade_commission": 0.0001,
    }
    perp = {
        **common,
        "tick_size": 0.5,
        "taker_commission": 0.0005,
        "maker_commission": 0.0,
        "settlement_period": "perpetual",
        "quote_currency": "USD",
        "min_trade_amount": 10.0,
        "max_leverage": 50,
        "kind": "future",
        "instrument_name": "BTC-PERPETUAL",
        "future_type": "reversed",
        "expiration_timestamp": 32503708800000,
        "contract_size": 10.0,
    }
    future = {
        **perp,
        "settlement_period": "month",
        "instrument_name": "BTC-24JUN22",
        "expiration_timestamp": 1656057600000,
    }

    def option(name: str, strike: float, kind: str, expiry: int) -> dict[str, Any]:
        return {
            **common,
            "tick_size": 0.0005,
            "taker_commission": 0.0003,
            "maker_commission": 0.0003,
            "strike": strike,
            "settlement_period": "month",
            "quote_currency": "BTC",
            "option_type": kind,
            "min_trade_amount": 0.1,
            "kind": "option",
            "instrument_name": name,
            "expiration_timestamp": expiry,
            "contract_size": 1.0,
        }

    return [
        perp,
        future,
        option("BTC-24JUN22-30000-C", 30000.0, "call", 1656057600000),
        option("BTC-30DEC22-90000-P", 90000.0, "put", 1672387200000),
    ]


def option_position(name: str, size: float, delta: float | None) -> dict[str, Any]:
    """A ``private/get_positions`` option row in the documented shape."""
    row: dict[str, Any] = {
        "average_price": 0.05,
        "average_price_usd": 1500.0,
        "direction": "sell" if size < 0 else "buy",
        "floating_profit_loss": 0.0001,
        "index_price": 29716.47,
        "initial_margin": 0.5,
        "instrument_name": name,
        "kind": "option",
        "maintenance_margin": 0.4,
        "mark_price": 0.05317014,
        "realized_profit_loss": 0.0,
        "settlement_price": 0.05,
        "size": size,
        "total_profit_loss": 0.0001,
    }
    if delta is not None:
        row.update(delta=delta, gamma=0.00004, vega=40.1, theta=-60.2)
    return row


def account_summary(currency: str = "BTC") -> dict[str, Any]:
    """``private/get_account_summary`` in the documented shape (fields of Deribit's schema)."""
    return {
        "currency": currency,
        "balance": 10.0,
        "equity": 10.02,
        "available_funds": 9.5,
        "available_withdrawal_funds": 9.4,
        "margin_balance": 10.02,
        "initial_margin": 0.52,
        "maintenance_margin": 0.41,
        "delta_total": 0.68,  # what Deribit reports for the positions below (net delta)
        "options_delta": 0.678,
        "options_gamma": -0.0002,
        "options_vega": -200.5,
        "options_theta": 300.1,
        "session_rpl": 0.0,
        "session_upl": 0.0001,
        "total_pl": 0.0001,
        "futures_pl": 0.0,
        "options_pl": 0.0001,
        "portfolio_margining_enabled": False,
        "fee_balance": 0.0,
        "type": "main",
        "system_name": "replay",
        "username": "replay",
        "id": 1234,
    }


def open_order(label: str = "manual-1") -> dict[str, Any]:
    """A resting order in the shape of Deribit's ``private/get_open_orders_by_currency``."""
    return {
        "web": False,
        "time_in_force": "good_til_cancelled",
        "replaced": False,
        "reduce_only": False,
        "price": 29000.0,
        "post_only": True,
        "order_type": "limit",
        "order_state": "open",
        "order_id": "ETH-584849853",
        "max_show": 100.0,
        "last_update_timestamp": 1654338604000,
        "label": label,
        "is_liquidation": False,
        "instrument_name": "BTC-PERPETUAL",
        "filled_amount": 0.0,
        "direction": "buy",
        "creation_timestamp": 1654338604000,
        "average_price": 0.0,
        "api": True,
        "amount": 100.0,
    }


def recorded_answers(data: Path) -> dict[str, Answer]:
    """A BTC account of June 2022: recorded book summaries and books, documented shapes for the
    rest. Two short options (one without greeks in its position row) and the perpetual."""
    options = recorded(data, "open_interest", "inverse_future_all")
    futures = [
        *recorded(data, "open_interest", "inverse_future"),
        *recorded(data, "open_interest", "inverse_swap"),
    ]
    # The recorded perpetual order book was taken 25 h before the book summaries; it is served
    # stamped at the recorded perpetual summary's moment (10:58:23 UTC), so that the data-age
    # check (at most an hour) sees one account at one time. Prices and depth are as recorded.
    perp_book = {**recorded(data, "l2_snapshot", "inverse_swap"), "timestamp": 1654340303741}

    def summaries(params: dict[str, str]) -> Any:
        return options if params.get("kind") == "option" else futures

    def ticker(params: dict[str, str]) -> Any:
        """The perpetual's recorded book; any other instrument's recorded summary row in the
        ticker's field names (``timestamp``, ``best_bid_price``, ``best_ask_price``)."""
        name = params.get("instrument_name")
        if name == perp_book.get("instrument_name"):
            return perp_book
        for row in [*options, *futures]:
            if row.get("instrument_name") == name:
                renamed = {"creation_timestamp": "timestamp", "bid_price": "best_bid_price"}
                renamed["ask_price"] = "best_ask_price"
                return {renamed.get(k, k): v for k, v in row.items()}
        return RpcError(10020, "instrument_not_found")

    def instrument(params: dict[str, str]) -> Any:
        for row in instrument_rows():
            if row["instrument_name"] == params.get("instrument_name"):
                return row
        return RpcError(10020, "instrument_not_found")

    return {
        "public/get_instruments": lambda p: instrument_rows(),
        "public/get_instrument": instrument,
        "public/get_currencies": [{"currency": "BTC", "currency_long": "Bitcoin"}],
        "public/get_book_summary_by_currency": summaries,
        "public/ticker": ticker,
        "public/get_order_book": perp_book,
        "public/get_index_price": {"index_price": 29716.47, "estimated_delivery_price": 29716.47},
        "public/auth": {
            "access_token": "replay-token",
            "expires_in": 900,
            "refresh_token": "replay-refresh",
            "scope": "connection mainaccount account:read trade:read_write wallet:read",
            "token_type": "bearer",
        },
        "private/get_positions": [
            *documented_positions(data),
            option_position("BTC-24JUN22-30000-C", -5.0, -2.6),
            option_position("BTC-30DEC22-90000-P", -1.0, None),
        ],
        "private/get_account_summary": account_summary(),
        "private/get_open_orders_by_currency": [open_order()],
        "private/get_order_state_by_label": [],
        "private/get_user_trades_by_currency_and_time": {"trades": [], "has_more": False},
    }
