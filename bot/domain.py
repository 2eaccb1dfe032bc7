"""Value types shared by every room of hedgebot.

They are frozen dataclasses with no behaviour beyond validation and unit conversion, so the
tracker, the Greeks engine, the policies, the executor and the ledger agree on one vocabulary.

Units follow Deribit: option sizes and prices in coin (inverse options), perpetual and future
sizes in USD (inverse contracts), forwards and index in USD, implied volatility as a decimal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property


class InstrumentKind(StrEnum):
    OPTION = "option"
    FUTURE = "future"
    PERPETUAL = "perpetual"


class OptionType(StrEnum):
    CALL = "call"
    PUT = "put"


class TargetMode(StrEnum):
    """What a hedge to zero flattens.

    COIN hedges Deribit's ``delta_total`` (net option deltas plus futures) so P&L in the coin is
    flat; USD hedges ``equity + delta_total`` so P&L in dollars is flat.
    """

    COIN = "coin"
    USD = "usd"


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    @staticmethod
    def of(quantity: float) -> Side:
        return Side.BUY if quantity > 0 else Side.SELL


class OrderType(StrEnum):
    LIMIT = "limit"
    MARKET = "market"


class TimeInForce(StrEnum):
    GTC = "good_til_cancelled"
    IOC = "immediate_or_cancel"
    FOK = "fill_or_kill"


class OrderStatus(StrEnum):
    """Our view of an order. PENDING and UNKNOWN are ours; the rest are venue evidence."""

    PENDING = "pending"  # recorded, not yet sent
    UNKNOWN = "unknown"  # sent, outcome not known (timeout): look it up by label
    OPEN = "open"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"

    @property
    def terminal(self) -> bool:
        return self in (OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED)


class RebalanceStatus(StrEnum):
    """How a rebalance cycle ended: the ledger's ``status`` and the cycle's result agree on it."""

    TRADED = "traded"  # orders were sent and worked to an outcome
    NO_TRADE = "no_trade"  # inside the band: nothing to do
    SKIPPED = "skipped"  # not evaluated: a read that does not add up, orders pending, declined
    DENIED = "denied"  # the risk gate refused the order
    DRY_RUN = "dry_run"  # decided, deliberately not sent
    FAILED = "failed"  # execution raised after the decision: orders may be on record


class TradingState(StrEnum):
    """The risk gate's persisted state."""

    ACTIVE = "active"
    REDUCING = "reducing"  # only orders that shrink the hedge
    HALTED = "halted"


class Liquidity(StrEnum):
    MAKER = "maker"
    TAKER = "taker"


class DataError(ValueError):
    """Market or position data that cannot be used (NaN, non-positive, missing, expired)."""


def require_positive(name: str, value: float) -> float:
    """Reject NaN, infinite, zero and negative prices with an error that names the field."""
    if value is None or not math.isfinite(value) or value <= 0:
        raise DataError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def utc(ts: datetime) -> datetime:
    """Return ``ts`` as an aware UTC datetime; naive datetimes are taken to be UTC."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


@dataclass(frozen=True)
class Instrument:
    """A tradable instrument and the venue facts needed to size orders in it."""

    name: str
    currency: str
    kind: InstrumentKind
    contract_size: float  # USD per contract for inverse perps/futures, coin per option
    min_amount: float  # smallest order, in the instrument's amount unit
    amount_step: float  # order amounts are multiples of this
    tick_size: float
    inverse: bool = True
    expiry: datetime | None = None
    strike: float | None = None
    option_type: OptionType | None = None

    @property
    def is_option(self) -> bool:
        return self.kind is InstrumentKind.OPTION

    def coin_delta_of_amount(self, amount: float, price: float) -> float:
        """Coin delta of a linear-in-price position of ``amount`` (perp or future)."""
        return amount / price if self.inverse else amount


@dataclass(frozen=True)
class Position:
    """A signed position in Deribit units (coin for options, USD for inverse futures/perps)."""

    instrument: Instrument
    size: float
    average_price: float = 0.0
    venue_delta: float | None = None  # what the venue reports, for reconciliation


@dataclass(frozen=True)
class Mark:
    """Venue marks for one instrument at one time.

    ``mark_price`` is in coin for options, USD for futures and perpetuals. ``underlying_price``
    is the forward the option is priced on (its expiry's future or synthetic), in USD.
    """

    instrument_name: str
    mark_price: float
    underlying_price: float
    index_price: float
    timestamp: datetime
    mark_iv: float | None = None  # decimal, options only
    bid: float | None = None
    ask: float | None = None
    # Where the IV and forward came from when the venue left them out: "venue" (its own
    # fields), "mark_price" (IV solved from the mark), "future" / "index" (forward stand-ins)
    iv_source: str = "venue"
    forward_source: str = "venue"


@dataclass(frozen=True)
class Quote:
    """Top of book and depth of the hedge instrument."""

    instrument_name: str
    bid: float
    ask: float
    mark: float
    index_price: float
    timestamp: datetime
    bid_size: float = 0.0
    ask_size: float = 0.0

    @property
    def mid(self) -> float:
        return 0.5 * (self.bid + self.ask)


@dataclass(frozen=True)
class Account:
    """Balances of one currency's account (coin units)."""

    currency: str
    equity: float
    balance: float
    available: float
    delta_total: float | None = None  # the venue's own figure, for the per-cycle check
    timestamp: datetime = field(kw_only=True)  # when read, on the reader's clock


@dataclass(frozen=True)
class Book:
    """Everything one rebalance of one currency needs, read at ``as_of``."""

    currency: str
    as_of: datetime
    positions: tuple[Position, ...]
    marks: dict[str, Mark]
    account: Account
    hedge_instrument: Instrument
    hedge_quote: Quote

    @property
    def index_price(self) -> float:
        return self.hedge_quote.index_price

    def hedge_position(self) -> float:
        """Current size of the hedge instrument, in its amount unit."""
        return self._hedge_position

    @cached_property
    def _hedge_position(self) -> float:
        # Summed once per Book (it is frozen): a cycle asks four times, over 10,000 positions.
        name = self.hedge_instrument.name
        return sum(p.size for p in self.positions if p.instrument.name == name)


@dataclass(frozen=True)
class PortfolioGreeks:
    """A book's greeks. Deltas are in coin; gamma in coin per USD of forward; vega in USD per
    vol point; theta in USD per calendar day."""

    currency: str
    index_price: float
    delta_coin: float  # Deribit delta_total: net option deltas + futures/perps coin delta
    delta_usd_target: float  # equity + delta_total: the delta whose hedge flattens USD P&L
    options_delta_net: float
    options_delta_bs: float
    futures_delta: float
    gamma: float
    dollar_gamma: float  # gamma * S^2 / 100: USD P&L change of delta per 1% move
    vega: float
    theta: float
    equity: float
    expired_skipped: tuple[str, ...] = ()
    # Vega-weighted mean IV of the live options (decimal), stored with the greeks so the cost
    # report can attribute vega P&L (vega x dIV); None when unset or the book holds no option.
    iv: float | None = None
    # Plain mean IV and the nearest expiry (ACT/365 years) of the live options: what the gamma
    # band sizes with. None when the book holds no live option.
    mean_iv: float | None = None
    nearest_tau: float | None = None
    # Sum of |size x delta| over the live options, coin: the scale a delta cross-check with
    # the venue is allowed to differ by (their models and marks differ a little from ours).
    options_delta_gross: float = 0.0

    def delta(self, mode: TargetMode) -> float:
        return self.delta_coin if mode is TargetMode.COIN else self.delta_usd_target

    @property
    def delta_usd(self) -> float:
        """Coin delta expressed in USD at the index."""
        return self.delta_coin * self.index_price


@dataclass(frozen=True)
class HedgeDecision:
    """What a policy decided for one book: the order amount in the hedge instrument's unit."""

    trade_amount: float  # signed, rounded to the instrument's step; 0 means no trade
    trade_delta: float  # coin delta the trade adds
    delta_before: float
    target: float
    band_low: float
    band_high: float
    reason: str
    policy: str
    warnings: tuple[str, ...] = ()

    @property
    def expected_delta_after(self) -> float:
        return self.delta_before + self.trade_delta

    @property
    def trades(self) -> bool:
        return self.trade_amount != 0


@dataclass(frozen=True)
class OrderRequest:
    """An order as we intend it; ``label`` is ours, recorded before the request leaves."""

    label: str
    instrument_name: str
    side: Side
    amount: float
    order_type: OrderType = OrderType.LIMIT
    price: float | None = None
    post_only: bool = False
    reduce_only: bool = False
    time_in_force: TimeInForce = TimeInForce.GTC


@dataclass(frozen=True)
class OrderState:
    """The venue's view of one order."""

    label: str
    venue_order_id: str
    instrument_name: str
    side: Side
    amount: float
    filled_amount: float
    status: OrderStatus
    price: float | None
    average_price: float | None
    order_type: OrderType
    timestamp: datetime
    post_only: bool = False
    reduce_only: bool = False

    @property
    def remaining(self) -> float:
        return self.amount - self.filled_amount


@dataclass(frozen=True)
class Fill:
    """One execution; ``trade_id`` is the venue's and unique."""

    trade_id: str
    venue_order_id: str
    label: str
    instrument_name: str
    side: Side
    amount: float
    price: float
    fee: float
    fee_currency: str
    liquidity: Liquidity
    timestamp: datetime
    index_price: float | None = None
