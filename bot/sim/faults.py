"""Seeded faults for the simulated Deribit server: what a real venue does to a client on a bad day.

A :class:`WireFaultPlan` says which faults happen and how often; a :class:`FaultSchedule` draws
them request by request from one seeded generator, always the same number of draws per request,
so a plan and a seed replay the same faults in the same places whichever of them are switched on.

Each fault is either a probability per request or an explicit tuple of request numbers (1-based):

- ``latency_ms`` (lo, hi): every answer waits a uniform draw in that range;
- ``error_5xx``: the request is answered with HTTP 503 before it acts;
- ``rate_limit_burst``: a burst of ``rate_limit_burst_length`` requests answered 10028 starts;
- ``accept_then_drop`` (orders only, numbered by order): the order is placed in the engine
  (it rests or fills) but the reply never comes: the connection is closed, or held until the
  client gives up (``drop_mode``);
- ``partial_fill`` (orders only): the book offers only ``partial_fill_ratio`` of the order, so it
  fills partly; a GTC limit rests the rest, other orders cancel it, as on Deribit;
- ``visibility_delay_s``: a new order is missing from label look-ups and open-order lists for
  that many seconds of the server's clock (replication lag);
- ``clock_offset_s``: the venue's whole clock (``public/get_time`` and every timestamp it
  sends) runs that many seconds ahead of (negative: behind) the clock it was given.

Partial fills act on the market the paper venue reads: build the venue on a
:class:`ThinnableMarket` and give the same object to the server.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

import numpy as np

from bot.domain import DataError, Instrument, Mark, Quote
from bot.venues.paper.market import MarketSource
from bot.venues.paper.matching import Level, round_down

Trigger = float | Sequence[int]
DropMode = Literal["close", "hold"]
DRAWS_PER_REQUEST = 5


def _check_trigger(name: str, value: Trigger) -> None:
    if isinstance(value, bool):
        raise ValueError(f"WireFaultPlan.{name} must be a probability or request numbers")
    if isinstance(value, float | int):
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"WireFaultPlan.{name} must be a probability, got {value!r}")
        return
    numbers = list(value)
    if any(not isinstance(n, int) or isinstance(n, bool) or n < 1 for n in numbers):
        raise ValueError(f"WireFaultPlan.{name} request numbers must be integers >= 1: {value!r}")


def _fires(trigger: Trigger, number: int, draw: float) -> bool:
    if isinstance(trigger, float | int):
        return draw < float(trigger)
    return number in trigger


@dataclass(frozen=True)
class WireFaultPlan:
    """Which faults the server injects on the wire (HTTP and WebSocket requests), and how often;
    see the module docstring. The in-process paper venue has no wire: its faults are the port
    outcomes of :class:`bot.venues.paper.venue.PaperFaultPlan`."""

    seed: int = 0
    latency_ms: tuple[float, float] = (0.0, 0.0)
    accept_then_drop: Trigger = 0.0
    rate_limit_burst: Trigger = 0.0
    rate_limit_burst_length: int = 3
    error_5xx: Trigger = 0.0
    partial_fill: Trigger = 0.0
    partial_fill_ratio: float = 0.5
    visibility_delay_s: float = 0.0
    drop_mode: DropMode = "close"
    hold_seconds: float = 30.0
    clock_offset_s: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"WireFaultPlan.seed must be an integer >= 0: {self.seed!r}")
        lo, hi = self.latency_ms
        if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo <= hi):
            raise ValueError(
                f"WireFaultPlan.latency_ms must be 0 <= lo <= hi, got {self.latency_ms}"
            )
        for name in ("accept_then_drop", "rate_limit_burst", "error_5xx", "partial_fill"):
            value = getattr(self, name)
            _check_trigger(name, value)
            if not isinstance(value, float | int):
                object.__setattr__(self, name, tuple(value))
        if self.rate_limit_burst_length < 1:
            raise ValueError("WireFaultPlan.rate_limit_burst_length must be at least 1")
        if not 0.0 < self.partial_fill_ratio < 1.0:
            raise ValueError("WireFaultPlan.partial_fill_ratio must be strictly between 0 and 1")
        if not (math.isfinite(self.visibility_delay_s) and self.visibility_delay_s >= 0):
            raise ValueError("WireFaultPlan.visibility_delay_s must be a non-negative number")
        if self.drop_mode not in ("close", "hold"):
            raise ValueError(
                f"WireFaultPlan.drop_mode must be 'close' or 'hold': {self.drop_mode!r}"
            )
        if not (math.isfinite(self.hold_seconds) and self.hold_seconds > 0):
            raise ValueError("WireFaultPlan.hold_seconds must be positive")
        if not (math.isfinite(self.clock_offset_s) and abs(self.clock_offset_s) <= 86_400):
            raise ValueError("WireFaultPlan.clock_offset_s must be seconds within a day")

    @property
    def needs_thinnable_market(self) -> bool:
        return bool(self.partial_fill)


@dataclass(frozen=True)
class Faults:
    """What happens to one request."""

    request_number: int
    order_number: int | None  # set for order placements (buy/sell)
    latency_s: float = 0.0
    error_5xx: bool = False
    rate_limited: bool = False
    drop_reply: bool = False
    partial_fill: bool = False


@dataclass
class FaultSchedule:
    """The stateful side of a plan: request counters, the burst in progress, the generator."""

    plan: WireFaultPlan
    _rng: np.random.Generator = field(init=False, repr=False)
    _requests: int = field(init=False, default=0)
    _orders: int = field(init=False, default=0)
    _burst_left: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._rng = np.random.Generator(np.random.PCG64(self.plan.seed))

    def next(self, *, is_order: bool) -> Faults:
        """Draw the faults of the next request (an order placement when ``is_order``)."""
        plan = self.plan
        self._requests += 1
        number = self._requests
        u_latency, u_5xx, u_burst, u_drop, u_partial = self._rng.random(DRAWS_PER_REQUEST)
        lo, hi = plan.latency_ms
        latency = (lo + float(u_latency) * (hi - lo)) / 1000.0
        if self._burst_left == 0 and _fires(plan.rate_limit_burst, number, float(u_burst)):
            self._burst_left = plan.rate_limit_burst_length
        limited = self._burst_left > 0
        if limited:
            self._burst_left -= 1
        error = not limited and _fires(plan.error_5xx, number, float(u_5xx))
        order_number: int | None = None
        drop = partial = False
        if is_order and not (limited or error):
            self._orders += 1
            order_number = self._orders
            drop = _fires(plan.accept_then_drop, order_number, float(u_drop))
            partial = _fires(plan.partial_fill, order_number, float(u_partial))
        return Faults(number, order_number, latency, error, limited, drop, partial)


class ServedMarket(MarketSource, Protocol):
    """The market data the server publishes: a paper venue's source plus listing history."""

    @property
    def start(self) -> datetime: ...

    def listed_from(self, expiry: datetime) -> datetime: ...

    def index_at(self, currency: str, ts: datetime) -> float: ...


def _thin(levels: list[Level], limit: float, step: float) -> list[Level]:
    out: list[Level] = []
    left = limit
    for price, amount in levels:
        take = min(amount, left)
        if take <= 0:
            break
        out.append((price, take))
        left = round_down(left - take, step)
    return out


class ThinnableMarket:
    """A market whose books can be cut to a given depth for one order (partial fills).

    Everything else is the wrapped market's, unchanged; the paper venue matches against the
    thinned book while :meth:`thinned` is active, so the partial fill is the engine's own.
    """

    def __init__(self, market: ServedMarket) -> None:
        self._market = market
        self._limits: dict[str, float] = {}

    @contextmanager
    def thinned(self, name: str, depth: float) -> Iterator[None]:
        """Within the block, each side of ``name``'s book holds at most ``depth`` in total."""
        if not (math.isfinite(depth) and depth > 0):
            raise DataError(f"thinned depth must be positive, got {depth!r}")
        self._limits[name] = depth
        try:
            yield
        finally:
            self._limits.pop(name, None)

    @property
    def currencies(self) -> tuple[str, ...]:
        return self._market.currencies

    @property
    def start(self) -> datetime:
        return self._market.start

    def now(self) -> datetime:
        return self._market.now()

    def index(self, currency: str) -> float:
        return self._market.index(currency)

    def index_at(self, currency: str, ts: datetime) -> float:
        return self._market.index_at(currency, ts)

    def listed_from(self, expiry: datetime) -> datetime:
        return self._market.listed_from(expiry)

    def instruments(self, currency: str) -> list[Instrument]:
        return self._market.instruments(currency)

    def instrument(self, name: str) -> Instrument:
        return self._market.instrument(name)

    def marks(self, currency: str) -> list[Mark]:
        return self._market.marks(currency)

    def quote(self, name: str) -> Quote:
        return self._market.quote(name)

    def order_book(self, name: str) -> tuple[list[Level], list[Level]]:
        bids, asks = self._market.order_book(name)
        limit = self._limits.get(name)
        if limit is None:
            return bids, asks
        step = self._market.instrument(name).amount_step
        return _thin(bids, limit, step), _thin(asks, limit, step)

    def settlement_price(self, currency: str, expiry: datetime) -> float:
        return self._market.settlement_price(currency, expiry)

    def starting_equity(self, currency: str) -> float:
        return self._market.starting_equity(currency)

    def starting_book(self, currency: str) -> list[tuple[Instrument, float]]:
        return self._market.starting_book(currency)
