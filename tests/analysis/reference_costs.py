"""The cost report as it was before it streamed (issue 13), kept as the oracle the streamed
report is checked against: every table read whole into objects, one Python loop per row.
Do not use outside tests.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from bot.domain import DataError, Fill, Instrument, InstrumentKind, TargetMode
from bot.store.ledger import Ledger
from bot.store.records import GreeksSnapshot, OrderRow, RebalanceRow
from tests.analysis.reference_attribution import (
    DEFAULT_FUNDING_RATE_8H,
    Attribution,
    ConstantFunding,
    Funding,
    Observation,
    attribute,
)

USD_CURRENCIES = frozenset({"USD", "USDC", "USDT"})
NO_REBALANCES = "no rebalances recorded"


def instrument_of(instruments: Mapping[str, Instrument], name: str) -> Instrument:
    """The instrument a ledger row names; a name the venue facts do not know is refused."""
    found = instruments.get(name)
    if found is None:
        raise DataError(
            f"the ledger has fills in {name}, which is no hedge instrument of venue.facts: "
            "add its currency there"
        )
    return found


@dataclass(frozen=True)
class FillCost:
    """One fill and what it cost. ``slippage_*`` are None without a decision mid."""

    trade_id: str
    ts: datetime
    label: str
    cycle_id: str | None
    rebalance_id: int | None
    instrument: str
    side: str
    amount: float
    price: float
    decision_mid: float | None
    usd_rate: float
    fee_coin: float
    fee_usd: float
    slippage_bps: float | None
    slippage_coin: float | None
    slippage_usd: float | None


@dataclass(frozen=True)
class RebalanceCost:
    """One rebalance: what it saw and decided, what its fills cost, and the funding paid on the
    hedge until the next rebalance (0 for the last one)."""

    id: int
    cycle_id: str
    ts: datetime
    status: str
    reason: str
    target_mode: str
    index_price: float | None
    delta_before: float | None
    band_low: float | None
    band_high: float | None
    trade_amount: float | None
    filled_amount: float
    delta_held: float | None
    hedge_held: float | None
    fees_coin: float
    fees_usd: float
    slippage_coin: float
    slippage_usd: float
    slippage_bps: float | None
    funding_coin: float
    funding_usd: float

    @property
    def cost_usd(self) -> float:
        return self.fees_usd + self.slippage_usd + self.funding_usd


@dataclass(frozen=True)
class Totals:
    rebalances: int
    traded: int
    fills: int
    traded_notional: dict[str, float]  # per instrument, in its amount unit
    fees_coin: float
    fees_usd: float
    slippage_coin: float
    slippage_usd: float
    slippage_bps: float | None  # amount-weighted over fills with a decision mid
    funding_coin: float
    funding_usd: float

    @property
    def cost_usd(self) -> float:
        return self.fees_usd + self.slippage_usd + self.funding_usd


@dataclass(frozen=True)
class CurrencyReport:
    """The report of one currency's book."""

    currency: str
    first_ts: datetime
    last_ts: datetime
    rebalances: tuple[RebalanceCost, ...]
    fills: tuple[FillCost, ...]
    attribution: Attribution
    totals: Totals
    notes: tuple[str, ...] = ()

    @property
    def cost_per_variance(self) -> float | None:
        """Total cost (USD) per USD² of per-interval P&L variance the hedge removed."""
        removed = self.attribution.variance_removed
        if removed is None or removed <= 0:
            return None
        return self.totals.cost_usd / removed

    def cumulative_cost_usd(self) -> list[float]:
        return [float(x) for x in np.cumsum([r.cost_usd for r in self.rebalances])]


@dataclass(frozen=True)
class Report:
    """Every currency's report; ``message`` says why there is nothing to report."""

    books: tuple[CurrencyReport, ...]
    funding: str
    message: str | None = None

    @property
    def empty(self) -> bool:
        return not self.books


def build_report(
    ledger: Ledger,
    instruments: Mapping[str, Instrument],
    *,
    funding: Funding | float = DEFAULT_FUNDING_RATE_8H,
    currency: str | None = None,
    since: datetime | None = None,
) -> Report:
    """The cost-of-hedging report of ``ledger`` (optionally one currency, from ``since``).

    ``instruments`` are the instruments the ledger traded, by name (the hedge perpetuals).

    ``funding`` is a rate per 8 h (default 0.0001, Deribit's neutral rate, accrued
    continuously) or a :class:`bot.analysis.attribution.Funding` such as ``SeriesFunding`` over a
    recorded series. An empty ledger gives a report whose ``message`` is "no rebalances
    recorded", not an exception.
    """
    fund = ConstantFunding(funding) if isinstance(funding, int | float) else funding
    fund_text = (
        f"constant {fund.rate_8h:.6f} per 8 h" if isinstance(fund, ConstantFunding) else "series"
    )
    rebalances = ledger.rebalances(since)
    if currency is not None:
        rebalances = [r for r in rebalances if r.currency == currency]
    if not rebalances:
        where = f" for {currency}" if currency else ""
        return Report(books=(), funding=fund_text, message=f"{NO_REBALANCES}{where}")
    orders = ledger.orders()
    by_label = {o.label: o for o in orders}
    by_venue_id = {o.venue_order_id: o for o in orders if o.venue_order_id}
    rebalance_by_id = {r.id: r for r in ledger.rebalances()}
    snapshots = {s.cycle_id: s for s in ledger.greeks_snapshots(since)}

    fills_by_ccy: dict[str, list[tuple[Fill, OrderRow | None]]] = defaultdict(list)
    for f in ledger.fills(since):
        order = by_label.get(f.label) or by_venue_id.get(f.venue_order_id)
        reb = rebalance_by_id.get(order.rebalance_id) if order and order.rebalance_id else None
        ccy = reb.currency if reb else instrument_of(instruments, f.instrument_name).currency
        fills_by_ccy[ccy].append((f, order))

    by_ccy: dict[str, list[RebalanceRow]] = defaultdict(list)
    for r in rebalances:
        by_ccy[r.currency].append(r)
    books = tuple(
        _currency_report(ccy, rows, fills_by_ccy.get(ccy, []), snapshots, fund, instruments)
        for ccy, rows in sorted(by_ccy.items())
    )
    return Report(books=books, funding=fund_text)


def fill_cost(fill: Fill, order: OrderRow | None, currency: str, inverse: bool) -> FillCost:
    """Fees and slippage of one fill in coin and USD (see the module docstring); ``inverse``:
    the instrument is sized in USD and settled in ``currency``."""
    mid = order.decision_mid if order is not None else None
    rate = fill.index_price or mid or fill.price
    if fill.fee_currency == currency:
        fee_coin, fee_usd = fill.fee, fill.fee * rate
    elif fill.fee_currency in USD_CURRENCIES:
        fee_coin, fee_usd = fill.fee / rate, fill.fee
    else:
        raise DataError(
            f"fill {fill.trade_id}: fee in {fill.fee_currency!r}, neither {currency} nor USD"
        )
    bps = slip_coin = slip_usd = None
    if mid is not None:
        sign = fill.side.sign
        bps = sign * (fill.price - mid) / mid * 1e4
        if inverse:
            slip_coin = sign * fill.amount * (1.0 / mid - 1.0 / fill.price)
            slip_usd = slip_coin * rate
        else:
            slip_usd = sign * fill.amount * (fill.price - mid)
            slip_coin = slip_usd / rate
    return FillCost(
        trade_id=fill.trade_id,
        ts=fill.timestamp,
        label=fill.label,
        cycle_id=order.cycle_id if order else None,
        rebalance_id=order.rebalance_id if order else None,
        instrument=fill.instrument_name,
        side=fill.side.value,
        amount=fill.amount,
        price=fill.price,
        decision_mid=mid,
        usd_rate=rate,
        fee_coin=fee_coin,
        fee_usd=fee_usd,
        slippage_bps=bps,
        slippage_coin=slip_coin,
        slippage_usd=slip_usd,
    )


def _weighted_bps(costs: list[FillCost]) -> float | None:
    with_mid = [c for c in costs if c.slippage_bps is not None]
    amount = sum(c.amount for c in with_mid)
    if not with_mid or amount <= 0:
        return None
    return sum(c.amount * (c.slippage_bps or 0.0) for c in with_mid) / amount


def _currency_report(
    ccy: str,
    rows: list[RebalanceRow],
    fills: list[tuple[Fill, OrderRow | None]],
    snapshots: dict[str, GreeksSnapshot],
    funding: Funding,
    instruments: Mapping[str, Instrument],
) -> CurrencyReport:
    notes: list[str] = []
    costs = [
        fill_cost(f, o, ccy, instrument_of(instruments, f.instrument_name).inverse)
        for f, o in fills
    ]
    per_reb: dict[int, list[FillCost]] = defaultdict(list)
    for c in costs:
        if c.rebalance_id is not None:
            per_reb[c.rebalance_id].append(c)
    unlinked = sum(1 for c in costs if c.rebalance_id is None)
    if unlinked:
        notes.append(f"{unlinked} fills belong to no recorded rebalance: in totals only")

    held: dict[int, tuple[float | None, float | None, float]] = {}
    observations: list[Observation] = []
    obs_ids: list[int] = []
    hedge_held: float | None = None
    inferred = False
    for r in rows:
        mine = per_reb.get(r.id, [])
        signed = sum(c.amount * (1 if c.side == "buy" else -1) for c in mine)
        snap = snapshots.get(r.cycle_id)
        if snap is not None:
            hedge_held = snap.hedge_position + signed
        elif hedge_held is not None or signed:
            hedge_held = (hedge_held or 0.0) + signed
            inferred = True
        added = _delta_of(r, mine, instruments)
        delta_held = None if r.delta_before is None else r.delta_before + added
        held[r.id] = (delta_held, hedge_held, signed)
        obs = _observation(r, delta_held, hedge_held, mine, instruments)
        if obs is not None:
            if observations and obs.ts <= observations[-1].ts:
                notes.append(f"rebalance {r.cycle_id} at the same time as the one before: skipped")
                continue
            observations.append(obs)
            obs_ids.append(r.id)
    if inferred:
        notes.append("hedge position inferred from fills where no greeks snapshot was stored")
    if len(observations) < 2:
        notes.append("fewer than two rebalances with greeks: no P&L attribution")

    attribution = attribute(observations, funding)
    if attribution.vega_intervals < attribution.n:
        notes.append(
            f"{attribution.n - attribution.vega_intervals} of {attribution.n} intervals have no "
            "IV stored with their greeks: their vega P&L is in the residual, and implied vol "
            "there is the break-even vol -2*365*theta/(gamma*S^2)"
        )
    funding_by_id = {
        rid: (float(attribution.funding_coin[k]), float(attribution.funding_usd[k]))
        for k, rid in enumerate(obs_ids[:-1])
    }
    rebalances = tuple(
        _rebalance_cost(r, per_reb.get(r.id, []), held[r.id], funding_by_id.get(r.id)) for r in rows
    )
    notional: dict[str, float] = defaultdict(float)
    for c in costs:
        notional[c.instrument] += c.amount
    totals = Totals(
        rebalances=len(rows),
        traded=sum(1 for r in rows if r.status == "traded"),
        fills=len(costs),
        traded_notional=dict(notional),
        fees_coin=sum(c.fee_coin for c in costs),
        fees_usd=sum(c.fee_usd for c in costs),
        slippage_coin=sum(c.slippage_coin or 0.0 for c in costs),
        slippage_usd=sum(c.slippage_usd or 0.0 for c in costs),
        slippage_bps=_weighted_bps(costs),
        funding_coin=float(attribution.funding_coin.sum()),
        funding_usd=float(attribution.funding_usd.sum()),
    )
    stamps = [r.ts for r in rows] + [c.ts for c in costs]
    return CurrencyReport(
        currency=ccy,
        first_ts=min(stamps),
        last_ts=max(stamps),
        rebalances=rebalances,
        fills=tuple(costs),
        attribution=attribution,
        totals=totals,
        notes=tuple(notes),
    )


def _delta_of(
    r: RebalanceRow, fills: list[FillCost], instruments: Mapping[str, Instrument]
) -> float:
    """Coin delta the rebalance's fills added, in the decision's own units when known."""
    if not fills:
        return 0.0
    if r.trade_amount and r.trade_delta is not None:
        per_unit = r.trade_delta / r.trade_amount
        return sum(c.amount * (1 if c.side == "buy" else -1) * per_unit for c in fills)
    return sum(
        (1 if c.side == "buy" else -1)
        * instrument_of(instruments, c.instrument).coin_delta_of_amount(c.amount, c.price)
        for c in fills
    )


def _observation(
    r: RebalanceRow,
    delta_held: float | None,
    hedge_held: float | None,
    fills: list[FillCost],
    instruments: Mapping[str, Instrument],
) -> Observation | None:
    index, equity, gamma, vega, theta = r.index_price, r.equity, r.gamma, r.vega, r.theta
    if (
        index is None
        or equity is None
        or gamma is None
        or vega is None
        or theta is None
        or delta_held is None
        or r.instrument is None
        or not all(math.isfinite(x) for x in (index, equity, gamma, vega, theta, delta_held))
    ):
        return None
    instrument = instrument_of(instruments, r.instrument)
    return Observation(
        ts=r.ts,
        index_price=index,
        hedge_price=r.hedge_mid or index,
        equity=equity,
        delta_held=delta_held,
        gamma=gamma,
        vega=vega,
        theta=theta,
        target_mode=TargetMode(r.target_mode),
        hedge_held=hedge_held or 0.0,
        costs=sum(c.fee_coin + (c.slippage_coin or 0.0) for c in fills),
        inverse=instrument.inverse,
        perpetual=instrument.kind is InstrumentKind.PERPETUAL,
        iv=r.greeks.iv if r.greeks is not None else None,
    )


def _rebalance_cost(
    r: RebalanceRow,
    fills: list[FillCost],
    held: tuple[float | None, float | None, float],
    funding: tuple[float, float] | None,
) -> RebalanceCost:
    delta_held, hedge_held, signed = held
    fund_coin, fund_usd = funding or (0.0, 0.0)
    return RebalanceCost(
        id=r.id,
        cycle_id=r.cycle_id,
        ts=r.ts,
        status=str(r.status),
        reason=r.reason,
        target_mode=r.target_mode,
        index_price=r.index_price,
        delta_before=r.delta_before,
        band_low=r.band_low,
        band_high=r.band_high,
        trade_amount=r.trade_amount,
        filled_amount=signed,
        delta_held=delta_held,
        hedge_held=hedge_held,
        fees_coin=sum(c.fee_coin for c in fills),
        fees_usd=sum(c.fee_usd for c in fills),
        slippage_coin=sum(c.slippage_coin or 0.0 for c in fills),
        slippage_usd=sum(c.slippage_usd or 0.0 for c in fills),
        slippage_bps=_weighted_bps(fills),
        funding_coin=fund_coin,
        funding_usd=fund_usd,
    )
