"""Order matching against book levels, Deribit's fees, and order validation: pure functions.

Used by the paper venue and by the simulated Deribit server, so both fill, charge and reject
exactly alike. Book sides are lists of (price, amount), best first; amounts are in the
instrument's unit (USD for inverse perpetuals, coin for options), prices in USD or coin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bot.config import FeeSettings
from bot.domain import DataError, Instrument, Liquidity, OrderType, Side, TimeInForce
from bot.venues.errors import OrderRejected

Level = tuple[float, float]

# Deribit error codes (Deribit API docs, "Error codes"; ccxt's deribit exception map)
QTY_TOO_LOW = 10002
INVALID_OR_UNSUPPORTED_INSTRUMENT = 10020
INVALID_AMOUNT = 10021
INVALID_PRICE = 10023
PRICE_WRONG_TICK = 10043
INVALID_ARGUMENTS = 11029
OTHER_REJECT = 11030
POST_ONLY_REJECT = 11054

_REL = 1e-9


def is_multiple(value: float, step: float) -> bool:
    """True when ``value`` is an integer multiple of ``step`` up to float noise."""
    q = value / step
    return abs(q - round(q)) <= _REL * max(1.0, abs(q))


def snap(value: float, step: float) -> float:
    """``value`` as the nearest multiple of ``step``, without float dust (0.1 + 0.2 → 0.3)."""
    return round(round(value / step) * step, 12)


def round_down(value: float, step: float) -> float:
    return round(math.floor(value / step + _REL) * step, 12)


def round_up(value: float, step: float) -> float:
    return round(math.ceil(value / step - _REL) * step, 12)


def round_down_all(values: np.ndarray, steps: np.ndarray) -> list[float]:
    """``round_down`` of each value: the same floats (IEEE floor, product and Python's round)."""
    return [round(v, 12) for v in (np.floor(values / steps + _REL) * steps).tolist()]


def round_up_all(values: np.ndarray, steps: np.ndarray) -> list[float]:
    """``round_up`` of each value: the same floats (IEEE ceil, product and Python's round)."""
    return [round(v, 12) for v in (np.ceil(values / steps - _REL) * steps).tolist()]


def check_amount(instrument: Instrument, amount: float) -> None:
    """Deribit refuses amounts below the minimum (10002) or off the step (10021)."""
    if not math.isfinite(amount) or amount <= 0:
        raise OrderRejected(f"amount must be positive, got {amount!r}", INVALID_AMOUNT)
    if amount < instrument.min_amount * (1 - _REL):
        raise OrderRejected(
            f"{instrument.name}: amount {amount} below minimum {instrument.min_amount}",
            QTY_TOO_LOW,
        )
    if not is_multiple(amount, instrument.amount_step):
        raise OrderRejected(
            f"{instrument.name}: amount {amount} not a multiple of {instrument.amount_step}",
            INVALID_AMOUNT,
        )


def check_price(instrument: Instrument, price: float) -> None:
    """A limit price must be positive and on the tick (10023, 10043)."""
    if not math.isfinite(price) or price <= 0:
        raise OrderRejected(f"price must be positive, got {price!r}", INVALID_PRICE)
    if not is_multiple(price, instrument.tick_size):
        raise OrderRejected(
            f"{instrument.name}: price {price} not a multiple of tick {instrument.tick_size}",
            PRICE_WRONG_TICK,
        )


@dataclass(frozen=True)
class Execution:
    """One slice of a fill: at one book level (taker) or at the resting price (maker)."""

    price: float
    amount: float


@dataclass(frozen=True)
class MatchResult:
    executions: tuple[Execution, ...]
    remaining: float
    rests: bool  # the remainder stays on the book (GTC limit); otherwise it is cancelled

    @property
    def filled(self) -> float:
        return sum(e.amount for e in self.executions)

    @property
    def average_price(self) -> float | None:
        filled = self.filled
        if filled <= 0:
            return None
        return sum(e.price * e.amount for e in self.executions) / filled


def _checked(levels: Sequence[Level], side_name: str) -> list[Level]:
    out = []
    for price, amount in levels:
        if not (math.isfinite(price) and price > 0 and math.isfinite(amount) and amount >= 0):
            raise DataError(f"bad {side_name} level ({price!r}, {amount!r})")
        out.append((float(price), float(amount)))
    return out


def crosses(side: Side, price: float, bids: Sequence[Level], asks: Sequence[Level]) -> bool:
    """Would a limit at ``price`` take liquidity now?"""
    if side is Side.BUY:
        return bool(asks) and price >= asks[0][0]
    return bool(bids) and price <= bids[0][0]


def match_order(
    *,
    side: Side,
    amount: float,
    order_type: OrderType,
    price: float | None,
    post_only: bool,
    time_in_force: TimeInForce,
    bids: Sequence[Level],
    asks: Sequence[Level],
    step: float,
) -> MatchResult:
    """Match an incoming order against the book, walking its depth.

    Limit orders take levels up to their price, market orders any level. What cannot fill: a
    GTC limit rests, IOC and market orders cancel it, and FOK fills nothing unless all of it
    fills. A post-only order that would cross is rejected with 11054, never repriced.
    """
    if order_type is OrderType.LIMIT and price is None:
        raise OrderRejected("a limit order needs a price", INVALID_ARGUMENTS)
    if order_type is OrderType.MARKET and post_only:
        raise OrderRejected("post_only applies to limit orders only", INVALID_ARGUMENTS)
    book_bids = sorted(_checked(bids, "bid"), key=lambda lv: -lv[0])
    book_asks = sorted(_checked(asks, "ask"), key=lambda lv: lv[0])
    if post_only and price is not None and crosses(side, price, book_bids, book_asks):
        raise OrderRejected(
            f"post-only {side.value} at {price} would cross the book", POST_ONLY_REJECT
        )
    levels = book_asks if side is Side.BUY else book_bids
    remaining = amount
    executions: list[Execution] = []
    for level_price, level_amount in levels:
        if remaining <= 0:
            break
        if order_type is OrderType.LIMIT and price is not None:
            beyond = level_price > price if side is Side.BUY else level_price < price
            if beyond:
                break
        take = min(remaining, round_down(level_amount, step))
        if take <= 0:
            continue
        executions.append(Execution(level_price, take))
        remaining = snap(remaining - take, step)
    if time_in_force is TimeInForce.FOK and remaining > 0:
        return MatchResult((), amount, rests=False)
    rests = order_type is OrderType.LIMIT and time_in_force is TimeInForce.GTC and remaining > 0
    return MatchResult(tuple(executions), remaining, rests)


def resting_fill(
    *,
    side: Side,
    price: float,
    remaining: float,
    bids: Sequence[Level],
    asks: Sequence[Level],
    step: float,
) -> float:
    """How much of a resting limit order the market has traded through.

    The opposite side's depth strictly beyond our price stands for the trading that went
    through it; the order fills that much (at most its remainder), at its own price, as maker.
    """
    if side is Side.BUY:
        through = sum(a for p, a in _checked(asks, "ask") if p < price)
    else:
        through = sum(a for p, a in _checked(bids, "bid") if p > price)
    return min(remaining, round_down(through, step))


def fee_coin(
    instrument: Instrument,
    amount: float,
    price: float,
    liquidity: Liquidity,
    fees: FeeSettings,
) -> float:
    """Deribit's fee in coin for a fill of ``amount`` at ``price``.

    Options: ``option_rate`` of the underlying per contract (one coin each), capped at
    ``option_cap`` of the option price. Inverse perpetuals and futures: rate × amount_usd / price.
    """
    if instrument.is_option:
        return min(fees.option_rate * amount, fees.option_cap * price * amount)
    if not instrument.inverse:
        raise DataError(f"{instrument.name}: fees of linear contracts are not modelled")
    rate = fees.perp_maker if liquidity is Liquidity.MAKER else fees.perp_taker
    return rate * amount / price
