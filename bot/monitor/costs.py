"""Fees and slippage of one fill, in coin and USD, for the running totals the metrics serve.

The same arithmetic as the cost report (``hedgebot report``; a test holds the two equal), kept
here because the monitor ranks below the analysis room: an inverse perpetual fill of ``A`` USD
at ``P`` against the decision mid ``M`` costs ``±A·(1/M − 1/P)`` coin, a linear one of ``A``
coin costs ``±A·(P − M)`` USD; coin is valued at the fill's index (else the mid, else the price).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain import DataError, Fill

USD_CURRENCIES = frozenset({"USD", "USDC", "USDT"})


@dataclass(frozen=True)
class FillCost:
    notional_usd: float
    fee_coin: float
    fee_usd: float
    slippage_usd: float | None  # None without a decision mid; positive is a cost


def fill_cost(fill: Fill, decision_mid: float | None, currency: str, inverse: bool) -> FillCost:
    """``inverse``: the instrument is sized in USD and settled in ``currency`` (its facts say)."""
    rate = fill.index_price or decision_mid or fill.price
    if fill.fee_currency == currency:
        fee_coin, fee_usd = fill.fee, fill.fee * rate
    elif fill.fee_currency in USD_CURRENCIES:
        fee_coin, fee_usd = fill.fee / rate, fill.fee
    else:
        raise DataError(
            f"fill {fill.trade_id}: fee in {fill.fee_currency!r}, neither {currency} nor USD"
        )
    notional = fill.amount if inverse else fill.amount * fill.price
    slip = None
    if decision_mid is not None:
        sign = fill.side.sign
        if inverse:
            slip = sign * fill.amount * (1.0 / decision_mid - 1.0 / fill.price) * rate
        else:
            slip = sign * fill.amount * (fill.price - decision_mid)
    return FillCost(notional, fee_coin, fee_usd, slip)
