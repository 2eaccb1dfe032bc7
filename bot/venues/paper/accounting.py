"""Deribit account arithmetic in coin: fills, average prices, P&L, settlement, equity and delta.

Pure functions shared by the paper venue and the simulated server. Options are paid for in coin
when traded (premium moves the balance) and carried at mark; inverse perpetuals and futures move
the balance only by realised P&L, size_usd · (1/entry − 1/exit), and are carried at their
unrealised P&L. The entry of an inverse position is the harmonic mean of its fills, so that P&L
formula is exact for a position built from several fills.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.domain import DataError, Instrument, Mark, OptionType, require_positive
from bot.greeks import black76, settlement_factor, year_fraction
from bot.venues.paper.matching import snap


@dataclass(frozen=True)
class FillEffect:
    """A position after one fill, and the coin the fill adds to the balance before fees."""

    size: float
    average_price: float
    cash: float


def _require_inverse(instrument: Instrument) -> None:
    if not instrument.inverse:
        raise DataError(f"{instrument.name}: only inverse (coin-settled) contracts are modelled")


def apply_fill(
    instrument: Instrument, size: float, average_price: float, signed_amount: float, price: float
) -> FillEffect:
    """``size`` at ``average_price`` traded by ``signed_amount`` (buy > 0) at ``price``."""
    _require_inverse(instrument)
    require_positive(f"{instrument.name} fill price", price)
    new_size = snap(size + signed_amount, instrument.amount_step)
    increasing = size == 0 or (size > 0) == (signed_amount > 0)
    closed = 0.0 if increasing else min(abs(signed_amount), abs(size))
    if increasing:
        if instrument.is_option:
            average = (abs(size) * average_price + abs(signed_amount) * price) / abs(new_size)
        else:
            coins = (abs(size) / average_price if size else 0.0) + abs(signed_amount) / price
            average = abs(new_size) / coins
    elif new_size == 0:
        average = 0.0
    elif (new_size > 0) != (size > 0):
        average = price  # flipped: the rest is a new position at this price
    else:
        average = average_price
    if instrument.is_option:
        cash = -signed_amount * price
    else:
        direction = 1.0 if size > 0 else -1.0
        cash = direction * closed * (1 / average_price - 1 / price) if closed else 0.0
    return FillEffect(new_size, average, cash)


def option_payoff_coin(option_type: OptionType, strike: float, settlement: float) -> float:
    """What one inverse option pays at expiry, in coin: intrinsic value / settlement price."""
    require_positive("settlement price", settlement)
    intrinsic = settlement - strike if option_type is OptionType.CALL else strike - settlement
    return max(intrinsic, 0.0) / settlement


def settlement_cash(
    instrument: Instrument, size: float, average_price: float, settlement: float
) -> float:
    """Coin a position receives (or pays, if negative) when it settles at ``settlement``."""
    _require_inverse(instrument)
    if instrument.is_option:
        if instrument.option_type is None or instrument.strike is None:
            raise DataError(f"{instrument.name}: option without type or strike")
        return size * option_payoff_coin(instrument.option_type, instrument.strike, settlement)
    require_positive("settlement price", settlement)
    return size * (1 / average_price - 1 / settlement) if size else 0.0


def carried_value(instrument: Instrument, size: float, average_price: float, mark: float) -> float:
    """What a position adds to equity in coin: options at mark, inverse futures their uP&L."""
    _require_inverse(instrument)
    if instrument.is_option:
        return size * mark
    require_positive(f"{instrument.name} mark", mark)
    return size * (1 / average_price - 1 / mark) if size else 0.0


def position_delta(instrument: Instrument, size: float, mark: Mark, now: datetime) -> float:
    """Deribit's contribution to ``delta_total``, in coin.

    Options: size × net (premium-adjusted) Black-76 delta on the mark's forward and IV, decayed
    linearly to zero over the 30-minute settlement window, as ``bot.greeks`` computes it.
    Inverse futures and perpetuals: size_usd / mark price.
    """
    _require_inverse(instrument)
    if not instrument.is_option:
        return size / require_positive(f"{instrument.name} mark", mark.mark_price)
    if mark.mark_iv is None:
        raise DataError(f"{instrument.name}: mark has no IV")
    if instrument.expiry is None or instrument.strike is None or instrument.option_type is None:
        raise DataError(f"{instrument.name}: option without expiry, strike or type")
    tau = year_fraction(now, instrument.expiry)
    if tau <= 0:
        raise DataError(f"{instrument.name} has expired")
    greeks = black76(
        require_positive(f"{instrument.name} forward", mark.underlying_price),
        instrument.strike,
        tau,
        require_positive(f"{instrument.name} mark_iv", mark.mark_iv),
        instrument.option_type is OptionType.CALL,
    )
    return size * float(greeks.net_delta) * settlement_factor(now, instrument.expiry)
