"""Deribit API v2 methods of the simulated venue, independent of the transport.

HTTP and WebSocket both hand a method name and its parameters to :meth:`DeribitApi.call`, which
answers the ``result`` or raises :class:`RpcError`. Public methods read the market
(:mod:`bot.sim.public_data`); private ones the paper venue (:mod:`bot.sim.trading`,
:mod:`bot.sim.account_api`). Errors the venue raises become Deribit's codes here, in one place.
"""

from __future__ import annotations

from typing import Any

import structlog

from bot.domain import DataError
from bot.sim import deribit_json as dj
from bot.sim.account_api import AccountApi
from bot.sim.auth import Authenticator
from bot.sim.handler import CallInfo, Handler
from bot.sim.order_reads import OrderReadsApi
from bot.sim.params import Params, currencies_param, currency_param
from bot.sim.public_data import PublicData
from bot.sim.rpc_errors import RpcError
from bot.sim.trading import TradingApi
from bot.venues.errors import (
    OrderNotFound,
    OrderRejected,
    OutcomeUnknown,
    RateLimited,
    TransientError,
)

log = structlog.get_logger(__name__)

API_VERSION = "1.2.26"
WEBSOCKET_ONLY = frozenset({"subscribe", "unsubscribe", "unsubscribe_all"})


class ReplyLost(Exception):
    """The request took effect but its answer must never reach the client."""


class DeribitApi:
    """Routes ``scope/method`` to its handler and maps venue errors to Deribit's codes."""

    def __init__(
        self,
        public: PublicData,
        trading: TradingApi,
        reads: OrderReadsApi,
        account: AccountApi,
        authenticator: Authenticator,
    ) -> None:
        self._public = public
        self._auth = authenticator
        market = public.market
        self._handlers: dict[str, Handler] = {
            "public/auth": self._auth_grant,
            "public/test": self._version,
            "public/hello": self._version,
            "public/get_time": self._time,
            "public/status": self._status,
            "public/set_heartbeat": self._ok,
            "public/disable_heartbeat": self._ok,
            "public/get_currencies": self._currencies,
            "public/get_instruments": self._instruments,
            "public/get_instrument": self._instrument,
            "public/ticker": self._ticker,
            "public/get_index_price": self._index_price,
            "public/get_book_summary_by_currency": self._summaries,
            "public/get_book_summary_by_instrument": self._summary,
            "public/get_order_book": self._order_book,
        }
        self._handlers.update({f"private/{k}": v for k, v in trading.handlers().items()})
        self._handlers.update({f"private/{k}": v for k, v in reads.handlers().items()})
        self._handlers.update({f"private/{k}": v for k, v in account.handlers().items()})
        self._currencies_served = market.currencies

    @staticmethod
    def is_private(method: str) -> bool:
        return method.startswith("private/")

    async def call(self, method: str, params: Params, info: CallInfo | None = None) -> Any:
        """The ``result`` of ``method`` (``public/ticker``); RpcError or ReplyLost otherwise."""
        name = method.partition("/")[2]
        if name in WEBSOCKET_ONLY:
            raise RpcError.of(10030, reason=f"{method} needs a WebSocket connection")
        handler = self._handlers.get(method)
        if handler is None:
            raise RpcError.of(-32601, reason=f"unknown method {method}")
        try:
            return await handler(params, info or CallInfo())
        except RpcError:
            raise
        except OrderRejected as exc:
            raise RpcError.of(exc.code or 11030, reason=str(exc)) from None
        except OrderNotFound as exc:
            raise RpcError.of(10004, reason=str(exc)) from None
        except RateLimited as exc:
            raise RpcError.of(10028, reason=str(exc)) from None
        except TransientError as exc:
            raise RpcError.of(10040, reason=str(exc)) from None
        except OutcomeUnknown as exc:
            raise ReplyLost(str(exc)) from None
        except DataError as exc:
            raise RpcError.of(-32602, reason=str(exc)) from None

    # --- helpers shared by the handlers ---------------------------------------------------

    # --- public handlers ------------------------------------------------------------------

    async def _auth_grant(self, p: Params, _: CallInfo) -> Any:
        return self._auth.grant(p.raw())

    async def _version(self, _p: Params, _: CallInfo) -> Any:
        return {"version": API_VERSION}

    async def _time(self, _p: Params, _: CallInfo) -> Any:
        return dj.ms(self._public.market.now())

    async def _status(self, _p: Params, _: CallInfo) -> Any:
        return {"locked": "false", "locked_indices": []}

    async def _ok(self, _p: Params, _: CallInfo) -> Any:
        return "ok"

    async def _currencies(self, _p: Params, _: CallInfo) -> Any:
        return [dj.currency_json(c) for c in self._currencies_served]

    async def _instruments(self, p: Params, _: CallInfo) -> Any:
        kind = p.choice("kind", ("future", "option", "spot", "future_combo", "option_combo"), None)
        if p.flag("expired"):
            return []  # expired instruments are not listed by the simulator
        return [
            row
            for c in currencies_param(p, self._currencies_served)
            for row in self._public.instruments(c, kind)
        ]

    async def _instrument(self, p: Params, _: CallInfo) -> Any:
        instrument = self._public.market.instrument(p.text("instrument_name"))
        return dj.instrument_json(instrument, self._public.created(instrument), self._public.fees)

    async def _ticker(self, p: Params, _: CallInfo) -> Any:
        return await self._public.ticker(p.text("instrument_name"))

    async def _index_price(self, p: Params, _: CallInfo) -> Any:
        name = p.text("index_name").lower()
        for currency in self._currencies_served:
            if name == dj.index_name(currency):
                return self._public.index_price(currency)
        raise RpcError.of(-32602, reason=f"unknown index {name}", param="index_name")

    async def _summaries(self, p: Params, _: CallInfo) -> Any:
        kind = p.choice("kind", ("future", "option", "spot", "future_combo", "option_combo"), None)
        return await self._public.book_summaries(currency_param(p, self._currencies_served), kind)

    async def _summary(self, p: Params, _: CallInfo) -> Any:
        return [await self._public.book_summary(p.text("instrument_name"))]

    async def _order_book(self, p: Params, _: CallInfo) -> Any:
        depth = p.opt_integer("depth")
        if depth is not None and depth < 1:
            raise RpcError.of(-32602, reason="must be at least 1", param="depth")
        return await self._public.order_book(p.text("instrument_name"), depth)
