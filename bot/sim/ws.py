"""The simulated venue's WebSocket API: JSON-RPC requests and Deribit subscriptions.

Requests are the HTTP methods plus ``public|private/subscribe``, ``unsubscribe`` and
``public/unsubscribe_all``; ``public/auth`` authenticates the connection for private calls and
channels. Channels served:

- ``ticker.{instrument}.{100ms|raw|agg2}``: the ticker, pushed when its prices change;
- ``user.orders.{kind}.{currency}.{interval}`` and ``user.orders.{instrument}.{interval}``:
  each order change (``raw``: one order per message, otherwise a list);
- ``user.trades.{kind}.{currency}.{interval}`` and ``user.trades.{instrument}.{interval}``;
- ``user.portfolio.{currency}``: the account summary when it changes.

``private/enable_cancel_on_disconnect`` (and ``disable_``, ``get_``) act as Deribit's do
(https://docs.deribit.com/api-reference/session-management/private-enable_cancel_on_disconnect):
when a connection that enabled it closes, the orders created over that connection and still
open are cancelled; orders created over HTTP or another connection stay. Scope ``account``
sets what every connection opened afterwards starts with.

A background task looks at the market and the account every ``push_interval_s`` of wall time
(a push cadence, not market time; the market moves with the clock it was given):
it refreshes the order directory (which fires order and trade pushes) and re-reads subscribed
tickers and portfolios. Each connection has one writer task, so pushes keep their order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
from aiohttp import WSMsgType, web

from bot.domain import DataError
from bot.sim.account_api import AccountApi
from bot.sim.auth import Authenticator
from bot.sim.envelope import Outcome, dumps
from bot.sim.orders import OrderDirectory, OrderRecord, TradeRecord
from bot.sim.params import Params
from bot.sim.public_data import PublicData
from bot.sim.rpc_errors import RpcError
from bot.sim.stamps import Stamps
from bot.sim.trading import TradingApi
from bot.venues.paper.instruments import currency_of

log = structlog.get_logger(__name__)

INTERVALS = ("100ms", "raw", "agg2")
KINDS = ("future", "option", "any")
_SUBSCRIBE = ("public/subscribe", "private/subscribe")
_UNSUBSCRIBE = ("public/unsubscribe", "private/unsubscribe")
_PLACING = ("private/buy", "private/sell")  # an edit leaves an order with its connection
_CANCEL_ON_DISCONNECT = (
    "private/enable_cancel_on_disconnect",
    "private/disable_cancel_on_disconnect",
    "private/get_cancel_on_disconnect",
)


@dataclass(frozen=True)
class Channel:
    """One parsed channel name."""

    name: str
    topic: str  # ticker, orders, trades, portfolio
    instrument: str | None = None
    kind: str = "any"
    currency: str = "any"
    interval: str = "raw"

    @property
    def private(self) -> bool:
        return self.topic != "ticker"

    def wants(self, instrument_name: str, is_option: bool) -> bool:
        if self.instrument is not None:
            return self.instrument == instrument_name
        kind = "option" if is_option else "future"
        currency = currency_of(instrument_name)
        return self.kind in ("any", kind) and self.currency in ("any", currency)


def parse_channel(name: str, currencies: tuple[str, ...]) -> Channel | None:
    """The channel ``name`` names, or None when the server does not serve it."""
    parts = name.split(".")
    served = {c for c in currencies} | {"any"}
    if len(parts) == 3 and parts[0] == "ticker" and parts[2] in INTERVALS:
        return Channel(name, "ticker", instrument=parts[1], interval=parts[2])
    if parts[0] != "user" or len(parts) < 3:
        return None
    topic = parts[1]
    if topic == "portfolio" and len(parts) == 3 and parts[2].upper() in served - {"any"}:
        return Channel(name, "portfolio", currency=parts[2].upper())
    if topic not in ("orders", "trades") or parts[-1] not in INTERVALS:
        return None
    if len(parts) == 4:
        return Channel(name, topic, instrument=parts[2], interval=parts[3])
    if len(parts) == 5 and parts[2] in KINDS and parts[3].upper() in {*served, "ANY"}:
        currency = parts[3].upper() if parts[3] != "any" else "any"
        return Channel(name, topic, kind=parts[2], currency=currency, interval=parts[4])
    return None


@dataclass(eq=False)
class Session:
    """One WebSocket connection: its authentication, channels and outbound queue."""

    ws: web.WebSocketResponse
    authed: bool = False
    channels: dict[str, Channel] = field(default_factory=dict)
    outbox: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    seen: dict[str, tuple[object, ...]] = field(default_factory=dict)  # channel -> last pushed
    cancel_on_disconnect: bool = False
    created: set[str] = field(default_factory=set)  # order ids placed over this connection

    def push(self, channel: str, data: Any) -> None:
        message = {
            "jsonrpc": "2.0",
            "method": "subscription",
            "params": {"channel": channel, "data": data},
        }
        self.outbox.put_nowait(dumps(message))


class Dispatcher(Protocol):
    """What the hub needs from the server: the order directory, authentication, and one
    request's way through faults, rate limits and the API (the same as over HTTP)."""

    @property
    def directory(self) -> OrderDirectory: ...

    @property
    def auth(self) -> Authenticator: ...

    async def process(
        self,
        method: str,
        params: Params,
        authorize: Callable[[], None],
        local: Callable[[], Awaitable[Any]] | None = None,
    ) -> Outcome: ...

    async def lose_reply(self, close: Callable[[], Awaitable[None] | None]) -> None: ...


class WsHub:
    """Connections, their subscriptions and the publisher; see the module docstring."""

    def __init__(
        self,
        server: Dispatcher,
        public: PublicData,
        trading: TradingApi,
        account: AccountApi,
        push_interval_s: float,
        stamps: Stamps | None = None,
    ) -> None:
        self._server = server
        self._stamps = stamps or Stamps()
        self._public = public
        self._trading = trading
        self._account = account
        self._interval = push_interval_s
        self._sessions: set[Session] = set()
        self._account_cod = False  # scope "account": what a new connection starts with
        self._tasks: set[asyncio.Task[None]] = set()
        self._publisher: asyncio.Task[None] | None = None
        server.directory.order_listeners.append(self._on_order)
        server.directory.trade_listeners.append(self._on_trade)

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._publisher = asyncio.create_task(self._publish_forever())

    async def stop(self) -> None:
        if self._publisher is not None:
            self._publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._publisher
        for session in list(self._sessions):
            session.outbox.put_nowait(None)
            await session.ws.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def drop_connections(self) -> int:
        """Close every client connection, as a venue restarting its gateway does; each one's
        cancel-on-disconnect applies. Returns how many were closed."""
        sessions = list(self._sessions)
        for session in sessions:
            await session.ws.close()
        return len(sessions)

    # --- a connection ---------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        session = Session(ws, cancel_on_disconnect=self._account_cod)
        self._sessions.add(session)
        writer = asyncio.create_task(self._write(session))
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._spawn(self._serve(session, message.data))
                elif message.type == WSMsgType.ERROR:
                    break
        finally:
            self._sessions.discard(session)
            session.outbox.put_nowait(None)
            await writer
            if session.cancel_on_disconnect and session.created:
                cancelled = await self._trading.cancel_open(session.created)
                log.info("sim_cancel_on_disconnect", cancelled=cancelled)
        return ws

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, session: Session) -> None:
        while True:
            text = await session.outbox.get()
            if text is None or session.ws.closed:
                return
            try:
                await session.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return

    async def _serve(self, session: Session, text: str) -> None:
        try:
            request = json.loads(text)
            if not isinstance(request, dict) or not isinstance(request.get("method"), str):
                raise ValueError("not a JSON-RPC request")
            raw = request.get("params") or {}
            if not isinstance(raw, dict):
                raise ValueError("params must be an object")
        except ValueError:
            error = Outcome(error=RpcError.of(-32700))
            session.outbox.put_nowait(error.text(None))
            return
        method: str = request["method"]
        params = Params(raw)

        def authorize() -> None:
            if session.authed:
                return
            token = params.opt_text("access_token")
            if token is None:
                raise RpcError.of(13009, reason="connection not authenticated")
            self._server.auth.check_token(token)

        local = self._local(session, method, params)
        outcome = await self._server.process(method, params, authorize, local)
        if outcome.unavailable:
            outcome = Outcome(error=RpcError.of(10040), us_in=outcome.us_in, us_out=outcome.us_out)
        # Created over this connection even when the reply is lost (and the connection with
        # it): that is the order cancel-on-disconnect is for.
        if method in _PLACING and outcome.error is None and isinstance(outcome.result, dict):
            order = outcome.result.get("order")
            if isinstance(order, dict) and isinstance(order.get("order_id"), str):
                session.created.add(order["order_id"])
        if outcome.drop:

            async def close() -> None:
                await session.ws.close()

            await self._server.lose_reply(close)
            return
        if method == "public/auth" and outcome.error is None:
            session.authed = True
        session.outbox.put_nowait(outcome.text(request.get("id")))

    def _local(
        self, session: Session, method: str, params: Params
    ) -> Callable[[], Awaitable[Any]] | None:
        if method in _SUBSCRIBE:
            return lambda: self._subscribe(session, params, private=method.startswith("private"))
        if method in _UNSUBSCRIBE:
            return lambda: self._unsubscribe(session, params)
        if method == "public/unsubscribe_all":
            return lambda: self._unsubscribe_all(session)
        if method in _CANCEL_ON_DISCONNECT:
            return lambda: self._cancel_on_disconnect(session, method, params)
        return None

    async def _cancel_on_disconnect(self, session: Session, method: str, params: Params) -> Any:
        scope = params.choice("scope", ("connection", "account"), "connection")
        if method == "private/get_cancel_on_disconnect":
            enabled = session.cancel_on_disconnect if scope == "connection" else self._account_cod
            return {"scope": scope, "enabled": enabled}
        enable = method == "private/enable_cancel_on_disconnect"
        session.cancel_on_disconnect = enable
        if scope == "account":
            self._account_cod = enable
        return "ok"

    # --- subscriptions --------------------------------------------------------------------

    async def _subscribe(self, session: Session, params: Params, *, private: bool) -> Any:
        names = params.raw().get("channels")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise RpcError.of(-32602, reason="must be a list of channel names", param="channels")
        accepted = []
        for name in names:
            channel = parse_channel(name, self._public.market.currencies)
            if channel is None or (channel.private and not (private and session.authed)):
                continue
            if channel.topic == "ticker" and not self._tradable(channel.instrument):
                continue
            session.channels[name] = channel
            session.seen.pop(name, None)
            accepted.append(name)
        if accepted:
            self._spawn(self.publish_once())  # runs after the reply is queued
        return accepted

    def _tradable(self, name: str | None) -> bool:
        try:
            self._public.mark(self._public.market.instrument(name or ""))
        except DataError:
            return False
        return True

    async def _unsubscribe(self, session: Session, params: Params) -> Any:
        names = params.raw().get("channels")
        if not isinstance(names, list):
            raise RpcError.of(-32602, reason="must be a list of channel names", param="channels")
        removed = [n for n in names if session.channels.pop(n, None) is not None]
        return removed

    async def _unsubscribe_all(self, session: Session) -> Any:
        session.channels.clear()
        return "ok"

    # --- pushes ---------------------------------------------------------------------------

    def _on_order(self, record: OrderRecord) -> None:
        instrument = self._public.market.instrument(record.instrument_name)
        data = self._trading.order_json(record)
        for session in self._sessions:
            for name, channel in session.channels.items():
                if channel.topic == "orders" and channel.wants(
                    record.instrument_name, instrument.is_option
                ):
                    session.push(name, data if channel.interval == "raw" else [data])

    def _on_trade(self, trade: TradeRecord) -> None:
        name_ = trade.fill.instrument_name
        instrument = self._public.market.instrument(name_)
        data = [self._trading.trade_json(trade)]
        for session in self._sessions:
            for name, channel in session.channels.items():
                if channel.topic == "trades" and channel.wants(name_, instrument.is_option):
                    session.push(name, data)

    async def _publish_forever(self) -> None:
        while True:
            try:
                await self.publish_once()
            except Exception:
                log.exception("sim_ws_publish_failed")
            await asyncio.sleep(self._interval)

    async def publish_once(self) -> None:
        """Refresh the account for user channels, then push changed tickers and portfolios."""
        channels = [c for s in self._sessions for c in s.channels.values()]
        if any(c.topic in ("orders", "trades", "portfolio") for c in channels):
            for currency in self._public.market.currencies:
                await self._server.directory.refresh(currency)
        tickers: dict[str, dict[str, Any] | None] = {}
        portfolios: dict[str, dict[str, Any]] = {}
        for session in list(self._sessions):
            for name, channel in list(session.channels.items()):
                if channel.topic == "ticker" and channel.instrument is not None:
                    if channel.instrument not in tickers:
                        tickers[channel.instrument] = await self._ticker(channel.instrument)
                    data = tickers[channel.instrument]
                    if data is None:
                        session.channels.pop(name)
                        continue
                    key: tuple[object, ...] = (
                        data["mark_price"],
                        data["best_bid_price"],
                        data["best_ask_price"],
                        data["index_price"],
                    )
                elif channel.topic == "portfolio":
                    if channel.currency not in portfolios:
                        portfolios[channel.currency] = await self._account.summary(channel.currency)
                    data = portfolios[channel.currency]
                    key = (data["equity"], data["balance"], data["delta_total"])
                else:
                    continue
                if session.seen.get(name) != key:
                    session.seen[name] = key
                    session.push(name, data)
                    if channel.topic == "ticker" and channel.instrument is not None:
                        self._stamps.ticker_published(channel.instrument, data["index_price"])

    async def _ticker(self, name: str) -> dict[str, Any] | None:
        try:
            return await self._public.ticker(name)
        except DataError:
            return None
