"""The greeks and implied vols a Deribit ticker shows, for the simulated server's JSON.

The numbers come from ``bot.greeks.black76`` (Deribit's conventions: Black-76 on the expiry's
forward, r = 0, ACT/365 to 08:00 UTC, greeks in USD per option); this
module only adds what a ticker needs on top: the settlement-window decay of delta, Deribit's
rounding to 5 decimals, and implied vols of bid and ask prices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from scipy.optimize import brentq

from bot.domain import DataError, Instrument, Mark, OptionType
from bot.greeks import black76, settlement_factor, year_fraction

GREEK_DECIMALS = 5
_IV_LOW, _IV_HIGH = 1e-4, 10.0


@dataclass(frozen=True)
class TickerGreeks:
    """One option's greeks, USD per option: delta (decayed over the settlement window, not
    premium-adjusted), gamma per $1 of forward, vega per vol point, theta per day, rho per 1%."""

    delta: float
    gamma: float
    vega: float
    theta: float
    rho: float

    def rounded(self) -> dict[str, float]:
        """The ``greeks`` object of a Deribit ticker."""
        return {
            "delta": round(self.delta, GREEK_DECIMALS),
            "gamma": round(self.gamma, GREEK_DECIMALS),
            "vega": round(self.vega, GREEK_DECIMALS),
            "theta": round(self.theta, GREEK_DECIMALS),
            "rho": round(self.rho, GREEK_DECIMALS),
        }


def _option_facts(option: Instrument) -> tuple[datetime, float, bool]:
    if option.expiry is None or option.strike is None or option.option_type is None:
        raise DataError(f"{option.name}: option without expiry, strike or type")
    return option.expiry, option.strike, option.option_type is OptionType.CALL


def ticker_greeks(option: Instrument, mark: Mark, now: datetime) -> TickerGreeks:
    """Greeks of ``option`` on its mark's forward and IV at ``now`` (before expiry)."""
    expiry, strike, is_call = _option_facts(option)
    if mark.mark_iv is None:
        raise DataError(f"{option.name}: mark has no IV")
    tau = year_fraction(now, expiry)
    if tau <= 0:
        raise DataError(f"{option.name} has expired")
    g = black76(mark.underlying_price, strike, tau, mark.mark_iv, is_call)
    decay = settlement_factor(now, expiry)
    return TickerGreeks(
        delta=float(g.delta) * decay,
        gamma=float(g.gamma),
        vega=float(g.vega),
        theta=float(g.theta),
        rho=float(g.rho),
    )


def implied_vol(
    option: Instrument, price_coin: float, forward: float, now: datetime
) -> float | None:
    """The vol (decimal) at which ``option`` is worth ``price_coin`` (coin) on ``forward``.

    None when no vol in [0.01%, 1000%] reaches the price (below intrinsic, or absurdly high):
    Deribit then shows no ``bid_iv``/``ask_iv`` worth the name either.
    """
    expiry, strike, is_call = _option_facts(option)
    tau = year_fraction(now, expiry)
    if not (math.isfinite(price_coin) and price_coin > 0 and forward > 0 and tau > 0):
        return None
    target = price_coin * forward

    def gap(sigma: float) -> float:
        return float(black76(forward, strike, tau, sigma, is_call).price_usd) - target

    if gap(_IV_LOW) > 0 or gap(_IV_HIGH) < 0:
        return None
    return float(brentq(gap, _IV_LOW, _IV_HIGH, xtol=1e-10))
