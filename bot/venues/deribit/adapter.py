"""Deribit through ccxt (``ccxt.async_support.deribit``): the live venue adapter.

ccxt signs and sends; this module decides what may be retried and reads Deribit's own fields
(mapping in :mod:`bot.venues.deribit.mapping`). Every error leaves as one of the venue outcomes:
a rejection is final, a timeout on create/cancel is *unknown* (the caller looks the order up by
its label), rate limits and transient read failures are retried within a bound. Order creation
is never retried here. Deribit's two rate buckets (matching engine and the rest, settings
``venue.rate_limits``) are token buckets driven by the injected clock; ccxt's own throttle is
one bucket on wall time, so it is turned off.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import ccxt.async_support as ccxt
import numpy as np
import structlog
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from bot.clock import Clock
from bot.config import CurrencyFacts, VenueSettings
from bot.domain import (
    Account,
    DataError,
    Fill,
    Instrument,
    Mark,
    OrderRequest,
    OrderState,
    Position,
    Quote,
    utc,
)
from bot.venues.deribit import mapping as m
from bot.venues.errors import (
    OrderNotFound,
    OrderRejected,
    OutcomeUnknown,
    RateLimited,
    TransientError,
)
from bot.venues.ratelimit import RateBuckets, TokenBucket

log = structlog.get_logger("hedgebot.venues.deribit")

TRADES_PAGE = 1000  # Deribit's largest ``count`` for user trades
MAX_TRADE_PAGES = 50  # bound on one fills() read: 50,000 trades
_CLOCK_SKEW_MS = 3_600_000  # end_timestamp margin: a venue clock ahead of ours loses no trades


class UnsafeUrl(ValueError):
    """A custom venue URL that is neither loopback nor an https Deribit host."""


def venue_urls(url: str) -> dict[str, str]:
    """ccxt's ``urls["api"]`` for a custom network: REST base and its websocket counterpart.

    Only loopback (a local simulator) or https on a ``deribit.com`` host: API keys must never
    be signed towards anything else.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.username or parts.password or parts.query or parts.fragment:
        raise UnsafeUrl(f"venue url must not carry credentials, a query or a fragment: {url!r}")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    deribit = parts.scheme == "https" and (host == "deribit.com" or host.endswith(".deribit.com"))
    if not (deribit or (loopback and parts.scheme in ("http", "https"))):
        raise UnsafeUrl(
            f"venue url {url!r} refused: use http(s) on loopback or https on a deribit.com host"
        )
    base = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
    ws = f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}/ws/api/v2"
    return {"rest": base, "ws": ws}


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds on retrying one read: attempts, total clock seconds, full-jitter backoff."""

    attempts: int = 4
    total_seconds: float = 15.0
    base_seconds: float = 0.25
    cap_seconds: float = 4.0


def clock_seconds(clock: Clock) -> Callable[[], float]:
    """Seconds of ``clock`` since now, exact to its microseconds: the buckets' timer."""
    origin = clock.now()
    return lambda: (clock.now() - origin).total_seconds()


async def take_paced(bucket: TokenBucket, clock: Clock) -> None:
    """Take a token, sleeping on ``clock`` until one refills; a bucket that never refills is
    a clock that does not move, reported as RateLimited rather than a hang."""
    for _ in range(1000):
        if bucket.take():
            return
        await clock.sleep(bucket.seconds_to_token())
    raise RateLimited("local rate bucket did not refill: is the clock moving?")


class _Backoff(wait_base):
    """Full-jitter exponential backoff from a seeded generator; a rate limit waits at least
    what the venue asked."""

    def __init__(self, policy: RetryPolicy, rng: np.random.Generator) -> None:
        self._policy, self._rng = policy, rng

    def __call__(self, retry_state: RetryCallState) -> float:
        ceiling = min(
            self._policy.cap_seconds,
            self._policy.base_seconds * 2 ** (retry_state.attempt_number - 1),
        )
        delay = float(self._rng.uniform(0.0, ceiling))
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        return max(delay, exc.retry_after) if isinstance(exc, RateLimited) else delay


class _Deadline(stop_base):
    """Stop once ``seconds`` of the injected clock have passed since the first attempt."""

    def __init__(self, clock: Clock, seconds: float) -> None:
        self._clock, self._end = clock, clock.now().timestamp() + seconds

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self._clock.now().timestamp() >= self._end


def _result(response: Any, op: str) -> Any:
    if not isinstance(response, Mapping) or "result" not in response:
        raise TransientError(f"{op}: response without a JSON-RPC result: {str(response)[:200]}")
    return response["result"]


def _rows(response: Any, op: str) -> list[Mapping[str, Any]]:
    rows = _result(response, op)
    if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
        raise DataError(f"{op}: expected a list of objects, got {str(rows)[:200]}")
    return rows


class NoResendDeribit(ccxt.deribit):  # type: ignore[misc]
    """ccxt's Deribit client whose HTTP session never resends a request on its own.

    ccxt sends every Deribit call, ``private/buy`` included, as an HTTP GET, and aiohttp
    silently retries an idempotent method once when the server drops the connection before
    answering: an order accepted and then cut off would be placed twice. The contract and
    fault tests (``tests/test_deribit_sim_faults.py``) catch a regression on upgrade.
    """

    def open(self, lazy: bool = False) -> None:
        super().open(lazy)
        session = self.session
        if session is not None and getattr(session, "_retry_connection", False):
            session._retry_connection = False
        elif session is not None and not hasattr(session, "_retry_connection"):
            raise RuntimeError("aiohttp changed: cannot turn off its silent resend of GET")


def build_client(settings: VenueSettings) -> Any:
    """The async ccxt client: testnet unless mainnet is chosen explicitly; custom URLs checked."""
    config: dict[str, Any] = {
        "enableRateLimit": False,  # our two clocked buckets do it
        "timeout": int(settings.timeout_seconds * 1000),
        "options": {"maxRetriesOnFailure": 0},  # ccxt must never resend: we decide
    }
    if settings.api_key is not None and settings.api_secret is not None:
        config["apiKey"] = settings.api_key.get_secret_value()
        config["secret"] = settings.api_secret.get_secret_value()
    client = NoResendDeribit(config)
    if settings.network == "custom":
        if not settings.url:
            raise UnsafeUrl("venue.network=custom needs venue.url")
        client.urls["api"] = venue_urls(settings.url)
    elif settings.network != "mainnet":
        client.set_sandbox_mode(True)
    return client


RequestTimer = Callable[[str], contextlib.AbstractContextManager[object]]


class DeribitVenue:
    """A Deribit account through ccxt, implementing :class:`bot.venues.base.Venue`."""

    name = "deribit"

    def __init__(
        self,
        settings: VenueSettings,
        clock: Clock,
        *,
        retry: RetryPolicy | None = None,
        rng: np.random.Generator | None = None,
        client: Any | None = None,
        request_timer: RequestTimer | None = None,
    ) -> None:
        """``client`` replaces the ccxt client built from ``settings`` (tests inject one whose
        transport is scripted); ``rng`` draws the retry jitter; ``request_timer(op)`` wraps
        each request (the monitor's latency histogram)."""
        self._timed: RequestTimer = request_timer or (lambda op: contextlib.nullcontext())
        limits = settings.rate_limits
        self._facts: Mapping[str, CurrencyFacts] = settings.facts
        self._clock = clock
        self._retry = retry or RetryPolicy()
        self._rng = rng if rng is not None else np.random.default_rng()
        self._buckets = RateBuckets(limits, clock_seconds(clock))
        self._ex = client if client is not None else build_client(settings)
        self._instruments: dict[str, Instrument] = {}
        log.info("venue_client_built", network=settings.network, url=self._ex.urls["api"]["rest"])

    # --- plumbing -----------------------------------------------------------------------------

    async def _read(self, op: str, call: Callable[[], Awaitable[Any]]) -> Any:
        """One read, retried on TransientError/RateLimited within the policy's bounds."""
        p = self._retry
        retrying = AsyncRetrying(
            stop=_Deadline(self._clock, p.total_seconds) | stop_after_attempt(max(1, p.attempts)),
            wait=_Backoff(p, self._rng),
            retry=retry_if_exception_type((TransientError, RateLimited)),
            sleep=self._clock.sleep,
            reraise=True,
            before_sleep=lambda s: log.warning(
                "venue_read_retry",
                op=op,
                attempt=s.attempt_number,
                error=str(s.outcome.exception() if s.outcome else None)[:300],
            ),
        )
        async for attempt in retrying:
            with attempt:
                await take_paced(self._buckets.other, clock=self._clock)
                try:
                    with self._timed(op):
                        return await call()
                except ccxt.BaseError as exc:
                    raise m.map_error(exc, write=False) from exc
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    async def _write(self, op: str, call: Callable[[], Awaitable[Any]]) -> Any:
        """One matching-engine call, never retried: a failure after send is OutcomeUnknown."""
        await take_paced(self._buckets.matching, clock=self._clock)
        try:
            with self._timed(op):
                return await call()
        except Exception as exc:
            raise m.map_error(exc, write=True) from exc

    def _facts_of(self, currency: str) -> CurrencyFacts | None:
        return self._facts.get(currency)

    def _map_instrument(self, row: Mapping[str, Any]) -> Instrument:
        name = str(row.get("instrument_name", ""))
        inst = m.instrument_from_row(row, self._facts_of(str(row.get("base_currency") or "")))
        self._instruments[name] = inst
        return inst

    async def _instrument(self, name: str) -> Instrument:
        """A known instrument, or the venue's description of it (expired ones too)."""
        if name not in self._instruments:
            response = await self._read(
                "get_instrument",
                lambda: self._ex.publicGetGetInstrument({"instrument_name": name}),
            )
            row = _result(response, "get_instrument")
            if not isinstance(row, Mapping):
                raise DataError(f"get_instrument {name}: not an object: {str(row)[:200]}")
            self._map_instrument(row)
        return self._instruments[name]

    async def _market(self, name: str) -> Mapping[str, Any]:
        """ccxt's market for an instrument id; markets are reloaded once for a new listing."""
        for reload in (False, True):
            if reload or self._ex.markets is None:
                await self._read("load_markets", partial(self._ex.load_markets, reload))
            markets = self._ex.markets_by_id or {}
            if name in markets:
                market: Mapping[str, Any] = markets[name][0]
                return market
        raise OrderRejected(f"unknown instrument {name!r}")

    def _order_reply(self, op: str, order: Any) -> OrderState:
        """The order in a create/cancel reply; an unreadable reply leaves the outcome unknown."""
        try:
            return m.order_from_row(order["info"])
        except (DataError, KeyError, TypeError) as exc:
            raise OutcomeUnknown(f"{op}: unreadable reply ({exc}): look the order up") from exc

    # --- reads --------------------------------------------------------------------------------

    async def instruments(self, currency: str) -> list[Instrument]:
        response = await self._read(
            "get_instruments",
            lambda: self._ex.publicGetGetInstruments({"currency": currency, "expired": "false"}),
        )
        out: list[Instrument] = []
        for row in _rows(response, "get_instruments"):
            if row.get("kind") not in ("option", "future") or row.get("is_active") is False:
                continue
            try:
                out.append(self._map_instrument(row))
            except DataError as exc:
                log.warning(
                    "instrument_skipped", instrument=row.get("instrument_name"), error=str(exc)
                )
        return out

    async def positions(self, currency: str) -> list[Position]:
        response = await self._read(
            "get_positions", lambda: self._ex.privateGetGetPositions({"currency": currency})
        )
        rows = [r for r in _rows(response, "get_positions") if not m.is_flat(r)]
        if any(r.get("instrument_name") not in self._instruments for r in rows):
            await self.instruments(currency)  # one listing read instead of one per position
        out: list[Position] = []
        for row in rows:
            instrument = await self._instrument(m.text(row, "instrument_name"))
            out.append(m.position_from_row(row, instrument))
        return out

    async def account(self, currency: str) -> Account:
        balance = await self._read(
            "fetch_balance", lambda: self._ex.fetch_balance({"code": currency})
        )
        info = balance.get("info") if isinstance(balance, Mapping) else None
        if not isinstance(info, Mapping):
            raise DataError(f"account summary of {currency}: no info in {str(balance)[:200]}")
        return m.account_from_summary(info, currency, self._clock.now())

    async def marks(self, currency: str) -> list[Mark]:
        """Every option and future of ``currency``: one book-summary read per kind."""
        now = self._clock.now()
        out: list[Mark] = []
        for kind in ("option", "future"):
            response = await self._read(
                f"get_book_summary_by_currency({kind})",
                partial(
                    self._ex.publicGetGetBookSummaryByCurrency, {"currency": currency, "kind": kind}
                ),
            )
            for row in _rows(response, "get_book_summary_by_currency"):
                try:
                    out.append(m.mark_from_summary(row, now))
                except m.FieldError as exc:
                    log.warning(
                        "mark_skipped", instrument=exc.instrument, field=exc.field, value=exc.value
                    )
        return out

    async def quote(self, instrument_name: str) -> Quote:
        response = await self._read(
            "ticker", lambda: self._ex.publicGetTicker({"instrument_name": instrument_name})
        )
        row = _result(response, "ticker")
        if not isinstance(row, Mapping):
            raise DataError(f"ticker {instrument_name}: not an object: {str(row)[:200]}")
        return m.quote_from_ticker(row)

    # --- orders -------------------------------------------------------------------------------

    async def place_order(self, request: OrderRequest) -> OrderState:
        market = await self._market(request.instrument_name)
        instrument = self._map_instrument(market["info"])
        m.check_order(request, instrument)
        order = await self._write(
            "create_order",
            lambda: self._ex.create_order(
                market["symbol"],
                request.order_type.value,
                request.side.value,
                request.amount,
                request.price,
                m.order_params(request),
            ),
        )
        state = self._order_reply("create_order", order)
        log.info(
            "order_placed",
            label=request.label,
            order_id=state.venue_order_id,
            status=state.status.value,
            filled=state.filled_amount,
        )
        return state

    async def cancel_order(self, venue_order_id: str) -> OrderState:
        if self._ex.markets is None:  # ccxt loads them first; a failure there is a plain read
            await self._read("load_markets", lambda: self._ex.load_markets())
        order = await self._write("cancel_order", lambda: self._ex.cancel_order(venue_order_id))
        return self._order_reply("cancel_order", order)

    async def order_by_label(self, currency: str, label: str) -> OrderState | None:
        try:
            response = await self._read(
                "get_order_state_by_label",
                lambda: self._ex.privateGetGetOrderStateByLabel(
                    {"currency": currency, "label": label}
                ),
            )
        except OrderNotFound:
            return None
        row = m.latest_order(_rows(response, "get_order_state_by_label"))
        return m.order_from_row(row) if row is not None else None

    async def open_orders(self, currency: str) -> list[OrderState]:
        response = await self._read(
            "get_open_orders_by_currency",
            lambda: self._ex.privateGetGetOpenOrdersByCurrency({"currency": currency}),
        )
        return [m.order_from_row(r) for r in _rows(response, "get_open_orders_by_currency")]

    async def fills(self, currency: str, since: datetime | None = None) -> list[Fill]:
        """Our trades since ``since`` (inclusive), oldest first, paged by timestamp."""
        start = m.to_ms(utc(since)) if since is not None else 0
        end = m.to_ms(self._clock.now()) + _CLOCK_SKEW_MS
        seen: dict[str, Fill] = {}
        for _ in range(MAX_TRADE_PAGES):
            request = {
                "currency": currency,
                "start_timestamp": start,
                "end_timestamp": end,
                "count": TRADES_PAGE,
                "sorting": "asc",
            }
            response = await self._read(
                "get_user_trades_by_currency_and_time",
                partial(self._ex.privateGetGetUserTradesByCurrencyAndTime, request),
            )
            page = _result(response, "get_user_trades_by_currency_and_time")
            trades = page.get("trades") if isinstance(page, Mapping) else None
            if not isinstance(trades, list):
                raise DataError(f"user trades of {currency}: no trades list in {str(page)[:200]}")
            fresh = [m.fill_from_trade(t) for t in trades if str(t.get("trade_id")) not in seen]
            seen.update((f.trade_id, f) for f in fresh)
            if not page.get("has_more") or not fresh:
                break
            start = max(m.to_ms(f.timestamp) for f in fresh)
        else:
            log.warning("fills_truncated", currency=currency, pages=MAX_TRADE_PAGES)
        cutoff = utc(since) if since is not None else None
        kept = [f for f in seen.values() if cutoff is None or f.timestamp >= cutoff]
        return sorted(kept, key=lambda f: (f.timestamp, f.trade_id))

    async def close(self) -> None:
        await self._ex.close()
