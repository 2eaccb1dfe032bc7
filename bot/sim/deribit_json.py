"""hedgebot's domain values written as Deribit API v2 JSON objects.

Field names, units and enumerations follow Deribit (checked against the recorded messages in
shared/data/deribit and the responses ccxt's ``deribit`` class parses): timestamps in
milliseconds, inverse perpetual amounts in USD and option amounts in coin, option prices in
coin, IVs in percent, ``kind`` "future" for the perpetual with ``settlement_period``
"perpetual". The paper venue keeps no margin model, so margins are 0 and available funds equal
equity; the simulated perpetual pays no funding, so funding fields are 0.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bot.config import FeeSettings
from bot.domain import (
    Account,
    DataError,
    Instrument,
    InstrumentKind,
    Liquidity,
    Mark,
    OrderType,
    Side,
)
from bot.sim.orders import OrderRecord, TradeRecord
from bot.sim.ticker_greeks import TickerGreeks, implied_vol
from bot.venues.paper import instruments as names

Json = dict[str, Any]
PERPETUAL_EXPIRY_MS = 32_503_708_800_000  # what Deribit shows as a perpetual's expiry (3000-01-01)
ACCOUNT_ID = 1  # the simulated venue serves one account
MAX_LEVERAGE = 50
MAX_LIQUIDATION_COMMISSION = 0.0075
CURRENCY_NAMES = {"BTC": "Bitcoin", "ETH": "Ethereum"}
COIN_TYPES = {"BTC": "BITCOIN", "ETH": "ETHER"}


def ms(ts: datetime) -> int:
    """Milliseconds since the epoch, as every Deribit timestamp."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return round(ts.timestamp() * 1000)


def direction(side: Side) -> str:
    return side.value


def index_name(currency: str) -> str:
    """Deribit's name of a currency's USD index (``btc_usd``)."""
    return f"{currency.lower()}_usd"


def settlement_period(instrument: Instrument) -> str:
    if instrument.kind is InstrumentKind.PERPETUAL or instrument.expiry is None:
        return "perpetual"
    if names.is_monthly(instrument.expiry):
        return "month"
    if instrument.expiry.weekday() == names.FRIDAY:
        return "week"
    return "day"


def underlying_index(instrument: Instrument) -> str:
    """The forward an option is priced on: a synthetic future of its expiry (``SYN.BTC-…``)."""
    if instrument.expiry is None:
        return index_name(instrument.currency)
    return f"SYN.{instrument.currency}-{names.format_expiry(instrument.expiry)}"


def currency_json(currency: str, fee_precision: int = 4) -> Json:
    return {
        "currency": currency,
        "currency_long": CURRENCY_NAMES.get(currency, currency),
        "coin_type": COIN_TYPES.get(currency, currency),
        "fee_precision": fee_precision,
        "min_confirmations": 1,
        "min_withdrawal_fee": 0.0001,
        "withdrawal_fee": 0.0001,
        "withdrawal_priorities": [],
        "apr": 0.0,
        "in_cross_collateral_pool": False,
    }


def instrument_json(instrument: Instrument, created: datetime, fees: FeeSettings) -> Json:
    """One element of ``public/get_instruments``."""
    if not instrument.inverse:
        raise DataError(f"{instrument.name}: only inverse instruments are served")
    is_option = instrument.is_option
    taker = fees.option_rate if is_option else fees.perp_taker
    maker = fees.option_rate if is_option else fees.perp_maker
    out: Json = {
        "instrument_name": instrument.name,
        "instrument_id": zlib.crc32(instrument.name.encode()),
        "kind": "option" if is_option else "future",
        "instrument_type": "reversed",
        "is_active": True,
        "base_currency": instrument.currency,
        "counter_currency": "USD",
        "quote_currency": instrument.currency if is_option else "USD",
        "settlement_currency": instrument.currency,
        "price_index": index_name(instrument.currency),
        "settlement_period": settlement_period(instrument),
        "contract_size": instrument.contract_size,
        "min_trade_amount": instrument.min_amount,
        "tick_size": instrument.tick_size,
        "tick_size_steps": [],
        "taker_commission": taker,
        "maker_commission": maker,
        "block_trade_commission": taker,
        "block_trade_min_trade_amount": instrument.min_amount * 25,
        "block_trade_tick_size": instrument.tick_size,
        "creation_timestamp": ms(created),
        "expiration_timestamp": ms(instrument.expiry) if instrument.expiry else PERPETUAL_EXPIRY_MS,
        "rfq": False,
    }
    if is_option:
        out["option_type"] = instrument.option_type.value if instrument.option_type else None
        out["strike"] = instrument.strike
    else:
        out["future_type"] = "reversed"
        out["max_leverage"] = MAX_LEVERAGE
        out["max_liquidation_commission"] = MAX_LIQUIDATION_COMMISSION
    return out


def order_json(record: OrderRecord, contract_size: float) -> Json:
    """A Deribit order object (``buy``/``sell``/``get_order_state``/``user.orders`` pushes)."""
    market = record.order_type is OrderType.MARKET
    return {
        "order_id": record.order_id,
        "label": record.label,
        "instrument_name": record.instrument_name,
        "direction": direction(record.side),
        "order_type": record.order_type.value,
        "order_state": record.status.value,
        "time_in_force": record.time_in_force.value,
        "price": "market_price" if market or record.price is None else record.price,
        "amount": record.amount,
        "contracts": record.amount / contract_size,
        "filled_amount": record.filled_amount,
        "average_price": record.average_price or 0.0,
        "commission": record.commission,
        "post_only": record.post_only,
        "reduce_only": record.reduce_only,
        "replaced": record.replaced,
        "max_show": record.amount,
        "creation_timestamp": ms(record.created),
        "last_update_timestamp": ms(record.updated),
        "is_liquidation": False,
        "risk_reducing": False,
        "api": True,
        "web": False,
        "mmp": False,
    }


def trade_json(trade: TradeRecord, instrument: Instrument) -> Json:
    """A Deribit user trade (``get_user_trades_*``, ``user.trades`` pushes)."""
    fill = trade.fill
    out: Json = {
        "trade_id": fill.trade_id,
        "trade_seq": trade.trade_seq,
        "timestamp": ms(fill.timestamp),
        "tick_direction": trade.tick_direction,
        "instrument_name": fill.instrument_name,
        "order_id": trade.order_id,
        "order_type": trade.order_type.value,
        "label": fill.label,
        "direction": direction(fill.side),
        "price": fill.price,
        "amount": fill.amount,
        "contracts": fill.amount / instrument.contract_size,
        "fee": fill.fee,
        "fee_currency": fill.fee_currency,
        "liquidity": "M" if fill.liquidity is Liquidity.MAKER else "T",
        "mark_price": trade.mark_price,
        "index_price": fill.index_price,
        "state": trade.order_state.value,
        "post_only": trade.post_only,
        "reduce_only": trade.reduce_only,
        "self_trade": False,
        "matching_id": None,
        "api": True,
    }
    if instrument.is_option and fill.index_price:
        iv = implied_vol(instrument, fill.price, fill.index_price, fill.timestamp)
        out["iv"] = round(iv * 100, 2) if iv is not None else None
        out["underlying_price"] = fill.index_price
    return out


def position_json(
    instrument: Instrument,
    size: float,
    average_price: float,
    mark: Mark,
    floating_pl: float,
    greeks: TickerGreeks | None,
) -> Json:
    """One element of ``private/get_positions``; ``greeks`` for options (sized by the caller's
    position: Deribit shows position greeks, not per-contract ones)."""
    kind = "option" if instrument.is_option else "future"
    side = "zero" if size == 0 else ("buy" if size > 0 else "sell")
    out: Json = {
        "instrument_name": instrument.name,
        "kind": kind,
        "direction": side,
        "size": size,
        "average_price": average_price,
        "mark_price": mark.mark_price,
        "index_price": mark.index_price,
        "settlement_price": mark.mark_price,
        "floating_profit_loss": floating_pl,
        "initial_margin": 0.0,
        "maintenance_margin": 0.0,
        "open_orders_margin": 0.0,
        "estimated_liquidation_price": None,
        "interest_value": 0.0,
        "realized_funding": 0.0,
        "user_id": ACCOUNT_ID,
    }
    if instrument.is_option:
        out["size_currency"] = size
        out["average_price_usd"] = average_price * mark.underlying_price
        out["floating_profit_loss_usd"] = floating_pl * mark.underlying_price
        bs = greeks or TickerGreeks(0.0, 0.0, 0.0, 0.0, 0.0)
        out["delta"] = size * bs.delta
        out["gamma"] = size * bs.gamma
        out["vega"] = size * bs.vega
        out["theta"] = size * bs.theta
    else:
        out["size_currency"] = size / mark.mark_price if mark.mark_price else 0.0
        out["delta"] = out["size_currency"]
        out["leverage"] = MAX_LEVERAGE
    return out


def account_summary_json(
    account: Account,
    positions: Sequence[Json],
    options_value: float,
    limits: Json,
) -> Json:
    """``private/get_account_summary`` from the venue's account and the position objects."""
    options = [p for p in positions if p["kind"] == "option"]
    futures = [p for p in positions if p["kind"] == "future"]
    options_pl = sum(p["floating_profit_loss"] for p in options)
    futures_pl = sum(p["floating_profit_loss"] for p in futures)
    delta_total = account.delta_total if account.delta_total is not None else 0.0
    return {
        "currency": account.currency,
        "balance": account.balance,
        "equity": account.equity,
        "margin_balance": account.equity,
        "available_funds": account.available,
        "available_withdrawal_funds": account.available,
        "initial_margin": 0.0,
        "maintenance_margin": 0.0,
        "projected_initial_margin": 0.0,
        "projected_maintenance_margin": 0.0,
        "delta_total": delta_total,
        "projected_delta_total": delta_total,
        "delta_total_map": {index_name(account.currency): delta_total},
        "options_delta": sum(p["delta"] for p in options),
        "options_gamma": sum(p["gamma"] for p in options),
        "options_vega": sum(p["vega"] for p in options),
        "options_theta": sum(p["theta"] for p in options),
        "options_value": options_value,
        "options_pl": options_pl,
        "options_session_upl": options_pl,
        "futures_pl": futures_pl,
        "futures_session_upl": futures_pl,
        "session_upl": options_pl + futures_pl,
        "total_pl": options_pl + futures_pl,
        "session_funding": 0.0,
        "portfolio_margining_enabled": False,
        "cross_collateral_enabled": False,
        "margin_model": "segregated_sm",
        "limits": limits,
    }
