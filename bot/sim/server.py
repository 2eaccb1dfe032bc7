"""A Deribit API v2 server on 127.0.0.1, backed by the simulated market and a paper venue.

The real ccxt ``deribit`` client talks to it as to Deribit: JSON-RPC over HTTP GET
``/api/v2/{public|private}/{method}?params`` (and POST with a JSON-RPC body), signed with
``deri-hmac-sha256`` or a bearer token, and over WebSocket at ``/ws/api/v2`` with subscriptions.
Answers are Deribit's envelope ``{"jsonrpc": "2.0", "result" | "error", "usIn", "usOut",
"usDiff", "testnet": true}``.

Every request passes, in order: the fault plan (latency, 5xx, rate-limit bursts), the server's
rate limits (10028), authentication (private methods), the method itself, and — for an order
the plan drops — the lost reply. The engine is the paper venue given to the server; the server
keeps no account of its own (see :mod:`bot.sim.orders`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from bot.clock import Clock
from bot.config import FeeSettings, RateLimitSettings
from bot.domain import DataError
from bot.sim.account_api import AccountApi
from bot.sim.api import DeribitApi, ReplyLost
from bot.sim.auth import Authenticator
from bot.sim.envelope import Outcome
from bot.sim.faults import Faults, FaultSchedule, ServedMarket, ThinnableMarket, WireFaultPlan
from bot.sim.handler import CallInfo
from bot.sim.order_reads import OrderReadsApi
from bot.sim.orders import OrderDirectory
from bot.sim.params import Params
from bot.sim.public_data import PublicData
from bot.sim.rpc_errors import RpcError
from bot.sim.stamps import Stamps
from bot.sim.time_control import TimeControl
from bot.sim.trading import TradingApi
from bot.sim.ws import WsHub
from bot.venues.base import Venue
from bot.venues.ratelimit import RateBuckets

log = structlog.get_logger(__name__)

ORDER_METHODS = frozenset({"buy", "sell"})
Sleeper = Callable[[float], Awaitable[None]]
LocalHandler = Callable[[], Awaitable[Any]]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SimServer:
    """Serves ``market`` (public data) and ``venue`` (the account) as Deribit; see the module."""

    def __init__(
        self,
        market: ServedMarket,
        venue: Venue,
        *,
        api_key: str,
        api_secret: str,
        clock: Clock,
        fault_plan: WireFaultPlan | None = None,
        fees: FeeSettings | None = None,
        rate_limits: RateLimitSettings | None = None,
        timer: Callable[[], float] = time.monotonic,
        sleeper: Sleeper = asyncio.sleep,
        push_interval_s: float = 0.1,
        stamps: Stamps | None = None,
    ) -> None:
        plan = fault_plan or WireFaultPlan()
        thinnable = market if isinstance(market, ThinnableMarket) else None
        if plan.needs_thinnable_market and thinnable is None:
            raise ValueError(
                "partial_fill faults need the venue built on a ThinnableMarket given to the server"
            )
        limits = rate_limits or RateLimitSettings()
        self._clock = clock
        self._market = market
        self.directory = OrderDirectory(venue, self._mark_of)
        public = PublicData(market, venue, self.directory, fees or FeeSettings())
        trading = TradingApi(
            public,
            venue,
            self.directory,
            visibility_delay_s=plan.visibility_delay_s,
            thinnable=thinnable,
            partial_fill_ratio=plan.partial_fill_ratio,
        )
        self.account = AccountApi(public, venue, self.directory, limits)
        self.auth = Authenticator(api_key, api_secret, timer=timer)
        reads = OrderReadsApi(trading, self.directory)
        self.api = DeribitApi(public, trading, reads, self.account, self.auth)
        self._plan = plan
        self._schedule = FaultSchedule(plan) if fault_plan is not None else None
        self._buckets = RateBuckets(limits, timer)
        self._sleeper = sleeper
        self.time_control = TimeControl(clock)
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self.stamps = stamps or Stamps()
        self.hub = WsHub(self, public, trading, self.account, push_interval_s, self.stamps)

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on ``host:port`` (0: any free port) and return the bound port."""
        if not is_loopback(host):
            raise ValueError(f"the simulated venue listens on loopback only, not {host!r}")
        if self._runner is not None:
            raise RuntimeError("server already started")
        for currency in self._market.currencies:
            await self.directory.refresh(currency)
        app = web.Application()
        app.router.add_route("GET", "/api/v2/{scope}/{method}", self._http)
        app.router.add_route("POST", "/api/v2/{scope}/{method}", self._http)
        app.router.add_route("GET", "/ws/api/v2", self.hub.handle)
        self.time_control.add_routes(app.router)
        self.stamps.add_routes(app.router)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        self.hub.start()
        log.info("sim_server_started", host=host, port=self._port)
        return self._port

    async def stop(self) -> None:
        """Release held replies, close WebSockets, stop listening."""
        self._stopping.set()
        await self.hub.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        log.info("sim_server_stopped", port=self._port)

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("server not started")
        return self._port

    @property
    def market(self) -> ServedMarket:
        return self._market

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- one request, whatever the transport ----------------------------------------------

    def _us(self) -> int:
        return int(self._clock.now().timestamp() * 1_000_000)

    def _mark_of(self, name: str) -> float | None:
        try:
            return self._market.quote(name).mark
        except DataError:
            return None

    def _faults(self, name: str) -> Faults:
        if self._schedule is None:
            return Faults(0, None)
        return self._schedule.next(is_order=name in ORDER_METHODS)

    async def process(
        self,
        method: str,
        params: Params,
        authorize: Callable[[], None],
        local: LocalHandler | None = None,
    ) -> Outcome:
        """Run ``method`` through faults, limits, authentication and the API.

        ``authorize`` raises RpcError when a private call is not authenticated; ``local``
        answers transport-only methods (WebSocket subscriptions) instead of the API.
        """
        us_in = self._us()
        name = method.partition("/")[2]
        if name in ORDER_METHODS:
            label = params.raw().get("label")
            self.stamps.order_received(label if isinstance(label, str) else None)
        faults = self._faults(name)
        if faults.latency_s > 0:
            await self._sleeper(faults.latency_s)
        if faults.error_5xx:
            log.info("sim_fault_5xx", method=method, request=faults.request_number)
            return Outcome(unavailable=True, us_in=us_in, us_out=self._us())
        try:
            if faults.rate_limited:
                raise RpcError.of(10028, reason="burst (fault plan)")
            if not self._buckets.of(name).take():
                raise RpcError.of(10028, reason="rate limit")
            if DeribitApi.is_private(method):
                authorize()
            if local is not None:
                result = await local()
            else:
                info = CallInfo(partial_fill=faults.partial_fill)
                result = await self.api.call(method, params, info)
        except RpcError as exc:
            return Outcome(error=exc, us_in=us_in, us_out=self._us())
        except ReplyLost:
            return Outcome(drop=True, us_in=us_in, us_out=self._us())
        except Exception:
            log.exception("sim_server_error", method=method)
            return Outcome(error=RpcError.of(11094), us_in=us_in, us_out=self._us())
        if faults.drop_reply:
            log.info("sim_fault_drop", method=method, order=faults.order_number)
        return Outcome(result=result, drop=faults.drop_reply, us_in=us_in, us_out=self._us())

    async def lose_reply(self, close: Callable[[], Awaitable[None] | None]) -> None:
        """Never answer: hold until the client gives up (or the server stops), or close now."""
        if self._plan.drop_mode == "hold":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._plan.hold_seconds)
        closing = close()
        if closing is not None:
            await closing

    # --- HTTP -----------------------------------------------------------------------------

    async def _http(self, request: web.Request) -> web.StreamResponse:
        method = f"{request.match_info['scope']}/{request.match_info['method']}"
        body = ""
        request_id: Any = None
        if request.method == "POST":
            body = await request.text()
            try:
                parsed = json.loads(body) if body else {}
                raw = parsed.get("params", {}) if isinstance(parsed, dict) else None
                request_id = parsed.get("id") if isinstance(parsed, dict) else None
                if not isinstance(raw, dict):
                    raise ValueError("params must be an object")
            except ValueError:
                error = Outcome(error=RpcError.of(-32700), us_in=self._us(), us_out=self._us())
                return self._json(error, None)
            params = Params(raw)
        else:
            params = Params(request.query)

        def authorize() -> None:
            token = params.opt_text("access_token")
            if token is not None:
                self.auth.check_token(token)
                return
            header = request.headers.get("Authorization")
            self.auth.check_header(header, request.method, request.raw_path, body)

        outcome = await self.process(method, params, authorize)
        if outcome.unavailable:
            return web.Response(status=503, text="503 Service Unavailable")
        if outcome.drop:

            def close() -> None:
                if request.transport is not None:
                    request.transport.close()

            await self.lose_reply(close)
            return web.Response(status=503, text="reply lost")
        return self._json(outcome, request_id)

    @staticmethod
    def _json(outcome: Outcome, request_id: Any) -> web.Response:
        status = outcome.error.http_status if outcome.error is not None else 200
        return web.Response(
            status=status, text=outcome.text(request_id), content_type="application/json"
        )
