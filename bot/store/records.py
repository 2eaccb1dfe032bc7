"""What goes into the ledger and what comes out: frozen dataclasses in the domain's units.

Callers never see SQLAlchemy rows; they build these (or get them back) with floats and aware
UTC datetimes, and the ledger converts at the boundary (see ``bot.store.models``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.domain import (
    DataError,
    OrderRequest,
    OrderStatus,
    OrderType,
    PortfolioGreeks,
    RebalanceStatus,
    Side,
    TimeInForce,
    TradingState,
)


def strictest(*states: TradingState) -> TradingState:
    """The most restrictive of ``states`` (halted, then reducing, then active)."""
    order = (TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED)
    return max(states, key=order.index, default=TradingState.ACTIVE)


OPEN_STATUSES: tuple[OrderStatus, ...] = tuple(s for s in OrderStatus if not s.terminal)


def to_json(name: str, value: Any) -> str:
    """Canonical JSON (sorted keys); NaN or an unserialisable value is a ``DataError``."""
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} cannot be stored as JSON: {exc}") from exc


def greeks_to_json(greeks: PortfolioGreeks) -> str:
    return to_json("greeks", dataclasses.asdict(greeks))


def greeks_from_json(text: str) -> PortfolioGreeks:
    """Rebuild the PortfolioGreeks a rebalance saw; keys the class no longer has are ignored."""
    raw = json.loads(text)
    known = {f.name for f in dataclasses.fields(PortfolioGreeks)}
    values = {k: v for k, v in raw.items() if k in known}
    values["expired_skipped"] = tuple(values.get("expired_skipped", ()))
    try:
        return PortfolioGreeks(**values)
    except TypeError as exc:
        raise DataError(f"stored greeks do not fit PortfolioGreeks: {exc}") from exc


@dataclass(frozen=True, kw_only=True)
class RebalanceRecord:
    """One rebalance of one currency: what was seen, what was decided, and why.

    ``cycle_id`` is unique: a cycle that hedges two currencies records two rebalances with two
    ids. Figures a cycle never reached (it failed before quoting, say) stay None.
    """

    cycle_id: str
    ts: datetime
    currency: str
    mode: str  # "daemon", "oneshot", "backtest", …
    policy: str
    target_mode: str
    status: RebalanceStatus | str
    reason: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    instrument: str | None = None
    index_price: float | None = None
    hedge_bid: float | None = None
    hedge_ask: float | None = None
    hedge_mid: float | None = None
    delta_before: float | None = None
    target: float | None = None
    band_low: float | None = None
    band_high: float | None = None
    gamma: float | None = None
    vega: float | None = None
    theta: float | None = None
    equity: float | None = None
    trade_amount: float | None = None
    trade_delta: float | None = None
    expected_delta_after: float | None = None
    est_cost_usd: float | None = None
    greeks: PortfolioGreeks | None = None

    def __post_init__(self) -> None:
        if not self.cycle_id:
            raise DataError("rebalance needs a cycle_id")
        try:
            RebalanceStatus(self.status)
        except ValueError:
            allowed = ", ".join(s.value for s in RebalanceStatus)
            raise DataError(f"rebalance status {self.status!r} is not one of {allowed}") from None


@dataclass(frozen=True, kw_only=True)
class RebalanceRow(RebalanceRecord):
    """A stored rebalance, with its row id (what orders refer to)."""

    id: int


@dataclass(frozen=True, kw_only=True)
class GreeksSnapshot:
    """The book's greeks at one cycle, plus the hedge position held against them."""

    cycle_id: str
    ts: datetime
    currency: str
    index_price: float
    delta_coin: float
    delta_usd_target: float
    gamma: float
    dollar_gamma: float
    vega: float
    theta: float
    equity: float
    hedge_position: float

    @classmethod
    def of(
        cls, greeks: PortfolioGreeks, *, cycle_id: str, ts: datetime, hedge_position: float
    ) -> GreeksSnapshot:
        return cls(
            cycle_id=cycle_id,
            ts=ts,
            currency=greeks.currency,
            index_price=greeks.index_price,
            delta_coin=greeks.delta_coin,
            delta_usd_target=greeks.delta_usd_target,
            gamma=greeks.gamma,
            dollar_gamma=greeks.dollar_gamma,
            vega=greeks.vega,
            theta=greeks.theta,
            equity=greeks.equity,
            hedge_position=hedge_position,
        )


@dataclass(frozen=True, kw_only=True)
class OrderRow:
    """Our record of one order: the request, the venue's latest word on it, and why we sent it."""

    label: str
    cycle_id: str
    rebalance_id: int | None
    venue_order_id: str | None
    instrument: str
    side: Side
    amount: float
    price: float | None
    order_type: OrderType
    post_only: bool
    reduce_only: bool
    time_in_force: TimeInForce
    status: OrderStatus
    filled_amount: float
    average_price: float | None
    decision_mid: float | None
    created_at: datetime
    updated_at: datetime

    @property
    def terminal(self) -> bool:
        return self.status.terminal

    @property
    def remaining(self) -> float:
        return self.amount - self.filled_amount

    def request(self) -> OrderRequest:
        """The request as recorded: what recovery looks up by label, or resends only if absent."""
        return OrderRequest(
            label=self.label,
            instrument_name=self.instrument,
            side=self.side,
            amount=self.amount,
            order_type=self.order_type,
            price=self.price,
            post_only=self.post_only,
            reduce_only=self.reduce_only,
            time_in_force=self.time_in_force,
        )


@dataclass(frozen=True, kw_only=True)
class OrderEventRow:
    """One appended state change of an order."""

    id: int
    label: str
    ts: datetime
    status: OrderStatus
    filled_amount: float | None
    detail: str


@dataclass(frozen=True, kw_only=True)
class TradingStateRow:
    """The risk gate's state of one scope; ``updated_at`` is None for a state never set."""

    scope: str
    state: TradingState
    reason: str
    updated_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class LedgerSummary:
    """Headline figures of a ledger, for ``hedgebot status`` and the top of a report.

    ``traded_notional`` is, per instrument, the summed fill amount in the instrument's amount
    unit: USD for Deribit's inverse perpetuals and futures, coin for options.
    ``slippage_bps`` is the amount-weighted average of each fill's price against the hedge mid
    at decision time, signed so that positive is a cost (bought above or sold below the mid);
    None when no fill has a decision mid.
    """

    rebalances_by_status: Mapping[str, int]
    orders_by_status: Mapping[str, int]
    fills: int
    fees: Mapping[str, float]  # fee currency -> total fee (negative is a rebate)
    traded_notional: Mapping[str, float]
    est_cost_usd: float
    delta_before_min: float | None
    delta_before_max: float | None
    expected_delta_after_min: float | None
    expected_delta_after_max: float | None
    slippage_bps: float | None
    first_ts: datetime | None
    last_ts: datetime | None

    @property
    def rebalances(self) -> int:
        return sum(self.rebalances_by_status.values())

    @property
    def orders(self) -> int:
        return sum(self.orders_by_status.values())
