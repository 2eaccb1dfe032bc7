"""Deribit's WebSocket streams through ccxt.pro: the perpetual's ticker, our orders, and
cancel-on-disconnect.

One session at a time: connect, ``public/auth`` (when keys are set), then
``private/enable_cancel_on_disconnect`` with scope ``connection`` when asked
(https://docs.deribit.com/api-reference/session-management/private-enable_cancel_on_disconnect:
when this connection closes, the venue cancels the orders created over it; hedgebot's orders go
over REST, so none of them yet, and the next cycle or start cancels what a dead daemon left),
then ``ticker.{perpetual}.{raw|100ms}`` (https://docs.deribit.com/#ticker-instrument_name-interval)
and ``user.orders.any.any.raw``. Each ticker's ``index_price`` goes to the caller's callback,
each order push's label and state to ``on_order`` (they wake a resting order's wait; the
executor's REST look-ups stay the record). A session that fails,
drops, or hears no ticker for ``silence_seconds`` is closed and opened again after a doubling
backoff with seeded jitter, on the injected clock. Nothing here decides a trade.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ccxt.pro as ccxtpro
import numpy as np
import structlog
from ccxt.base.errors import ExchangeError

from bot.clock import Clock
from bot.config import VenueSettings
from bot.venues.deribit.client import UnsafeUrl, venue_urls

log = structlog.get_logger("hedgebot.venues.deribit.streams")

PriceCallback = Callable[[str, float], object]
OrderCallback = Callable[[object, object], object]  # (label, Deribit order_state)


class StreamSilent(Exception):
    """No ticker for longer than the silence limit."""


class StreamingDeribit(ccxtpro.deribit):  # type: ignore[misc]
    """ccxt.pro's Deribit with two additions: :meth:`call` sends a JSON-RPC request on the
    session and awaits its reply by id (ccxt.pro resolves only subscriptions and auth), and
    every ticker and order message reaches ``ticker_listeners`` / ``order_listeners`` (a
    ``watch_*`` future is resolved only by a message that arrives while it waits, so a watcher
    alone can miss the last move)."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.ticker_listeners: list[Callable[[Mapping[str, Any]], object]] = []
        self.order_listeners: list[Callable[[Mapping[str, Any]], object]] = []

    def handle_orders(self, client: Any, message: Any) -> None:
        super().handle_orders(client, message)
        params = message.get("params") if isinstance(message, Mapping) else None
        data = params.get("data") if isinstance(params, Mapping) else None
        for row in data if isinstance(data, list) else [data]:
            if isinstance(row, Mapping):
                for listener in self.order_listeners:
                    listener(row)

    def handle_ticker(self, client: Any, message: Any) -> None:
        super().handle_ticker(client, message)
        params = message.get("params") if isinstance(message, Mapping) else None
        data = params.get("data") if isinstance(params, Mapping) else None
        if isinstance(data, Mapping):
            for listener in self.ticker_listeners:
                listener(data)

    def handle_message(self, client: Any, message: Any) -> None:
        request_id = message.get("id") if isinstance(message, Mapping) else None
        key = f"reply:{request_id}"
        if request_id is not None and key in client.futures:
            error = message.get("error")
            if error is not None:
                client.reject(ExchangeError(f"deribit {self.json(error)}"), key)
            else:
                client.resolve(message.get("result"), key)
            return
        super().handle_message(client, message)

    async def call(self, method: str, params: Mapping[str, Any]) -> Any:
        """Send ``method`` on the WebSocket session and return its ``result``."""
        request_id = self.request_id()
        key = f"reply:{request_id}"
        request = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": dict(params)}
        return await self.watch(self.urls["api"]["ws"], key, request, key)


def build_stream_client(settings: VenueSettings) -> StreamingDeribit:
    """The ccxt.pro client for ``settings``' network, with its keys; URLs checked as for REST."""
    config: dict[str, Any] = {
        "enableRateLimit": False,
        "timeout": int(settings.timeout_seconds * 1000),
    }
    if settings.api_key is not None and settings.api_secret is not None:
        config["apiKey"] = settings.api_key.get_secret_value()
        config["secret"] = settings.api_secret.get_secret_value()
    client = StreamingDeribit(config)
    if settings.network == "custom":
        if not settings.url:
            raise UnsafeUrl("venue.network=custom needs venue.url")
        client.urls["api"] = venue_urls(settings.url)
    elif settings.network != "mainnet":
        client.set_sandbox_mode(True)
    return client


@dataclass(frozen=True)
class StreamPlan:
    """What a session subscribes to: perpetual name -> currency, and whether it trades."""

    tickers: Mapping[str, str]
    cancel_on_disconnect: bool
    silence_seconds: float
    reconnect_min_seconds: float
    reconnect_max_seconds: float


class DeribitStreams:
    """Keeps a stream session up until ``stop``; see the module docstring.

    ``client_factory`` builds each session's client (tests point it at a simulated venue or a
    broken one); ``rng`` draws the backoff jitter.
    """

    def __init__(
        self,
        plan: StreamPlan,
        client_factory: Callable[[], Any],
        clock: Clock,
        rng: np.random.Generator,
        on_order: OrderCallback | None = None,
    ) -> None:
        self._plan = plan
        self._on_order = on_order
        self._factory = client_factory
        self._clock = clock
        self._rng = rng
        self.sessions = 0  # sessions opened
        self.drops = 0  # sessions that ended on an error or silence
        self.connected = asyncio.Event()  # set while a session is subscribed
        self._up_since: datetime | None = None  # when the current session came up

    async def run(self, on_price: PriceCallback, stop: asyncio.Event) -> None:
        """Stream until ``stop``; never raises (the schedule goes on whatever happens here)."""
        attempt = 0  # failed sessions since the last one that stayed up
        while not stop.is_set():
            client = self._factory()
            self.sessions += 1
            try:
                await self._until_stop(self._session(client, on_price, attempt), stop)
                if stop.is_set():
                    return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.drops += 1
                log.warning("stream_down", error=f"{type(exc).__name__}: {exc}"[:300])
            finally:
                lasted = self._lasted()
                self.connected.clear()
                with contextlib.suppress(Exception):
                    await client.close()
            # A session that stayed up as long as the longest wait dropped afresh: not the n-th
            # failure in a row. One that drops as soon as it is up (a flapping venue) keeps
            # doubling, or the daemon would reconnect (and authenticate) twice a second.
            if lasted is not None and lasted >= self._plan.reconnect_max_seconds:
                attempt = 0
            wait = self._backoff(attempt)
            attempt += 1
            await self._until_stop(self._clock.sleep(wait), stop)

    def _backoff(self, attempt: int) -> float:
        p = self._plan
        base = min(p.reconnect_max_seconds, p.reconnect_min_seconds * 2.0 ** min(attempt, 30))
        return float(base * (0.5 + 0.5 * self._rng.random()))

    @staticmethod
    async def _until_stop(work: Any, stop: asyncio.Event) -> None:
        task = asyncio.ensure_future(work)
        stopper = asyncio.ensure_future(stop.wait())
        try:
            done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (task, stopper):
                if not t.done():
                    t.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await t
        if task in done:
            task.result()

    async def _session(self, client: Any, on_price: PriceCallback, attempt: int) -> None:
        # Each set-up request gets the silence limit: ccxt.pro waits for a reply forever, so a
        # venue that accepts the connection and never answers would hold the session (and any
        # reconnect) for good.
        private = bool(getattr(client, "apiKey", None))
        if private:
            await self._within(client.authenticate(), self._unanswered("public/auth"))
        if self._plan.cancel_on_disconnect:
            if not private:
                raise ExchangeError("cancel-on-disconnect needs the venue keys")
            await self._within(
                client.call("private/enable_cancel_on_disconnect", {"scope": "connection"}),
                self._unanswered("private/enable_cancel_on_disconnect"),
            )
            log.info("cancel_on_disconnect_enabled", scope="connection")
        if self._plan.tickers:
            await self._within(client.load_markets(), self._unanswered("the markets"))
        tickers = self._plan.tickers

        def heard(data: Mapping[str, Any]) -> None:
            currency = tickers.get(str(data.get("instrument_name")))
            price = _number(data.get("index_price"))
            if currency is None:
                return
            self._up(attempt)  # the first ticker: the subscription is live
            if price is None:
                log.warning("stream_ticker_without_index", instrument=data.get("instrument_name"))
                return
            on_price(currency, price)

        client.ticker_listeners.append(heard)
        on_order = self._on_order
        if on_order is not None:
            client.order_listeners.append(
                lambda row: on_order(row.get("label"), row.get("order_state"))
            )
        watchers = [self._watch_ticker(client, name, private) for name in tickers]
        if private:
            watchers.append(self._watch_orders(client))
        if not watchers:
            return
        if not tickers:
            self._up(attempt)  # cancel-on-disconnect only: live once enabled
        await asyncio.gather(*watchers)

    def _unanswered(self, what: str) -> StreamSilent:
        return StreamSilent(f"no answer to {what} in {self._plan.silence_seconds} s")

    def _lasted(self) -> float | None:
        """How long the session that just ended was up (seconds); None if it never came up."""
        if not self.connected.is_set() or self._up_since is None:
            return None
        return (self._clock.now() - self._up_since).total_seconds()

    def _up(self, attempt: int) -> None:
        if not self.connected.is_set():
            self._up_since = self._clock.now()
            self.connected.set()
            log.info("stream_connected", tickers=list(self._plan.tickers), reconnects=attempt)

    async def _watch_ticker(self, client: Any, name: str, private: bool) -> None:
        """Keep the ticker subscribed; prices reach the caller through the listener. Raises
        :class:`StreamSilent` when no ticker comes for ``silence_seconds``."""
        symbol = client.safe_symbol(name)
        interval = "raw" if private else "100ms"  # raw needs an authorised connection
        while True:
            await self._within(
                client.watch_ticker(symbol, {"interval": interval}),
                StreamSilent(f"no {name} ticker for {self._plan.silence_seconds} s"),
            )

    async def _within(self, work: Any, silent: StreamSilent) -> Any:
        """``work``'s result, or ``silent`` raised after ``silence_seconds`` on the clock."""
        task = asyncio.ensure_future(work)
        timer = asyncio.ensure_future(self._clock.sleep(self._plan.silence_seconds))
        try:
            await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (task, timer):
                if not t.done():
                    t.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await t
        if not task.done() or task.cancelled():
            raise silent
        return task.result()

    async def _watch_orders(self, client: Any) -> None:
        """Keep ``user.orders.any.any.raw`` subscribed (pushes reach ``on_order`` through the
        listener); a dropped connection fails this watch, which ends the session."""
        while True:
            await client.watch_orders(None, None, None, {"interval": "raw"})


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number > 0 else None
