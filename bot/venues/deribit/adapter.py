"""Deribit through ccxt (``ccxt.async_support.deribit``): the live venue adapter.

ccxt signs and sends (the client: :mod:`bot.venues.deribit.client`); this module decides what
may be retried and reads Deribit's own fields (mapping in :mod:`bot.venues.deribit.mapping`).
Every error leaves as one of the venue outcomes: a rejection is final, a timeout on
create/cancel is *unknown* (the caller looks the order up by its label), rate limits and
transient read failures are retried within a bound, and a read that still fails is a
``ReadFailed`` naming its method. Order creation is never retried here. Calls are paced on the
injected clock (:mod:`bot.venues.deribit.pacing`); ccxt's own throttle is one bucket on wall
time, so it is turned off. The venue's instrument facts (:mod:`bot.venues.deribit.facts`) and
its clock (:mod:`bot.venues.venue_clock`) are checked before a cycle's first read.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

import ccxt.async_support as ccxt
import numpy as np
import structlog
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

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
from bot.venues.deribit.client import (
    NoResendDeribit,
    PrivateCallRefused,
    PublicOnlyDeribit,
    UnsafeUrl,
    build_client,
    venue_urls,
)
from bot.venues.deribit.derive import complete_summaries
from bot.venues.deribit.facts import VenueFacts, refuse_contradictions, venue_facts
from bot.venues.deribit.pacing import (
    Backoff,
    Deadline,
    RetryPolicy,
    clock_seconds,
    retryable,
    take_paced,
)
from bot.venues.errors import (
    AuthError,
    OrderNotFound,
    OrderRejected,
    OutcomeUnknown,
    ReadFailed,
    TransientError,
    VenueError,
)
from bot.venues.ratelimit import RateBuckets
from bot.venues.reads import gather_or_cancel
from bot.venues.venue_clock import VenueClock

log = structlog.get_logger("hedgebot.venues.deribit")

TRADES_PAGE = 1000  # Deribit's largest ``count`` for user trades
MAX_TRADE_PAGES = 50  # bound on one fills() read of one store: 50,000 trades
RECENT_TRADES_MS = 24 * 3_600_000  # Deribit's recent store of trades; older need historical
_CLOCK_SKEW_MS = 3_600_000  # end_timestamp margin: a venue clock ahead of ours loses no trades

__all__ = [  # the client and pacing pieces, where callers have always found them
    "DeribitVenue",
    "NoResendDeribit",
    "PrivateCallRefused",
    "PublicOnlyDeribit",
    "RetryPolicy",
    "UnsafeUrl",
    "build_client",
    "clock_seconds",
    "take_paced",
    "venue_urls",
]


def _result(response: Any, op: str) -> Any:
    if not isinstance(response, Mapping) or "result" not in response:
        raise TransientError(f"{op}: response without a JSON-RPC result: {str(response)[:200]}")
    return response["result"]


def _rows(response: Any, op: str) -> list[Mapping[str, Any]]:
    rows = _result(response, op)
    if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
        raise DataError(f"{op}: expected a list of objects, got {str(rows)[:200]}")
    return rows


RequestTimer = Callable[[str], contextlib.AbstractContextManager[object]]


class DeribitVenue:
    """A Deribit account through ccxt, implementing :class:`bot.venues.base.Venue`."""

    name = "deribit"

    def __init__(
        self,
        settings: VenueSettings,
        clock: Clock,
        *,
        rng: np.random.Generator,
        retry: RetryPolicy | None = None,
        client: Any | None = None,
        measure_clock: bool = True,
        request_timer: RequestTimer | None = None,
    ) -> None:
        """``client`` replaces the ccxt client built from ``settings`` (tests inject one whose
        transport is scripted); ``rng`` (seeded by the caller) draws the retry jitter, so a
        run's waits replay from its seed. ``measure_clock`` keeps a :class:`VenueClock` (off
        when the venue's time is a simulation sharing ours); ``request_timer(op)`` wraps each
        request (the monitor's latency histogram)."""
        self._timed: RequestTimer = request_timer or (lambda op: contextlib.nullcontext())
        limits = settings.rate_limits
        self._facts: Mapping[str, CurrencyFacts] = settings.facts
        self._ticker_max = settings.marks_ticker_max
        self._clock = clock
        self._retry = retry or RetryPolicy()
        self._rng = rng
        self._buckets = RateBuckets(limits, clock_seconds(clock))
        self._ex = client if client is not None else build_client(settings)
        self._instruments: dict[str, Instrument] = {}
        self._closed = False
        self.venue_clock: VenueClock | None = None
        if measure_clock:
            self.venue_clock = VenueClock(
                clock,
                self.server_time,
                refresh_seconds=settings.clock.refresh_seconds,
                max_offset_seconds=settings.clock.max_offset_seconds,
            )
        self._inactive: set[str] = set()
        self._venue_facts: dict[str, VenueFacts] = {}
        self._listed: set[str] = set()  # currencies whose listing has been read once
        log.info("venue_client_built", network=settings.network, url=self._ex.urls["api"]["rest"])

    # --- plumbing -----------------------------------------------------------------------------

    async def _read(self, op: str, call: Callable[[], Awaitable[Any]]) -> Any:
        """One read, retried on TransientError/RateLimited within the policy's bounds.

        What still fails leaves as :class:`ReadFailed` naming ``op`` (a refused read is not an
        order rejection); OrderNotFound and AuthError keep their meaning. Nothing is sent, or
        retried, once the client is closed.
        """
        p = self._retry
        retrying = AsyncRetrying(
            stop=Deadline(self._clock, p.total_seconds) | stop_after_attempt(max(1, p.attempts)),
            wait=Backoff(p, self._rng),
            retry=retry_if_exception(retryable),
            sleep=self._clock.sleep,
            reraise=True,
            before_sleep=lambda s: log.warning(
                "venue_read_retry",
                op=op,
                attempt=s.attempt_number,
                error=str(s.outcome.exception() if s.outcome else None)[:300],
            ),
        )
        try:
            async for attempt in retrying:
                with attempt:
                    if self._closed:
                        raise ReadFailed(op, "the venue client is closed")
                    await take_paced(self._buckets.other, clock=self._clock)
                    try:
                        with self._timed(op):
                            return await call()
                    except ccxt.BaseError as exc:
                        raise m.map_error(exc, write=False) from exc
        except (OrderNotFound, AuthError, ReadFailed):
            raise
        except VenueError as exc:
            raise ReadFailed(op, exc) from exc
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
        if row.get("is_active") is False or row.get("state") in ("settled", "closed"):
            self._inactive.add(name)
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
        self._listed.add(currency)
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
        """Open positions. ``direction: zero`` rows (closed) are left out, and said so; a held
        instrument past its expiry is kept and logged as settling (or settled, once the venue
        lists it inactive): the Greeks engine counts it as expired, never silently."""
        if self.venue_clock is not None:
            await self.venue_clock.ensure()  # every cycle starts here: no trading on a bad clock
        await self.facts(currency)
        response = await self._read(
            "get_positions", lambda: self._ex.privateGetGetPositions({"currency": currency})
        )
        all_rows = _rows(response, "get_positions")
        flat = [str(r.get("instrument_name")) for r in all_rows if m.is_flat(r)]
        if flat:
            log.info("positions_flat_ignored", currency=currency, instruments=flat)
        rows = [r for r in all_rows if not m.is_flat(r)]
        unknown = any(r.get("instrument_name") not in self._instruments for r in rows)
        if unknown and currency not in self._listed:
            await self.instruments(currency)  # one listing read instead of one per position
        out: list[Position] = []
        now = self._clock.now()
        for row in rows:
            instrument = await self._instrument(m.text(row, "instrument_name"))
            position = m.position_from_row(row, instrument)
            if instrument.expiry is not None and instrument.expiry <= now:
                log.warning(
                    "position_settling",
                    instrument=instrument.name,
                    size=position.size,
                    expired_at=instrument.expiry.isoformat(),
                    state="settled" if instrument.name in self._inactive else "settling",
                )
            out.append(position)
        return out

    async def account(self, currency: str) -> Account:
        balance = await self._read(
            "fetch_balance", lambda: self._ex.fetch_balance({"code": currency})
        )
        info = balance.get("info") if isinstance(balance, Mapping) else None
        if not isinstance(info, Mapping):
            raise DataError(f"account summary of {currency}: no info in {str(balance)[:200]}")
        return m.account_from_summary(info, currency, self._clock.now())

    async def marks(self, currency: str, instruments: Collection[str] | None = None) -> list[Mark]:
        """Marks of ``instruments`` (the held ones), or of every option and future of
        ``currency`` when None. A few instruments (up to ``venue.marks_ticker_max``) are read
        by ``public/ticker`` each, concurrently; more by one book-summary read per kind, of
        which only the named rows are parsed. Options without ``mark_iv`` or
        ``underlying_price`` get them derived (see ``derive``). A named instrument without a
        usable mark fails the read: a held instrument is never dropped silently."""
        now = self._clock.now()
        wanted = None if instruments is None else set(instruments)
        if wanted is not None and not wanted:
            return []
        if wanted is not None and len(wanted) <= self._ticker_max:
            options, futures = await self._ticker_rows(currency, sorted(wanted))
        else:
            options = await self._summaries(currency, "option")
            futures = await self._summaries(currency, "future")
            if wanted is not None:
                options = [r for r in options if r.get("instrument_name") in wanted]
        done = complete_summaries(options, futures, now)
        if done.iv_source or done.forward_source:
            sources = [*done.forward_source.values(), *(f"iv_{v}" for v in done.iv_source.values())]
            log.info(
                "marks_derived",
                currency=currency,
                counts={s: sources.count(s) for s in sorted(set(sources))},
            )
        if wanted is not None:  # the futures read to derive forwards are not asked for
            futures = [r for r in futures if r.get("instrument_name") in wanted]
        out: list[Mark] = []
        failed: dict[str, str] = {}
        for row in [*done.rows, *futures]:
            try:
                mark = m.mark_from_summary(row, now)
            except m.FieldError as exc:
                why = done.unsolved.get(exc.instrument)
                log.warning(
                    "mark_skipped",
                    instrument=exc.instrument,
                    field=exc.field,
                    value=exc.value,
                    why=why,
                )
                failed[exc.instrument] = why or f"{exc.field}={exc.value!r}"
                continue
            name = mark.instrument_name
            if name in done.iv_source or name in done.forward_source:
                mark = replace(
                    mark,
                    iv_source=done.iv_source.get(name, "venue"),
                    forward_source=done.forward_source.get(name, "venue"),
                )
            out.append(mark)
        if wanted is not None:
            missing = sorted(wanted - {mark.instrument_name for mark in out})
            if missing:
                reasons = ", ".join(f"{n} ({failed.get(n, 'not in the answer')})" for n in missing)
                raise DataError(f"marks of {currency}: no usable mark for {reasons}")
        return out

    async def _summaries(self, currency: str, kind: str) -> list[Mapping[str, Any]]:
        """``public/get_book_summary_by_currency`` of one kind: every listed instrument."""
        op = f"get_book_summary_by_currency({kind})"
        response = await self._read(
            op,
            partial(
                self._ex.publicGetGetBookSummaryByCurrency, {"currency": currency, "kind": kind}
            ),
        )
        return _rows(response, op)

    async def _ticker_rows(
        self, currency: str, names: list[str]
    ) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
        """(option rows, future rows) from one ``public/ticker`` per instrument, read together
        (each paced on the ``other`` bucket), in the book summary's field names. The futures'
        summary is read too only when an option leaves out its ``underlying_price``."""
        rows = await gather_or_cancel(*(self._ticker_row(name) for name in names))
        options: list[Mapping[str, Any]] = []
        futures: list[Mapping[str, Any]] = []
        for row in rows:
            is_option = str(row.get("instrument_name")).endswith(("-C", "-P"))
            (options if is_option else futures).append(row)
        if any(r.get("underlying_price") is None for r in options):
            held = {str(r.get("instrument_name")) for r in futures}
            listed = await self._summaries(currency, "future")
            futures += [r for r in listed if r.get("instrument_name") not in held]
        return options, futures

    async def _ticker_row(self, name: str) -> Mapping[str, Any]:
        response = await self._read(
            "ticker", partial(self._ex.publicGetTicker, {"instrument_name": name})
        )
        row = _result(response, "ticker")
        if not isinstance(row, Mapping):
            raise DataError(f"ticker {name}: not an object: {str(row)[:200]}")
        if row.get("instrument_name") != name:
            raise DataError(f"ticker {name}: answered for {row.get('instrument_name')!r}")
        return m.summary_from_ticker(row)

    async def order_book(
        self, instrument_name: str, depth: int = 10
    ) -> tuple[Quote, list[tuple[float, float]], list[tuple[float, float]]]:
        """``public/get_order_book``: the top as a quote, and ``depth`` (price, amount) levels a
        side, best first. An empty side is an empty list here (the quote refuses it)."""
        op = "get_order_book"
        response = await self._read(
            op,
            partial(
                self._ex.publicGetGetOrderBook,
                {"instrument_name": instrument_name, "depth": depth},
            ),
        )
        row = _result(response, op)
        if not isinstance(row, Mapping):
            raise DataError(f"{op} {instrument_name}: not an object: {str(row)[:200]}")
        sides = []
        for key in ("bids", "asks"):
            levels = row.get(key)
            if not isinstance(levels, list):
                raise DataError(f"{op} {instrument_name}: no {key} list")
            sides.append([m.book_level(instrument_name, key, level) for level in levels])
        return m.quote_from_ticker(row), sides[0], sides[1]

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

    async def order_by_id(self, currency: str, venue_order_id: str) -> OrderState | None:
        try:
            response = await self._read(
                "get_order_state",
                lambda: self._ex.privateGetGetOrderState({"order_id": venue_order_id}),
            )
        except OrderNotFound:
            return None
        row = _result(response, "get_order_state")
        if not isinstance(row, Mapping):
            raise DataError(f"get_order_state: not an object: {str(row)[:200]}")
        return m.order_from_row(row)

    async def open_orders(self, currency: str) -> list[OrderState]:
        response = await self._read(
            "get_open_orders_by_currency",
            lambda: self._ex.privateGetGetOpenOrdersByCurrency({"currency": currency}),
        )
        return [m.order_from_row(r) for r in _rows(response, "get_open_orders_by_currency")]

    async def fills(self, currency: str, since: datetime | None = None) -> list[Fill]:
        """Our trades since ``since`` (inclusive), oldest first, paged by timestamp.

        Deribit serves trades of the last 24 hours from its recent store and older ones only
        with ``historical: true``, which in turn shows a trade after a short indexing delay
        (https://docs.deribit.com/articles/accessing-historical-trades-orders): a window that
        reaches back that far reads both, merged by trade id, so no fill is missed either
        side of the line."""
        start = m.to_ms(utc(since)) if since is not None else 0
        now = m.to_ms(self._clock.now())
        end = now + _CLOCK_SKEW_MS
        seen: dict[str, Fill] = {}
        if start < now - RECENT_TRADES_MS + _CLOCK_SKEW_MS:
            await self._trade_pages(currency, start, end, seen, historical=True)
        await self._trade_pages(currency, start, end, seen, historical=False)
        cutoff = utc(since) if since is not None else None
        kept = [f for f in seen.values() if cutoff is None or f.timestamp >= cutoff]
        return sorted(kept, key=lambda f: (f.timestamp, f.trade_id))

    async def _trade_pages(
        self, currency: str, start: int, end: int, seen: dict[str, Fill], *, historical: bool
    ) -> None:
        """Every trade from ``start`` to ``end`` (ms) of one store into ``seen``."""
        for _ in range(MAX_TRADE_PAGES):
            request = {
                "currency": currency,
                "start_timestamp": start,
                "end_timestamp": end,
                "count": TRADES_PAGE,
                "sorting": "asc",
                "historical": historical,
            }
            response = await self._read(
                "get_user_trades_by_currency_and_time",
                partial(self._ex.privateGetGetUserTradesByCurrencyAndTime, request),
            )
            page = _result(response, "get_user_trades_by_currency_and_time")
            trades = page.get("trades") if isinstance(page, Mapping) else None
            if not isinstance(trades, list):
                raise DataError(f"user trades of {currency}: no trades list in {str(page)[:200]}")
            fills = [m.fill_from_trade(t) for t in trades]
            fresh = [f for f in fills if f.trade_id not in seen]
            seen.update((f.trade_id, f) for f in fresh)
            if not page.get("has_more") or not fills:
                return
            last = max(m.to_ms(f.timestamp) for f in fills)
            if last <= start and not fresh:
                return  # a page that neither moves on nor adds anything: nothing more to read
            start = last  # a page the other store already gave still moves the window on
        log.warning("fills_truncated", currency=currency, pages=MAX_TRADE_PAGES)

    async def facts(self, currency: str) -> VenueFacts | None:
        """The venue's instrument facts for ``currency`` from ccxt's markets, checked once
        against ``venue.facts`` (FactsRefused on a contradiction); None without settings."""
        setting = self._facts_of(currency)
        if setting is None:
            return None
        if currency not in self._venue_facts:
            if self._ex.markets is None:
                await self._read("load_markets", partial(self._ex.load_markets, False))
            markets = self._ex.markets_by_id or {}
            found = venue_facts(currency, setting, markets)
            refuse_contradictions(setting, found)
            for entry in markets.values():  # the listing is known now: no second read of it
                info = entry[0].get("info") if entry else None
                if isinstance(info, Mapping) and info.get("base_currency") == currency:
                    with contextlib.suppress(DataError):
                        self._map_instrument(info)
            self._listed.add(currency)
            self._venue_facts[currency] = found
            log.info(
                "venue_facts",
                currency=currency,
                perpetual=found.perpetual.name,
                contract_size=found.perpetual.contract_size,
                min_amount=found.perpetual.min_amount,
                tick_size=found.perpetual.tick_size,
                inverse=found.perpetual.inverse,
            )
        return self._venue_facts[currency]

    async def key_scope(self) -> str:
        """The scopes Deribit grants this API key (``public/auth``, ``client_signature``
        grant: the secret itself never leaves in a URL, so it cannot reach an error or log)."""
        key, secret = self._ex.apiKey, self._ex.secret
        if not key or not secret:
            raise AuthError(
                "no API key: set HEDGEBOT__VENUE__API_KEY and HEDGEBOT__VENUE__API_SECRET"
            )
        timestamp = str(m.to_ms(self._clock.now()))
        nonce = f"{int(self._rng.integers(0, 2**63)):x}"
        signed = hmac.new(
            str(secret).encode(), f"{timestamp}\n{nonce}\n".encode(), hashlib.sha256
        ).hexdigest()
        params = {
            "grant_type": "client_signature",
            "client_id": key,
            "timestamp": timestamp,
            "nonce": nonce,
            "data": "",
            "signature": signed,
        }
        response = await self._read("auth", partial(self._ex.publicGetAuth, params))
        grant = _result(response, "auth")
        scope = grant.get("scope") if isinstance(grant, Mapping) else None
        if not isinstance(scope, str):
            keys = sorted(grant) if isinstance(grant, Mapping) else grant
            raise DataError(f"auth: no scope in the grant: {keys!r}")
        return scope

    async def server_time(self) -> datetime:
        """The venue's clock (``public/get_time``, milliseconds since the epoch)."""
        response = await self._read("get_time", lambda: self._ex.publicGetGetTime())
        ms = _result(response, "get_time")
        if isinstance(ms, bool) or not isinstance(ms, int | float) or ms <= 0:
            raise DataError(f"get_time: not a timestamp: {str(ms)[:100]}")
        return datetime.fromtimestamp(ms / 1000.0, tz=UTC)

    async def close(self) -> None:
        self._closed = True
        await self._ex.close()
