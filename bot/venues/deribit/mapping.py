"""Deribit's JSON (``info`` of ccxt's results, or implicit-API rows) to domain objects, and ccxt
errors to the venue outcomes.

Pure functions, so each mapping is tested on real recorded messages without a server. We read
Deribit's own fields rather than ccxt's unified ones because ccxt's units are wrong for inverse
contracts (ccxt 4.5 reports ``contractSize`` 10 for BTC-PERPETUAL while Deribit's ``amount`` is
already USD, so ``contracts * contractSize`` is off by ten): sizes here stay in Deribit units
(USD for perpetuals and futures, coin for options). A field that is missing, NaN or out of
range raises ``DataError`` naming the instrument and the field; nothing is defaulted silently.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import ccxt.async_support as ccxt

from bot.config import CurrencyFacts
from bot.domain import (
    Account,
    DataError,
    Fill,
    Instrument,
    InstrumentKind,
    Liquidity,
    Mark,
    OptionType,
    OrderRequest,
    OrderState,
    OrderStatus,
    OrderType,
    Position,
    Quote,
    Side,
    TimeInForce,
)
from bot.logs import mask_url_passwords
from bot.units import MAX_LABEL_LENGTH
from bot.venues.errors import (
    AuthError,
    OrderNotFound,
    OrderRejected,
    OutcomeUnknown,
    RateLimited,
    TransientError,
    VenueError,
)

Row = Mapping[str, Any]

_REL = 1e-9

_STATUS = {
    "open": OrderStatus.OPEN,
    "untriggered": OrderStatus.OPEN,
    "filled": OrderStatus.FILLED,
    "cancelled": OrderStatus.CANCELLED,
    "rejected": OrderStatus.REJECTED,
}
# Deribit answers these when an order is no longer open (filled or cancelled); ccxt calls them
# InvalidOrder, but for the caller they mean the same as OrderNotFound: nothing left to act on.
NOT_OPEN_CODES = frozenset({11008, 11044})  # already_filled, not_open_order
_TIF = {TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC", TimeInForce.FOK: "FOK"}


# --- field readers ------------------------------------------------------------------------


class FieldError(DataError):
    """One field of one venue row that cannot be used; names both, for the skip warning."""

    def __init__(self, instrument: str, field: str, value: Any, want: str) -> None:
        super().__init__(f"{instrument}: field {field!r} must be {want}, got {value!r}")
        self.instrument, self.field, self.value = instrument, field, value


def _where(row: Row) -> str:
    return str(row.get("instrument_name") or row.get("currency") or "row")


def number(row: Row, key: str, *, positive: bool = False) -> float:
    """A finite number at ``key`` (positive if asked); DataError naming instrument and field."""
    raw = row.get(key)
    try:
        value = float(raw) if raw is not None and not isinstance(raw, bool) else math.nan
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or (positive and value <= 0):
        want = "a positive number" if positive else "a finite number"
        raise FieldError(_where(row), key, raw, want)
    return value


def optional_positive(row: Row, key: str) -> float | None:
    """A positive number, or None when absent/null/zero (an empty book side)."""
    raw = row.get(key)
    if raw is None or raw == 0:
        return None
    return number(row, key, positive=True)


def text(row: Row, key: str) -> str:
    raw = row.get(key)
    if not isinstance(raw, str) or not raw:
        raise FieldError(_where(row), key, raw, "a non-empty string")
    return raw


def ms_time(row: Row, key: str) -> datetime:
    """Deribit's millisecond timestamps as aware UTC datetimes."""
    return datetime.fromtimestamp(number(row, key, positive=True) / 1000.0, tz=UTC)


def to_ms(ts: datetime) -> int:
    return round(ts.timestamp() * 1000)


def side_of(row: Row) -> Side:
    direction = row.get("direction")
    if direction not in ("buy", "sell"):
        raise FieldError(_where(row), "direction", direction, "buy or sell")
    return Side(direction)


# --- instruments, positions, account ----------------------------------------------------------


def instrument_from_row(row: Row, facts: CurrencyFacts | None = None) -> Instrument:
    """One ``public/get_instruments`` row. Settings' facts fill what the venue leaves out."""
    name = text(row, "instrument_name")
    kind_raw = row.get("kind")
    perpetual = row.get("settlement_period") == "perpetual"
    if kind_raw == "option":
        kind = InstrumentKind.OPTION
    elif kind_raw == "future":
        kind = InstrumentKind.PERPETUAL if perpetual else InstrumentKind.FUTURE
    else:
        raise FieldError(name, "kind", kind_raw, "option or future")
    is_option = kind is InstrumentKind.OPTION

    def fact(key: str, fallback: float | None) -> float:
        if row.get(key) is not None or fallback is None:
            return number(row, key, positive=True)
        return fallback

    min_amount = fact(
        "min_trade_amount",
        (facts.option_min_amount if is_option else facts.perp_min_amount) if facts else None,
    )
    tick = fact(
        "tick_size",
        (facts.option_tick_size if is_option else facts.perp_tick_size) if facts else None,
    )
    contract = fact(
        "contract_size", (1.0 if is_option else facts.perp_contract_usd) if facts else None
    )
    # Deribit's amount step is its minimum trade amount (10 USD, 0.1 BTC): the venue's wins
    step = min_amount
    if row.get("min_trade_amount") is None and facts is not None and not is_option:
        step = facts.perp_amount_step
    if facts is not None and row.get("min_trade_amount") is not None:
        # settings may narrow the venue's facts (bot.venues.deribit.facts refuses the rest)
        if is_option:
            min_amount = step = max(min_amount, facts.option_min_amount)
            tick = max(tick, facts.option_tick_size)
        else:
            min_amount = max(min_amount, facts.perp_min_amount)
            step = max(step, facts.perp_amount_step)
            tick = max(tick, facts.perp_tick_size)
    settle, counter = row.get("settlement_currency"), row.get("counter_currency", "USD")
    currency = str(row.get("base_currency") or name.split("-")[0])
    expiry = None if kind is InstrumentKind.PERPETUAL else ms_time(row, "expiration_timestamp")
    strike = number(row, "strike", positive=True) if is_option else None
    option_type = None
    if is_option:
        raw_type = row.get("option_type")
        if raw_type not in ("call", "put"):
            raise FieldError(name, "option_type", raw_type, "call or put")
        option_type = OptionType(raw_type)
    return Instrument(
        name=name,
        currency=currency,
        kind=kind,
        contract_size=contract,
        min_amount=min_amount,
        amount_step=step,
        tick_size=tick,
        inverse=settle is None or settle != counter,
        expiry=expiry,
        strike=strike,
        option_type=option_type,
    )


def is_flat(row: Row) -> bool:
    """Deribit lists closed positions with ``direction: "zero"``; they are not positions."""
    return row.get("direction") == "zero" or row.get("size") in (0, 0.0)


def position_from_row(row: Row, instrument: Instrument) -> Position:
    """One ``private/get_positions`` row: signed ``size`` in Deribit units, the venue's delta."""
    delta = row.get("delta")
    return Position(
        instrument=instrument,
        size=number(row, "size"),
        average_price=number(row, "average_price") if row.get("average_price") is not None else 0.0,
        venue_delta=number(row, "delta") if delta is not None else None,
    )


def account_from_summary(row: Row, currency: str, now: datetime) -> Account:
    """``private/get_account_summary`` (ccxt ``fetch_balance``'s ``info``), coin units."""
    delta = row.get("delta_total")
    return Account(
        currency=str(row.get("currency") or currency),
        equity=number(row, "equity"),
        balance=number(row, "balance"),
        available=number(row, "available_funds"),
        delta_total=number(row, "delta_total") if delta is not None else None,
        timestamp=now,
    )


# --- market data ------------------------------------------------------------------------------


def mark_from_summary(row: Row, now: datetime) -> Mark:
    """One ``public/get_book_summary_by_currency`` row.

    Options need ``mark_price``, ``mark_iv`` (percent, returned as a decimal) and
    ``underlying_price`` (the expiry's forward); a future's forward is its own mark. The index
    is ``index_price`` when present, else ``estimated_delivery_price`` (what Deribit sends).
    """
    name = text(row, "instrument_name")
    mark = number(row, "mark_price", positive=True)
    index_key = "index_price" if row.get("index_price") is not None else "estimated_delivery_price"
    index = number(row, index_key, positive=True)
    is_option = name.endswith(("-C", "-P"))
    iv = number(row, "mark_iv", positive=True) / 100.0 if is_option else None
    forward = number(row, "underlying_price", positive=True) if is_option else mark
    stamp = row.get("creation_timestamp")
    return Mark(
        instrument_name=name,
        mark_price=mark,
        underlying_price=forward,
        index_price=index,
        timestamp=ms_time(row, "creation_timestamp") if stamp is not None else now,
        mark_iv=iv,
        bid=optional_positive(row, "bid_price"),
        ask=optional_positive(row, "ask_price"),
    )


def summary_from_ticker(row: Row) -> dict[str, Any]:
    """A ``public/ticker`` answer in the book summary's field names, for
    :func:`mark_from_summary`: the ticker stamps ``timestamp`` and quotes ``best_bid_price`` /
    ``best_ask_price`` where the summary has ``creation_timestamp`` / ``bid_price`` /
    ``ask_price`` (Deribit API docs, ``public/ticker``). Absent fields stay absent."""
    out = dict(row)
    for ticker_key, summary_key in (
        ("timestamp", "creation_timestamp"),
        ("best_bid_price", "bid_price"),
        ("best_ask_price", "ask_price"),
    ):
        if summary_key not in out and row.get(ticker_key) is not None:
            out[summary_key] = row[ticker_key]
    return out


class EmptyBookSide(DataError):
    """The hedge instrument's book has no bids or no asks: nothing to price a hedge against."""


def quote_from_ticker(row: Row) -> Quote:
    """``public/ticker``: both sides must be there, a hedge cannot be priced off one side.

    Deribit sends an empty side as ``best_bid_price: null`` (documented) or ``0`` with a zero
    amount; either is an :class:`EmptyBookSide` naming the side, not a field error.
    """
    name = text(row, "instrument_name")
    for side, key in (("bid", "best_bid_price"), ("ask", "best_ask_price")):
        if row.get(key) in (None, 0, 0.0):
            raise EmptyBookSide(
                f"{name}: the order book has no {side}s ({key}={row.get(key)!r}); "
                "a hedge cannot be priced off one side"
            )
    return Quote(
        instrument_name=name,
        bid=number(row, "best_bid_price", positive=True),
        ask=number(row, "best_ask_price", positive=True),
        mark=number(row, "mark_price", positive=True),
        index_price=number(row, "index_price", positive=True),
        timestamp=ms_time(row, "timestamp"),
        bid_size=number(row, "best_bid_amount"),
        ask_size=number(row, "best_ask_amount"),
    )


def book_level(name: str, side: str, level: Any) -> tuple[float, float]:
    """One ``[price, amount]`` level of ``public/get_order_book``, both positive."""
    if not isinstance(level, list | tuple) or len(level) != 2:
        raise FieldError(name, side, level, "[price, amount] levels")
    price, amount = level
    row = {"instrument_name": name, "price": price, "amount": amount}
    return number(row, "price", positive=True), number(row, "amount", positive=True)


# --- orders and fills -------------------------------------------------------------------------


def order_from_row(row: Row) -> OrderState:
    """A Deribit order (``buy``/``sell``/``cancel`` results, order-state and open-order lists)."""
    raw_state = row.get("order_state")
    if raw_state not in _STATUS:
        raise FieldError(_where(row), "order_state", raw_state, "a known order state")
    price = row.get("price")
    average = row.get("average_price")
    stamp = "last_update_timestamp" if row.get("last_update_timestamp") else "creation_timestamp"
    return OrderState(
        label=str(row.get("label") or ""),
        venue_order_id=text(row, "order_id"),
        instrument_name=text(row, "instrument_name"),
        side=side_of(row),
        amount=number(row, "amount", positive=True),
        filled_amount=number(row, "filled_amount"),
        status=_STATUS[raw_state],
        price=None if price in (None, "market_price") else number(row, "price", positive=True),
        average_price=number(row, "average_price") if average else None,
        order_type=OrderType.MARKET if row.get("order_type") == "market" else OrderType.LIMIT,
        timestamp=ms_time(row, stamp),
        post_only=bool(row.get("post_only", False)),
        reduce_only=bool(row.get("reduce_only", False)),
    )


def latest_order(rows: list[Row]) -> Row | None:
    """The most recent of several orders sharing a label (labels are not unique on Deribit)."""
    if not rows:
        return None
    return max(rows, key=lambda r: (r.get("creation_timestamp") or 0, str(r.get("order_id"))))


def fill_from_trade(row: Row) -> Fill:
    """One ``private/get_user_trades_by_currency(_and_time)`` row."""
    liquidity = row.get("liquidity")
    if liquidity not in ("M", "T"):
        raise FieldError(_where(row), "liquidity", liquidity, "M or T")
    index = row.get("index_price")
    return Fill(
        trade_id=text(row, "trade_id"),
        venue_order_id=text(row, "order_id"),
        label=str(row.get("label") or ""),
        instrument_name=text(row, "instrument_name"),
        side=side_of(row),
        amount=number(row, "amount", positive=True),
        price=number(row, "price", positive=True),
        fee=number(row, "fee"),
        fee_currency=text(row, "fee_currency"),
        liquidity=Liquidity.MAKER if liquidity == "M" else Liquidity.TAKER,
        timestamp=ms_time(row, "timestamp"),
        index_price=number(row, "index_price", positive=True) if index is not None else None,
    )


def _multiple(value: float, step: float) -> bool:
    q = value / step
    return abs(q - round(q)) <= _REL * max(1.0, abs(q))


def check_order(request: OrderRequest, instrument: Instrument) -> None:
    """Refuse locally what ccxt would otherwise truncate or round silently (25 → 20)."""
    label = request.label
    if not label or len(label) > MAX_LABEL_LENGTH:
        raise OrderRejected(f"label must be 1..{MAX_LABEL_LENGTH} characters, got {len(label)}")
    amount = request.amount
    if not math.isfinite(amount) or amount <= 0:
        raise OrderRejected(f"{instrument.name}: amount must be positive, got {amount!r}")
    if amount < instrument.min_amount * (1 - _REL):
        raise OrderRejected(
            f"{instrument.name}: amount {amount} below the minimum {instrument.min_amount}"
        )
    if not _multiple(amount, instrument.amount_step):
        raise OrderRejected(
            f"{instrument.name}: amount {amount} is not a multiple of {instrument.amount_step}"
        )
    if request.order_type is OrderType.MARKET:
        if request.post_only:
            raise OrderRejected(f"{instrument.name}: a market order cannot be post-only")
        return
    price = request.price
    if price is None or not math.isfinite(price) or price <= 0:
        raise OrderRejected(f"{instrument.name}: a limit order needs a positive price, got {price}")
    if not _multiple(price, instrument.tick_size):
        raise OrderRejected(
            f"{instrument.name}: price {price} is not on the tick {instrument.tick_size}"
        )


def order_params(request: OrderRequest) -> dict[str, Any]:
    """ccxt ``create_order`` params: label, postOnly (also sets reject_post_only), reduceOnly,
    timeInForce (GTC/IOC/FOK)."""
    params: dict[str, Any] = {"label": request.label, "timeInForce": _TIF[request.time_in_force]}
    if request.post_only:
        params["postOnly"] = True
    if request.reduce_only:
        params["reduceOnly"] = True
    return params


# --- errors -----------------------------------------------------------------------------------


def deribit_code(exc: BaseException) -> int | None:
    """The Deribit error code inside a ccxt message (``deribit {"error": {"code": 11054}}``)."""
    message = str(exc)
    marker = '"code":'
    at = message.find(marker)
    if at < 0:
        return None
    digits = message[at + len(marker) :].lstrip().split(",")[0].split("}")[0].strip()
    try:
        return int(digits)
    except ValueError:
        return None


def map_error(exc: Exception, *, write: bool) -> VenueError:
    """ccxt's error classes to the venue outcomes (ccxt's ``deribit`` exception map).

    ``write`` is true for create/edit/cancel: there a network failure is *ambiguous* (the request
    may have been executed), never a failure. Order matters: OrderNotFound is an InvalidOrder,
    PermissionDenied an AuthenticationError, OnMaintenance an ExchangeNotAvailable. Cancelling
    an order that is no longer open (11044, 11008) is OrderNotFound, like paper's.
    """
    # ccxt's message holds the request URL: an auth call's key and signature are masked
    message = mask_url_passwords(f"{type(exc).__name__}: {exc}")
    code = deribit_code(exc)
    if isinstance(exc, VenueError):
        return exc
    if isinstance(exc, ccxt.OrderNotFound) or (
        isinstance(exc, ccxt.InvalidOrder) and code in NOT_OPEN_CODES
    ):
        return OrderNotFound(message)
    if isinstance(exc, ccxt.PermissionDenied):
        return OrderRejected(message, code)
    if isinstance(exc, ccxt.AuthenticationError):
        return AuthError(message)
    if isinstance(exc, ccxt.InvalidOrder | ccxt.InsufficientFunds | ccxt.BadRequest):
        return OrderRejected(message, code)
    if isinstance(exc, ccxt.DDoSProtection | ccxt.RateLimitExceeded):
        return RateLimited(message)
    if write and isinstance(exc, ccxt.NetworkError | ccxt.BadResponse | ccxt.ExchangeError):
        return OutcomeUnknown(message)
    if isinstance(exc, ccxt.NetworkError | ccxt.BadResponse | ccxt.ExchangeError):
        return TransientError(message)
    return TransientError(message) if not write else OutcomeUnknown(message)
