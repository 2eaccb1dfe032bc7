"""The cost of hedging, read from the ledger: fees, slippage, funding, and what the hedge bought.

``hedgebot report`` answers "what did hedging cost, and what did it remove?". From a ledger
this module computes, per rebalance and in total, per currency:

- fees (coin and USD; a negative fee is a maker rebate);
- slippage: each fill against the hedge mid recorded when the order was decided
  (implementation shortfall), in bps and in coin and USD, signed so a cost is positive;
- funding paid on a perpetual hedge between rebalances (:mod:`bot.analysis.attribution`);
- the book's P&L between rebalances split by greek, realised against break-even implied vol,
  and the cost per unit of P&L variance the hedge removed.

Units: an inverse perpetual (BTC-PERPETUAL) fill of ``A`` USD at ``P`` against mid ``M`` costs
``±A·(1/M − 1/P)`` coin; a linear one of ``A`` coin costs ``±A·(P − M)`` USD. Which one a fill
is, and its currency, come from the :class:`~bot.domain.Instrument` it traded (the caller passes
the hedge instruments, e.g. :func:`bot.config.hedge_instruments` of the venue facts).
Coin is valued in USD at the fill's index price (else its decision mid, else its price).
Tables, CSV, JSON and plots of the result are in :mod:`bot.analysis.report`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from bot.analysis.attribution import (
    DEFAULT_FUNDING_RATE_8H,
    Attribution,
    ConstantFunding,
    Funding,
    ObservationColumns,
    attribute_columns,
)
from bot.analysis.rebalance_table import NUMBERS, FloatArray, RebalanceCost, RebalanceTable
from bot.domain import DataError, Fill, Instrument, InstrumentKind, RebalanceStatus, TargetMode
from bot.store.ledger import Ledger
from bot.store.records import OrderRow
from bot.store.report_rows import OrderLink, RebalanceColumns, stamps_of

__all__ = [
    "NO_REBALANCES",
    "CurrencyReport",
    "FillCost",
    "RebalanceCost",
    "Report",
    "Totals",
    "build_report",
    "fill_cost",
    "instrument_of",
]

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
    rebalances: RebalanceTable
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
        return [float(x) for x in np.cumsum(self.rebalances.cost_usd())]


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
    per_ccy = ledger.report_rebalances(since=since, currency=currency)
    if not per_ccy:
        where = f" for {currency}" if currency else ""
        return Report(books=(), funding=fund_text, message=f"{NO_REBALANCES}{where}")
    links = ledger.order_links()
    by_label = {o.label: o for o in links}
    by_venue_id = {o.venue_order_id: o for o in links if o.venue_order_id}
    del links

    fills_by_ccy: dict[str, list[tuple[Fill, OrderLink | None]]] = defaultdict(list)
    for f in ledger.report_fills(since):
        order = by_label.get(f.label) or by_venue_id.get(f.venue_order_id)
        linked = order is not None and order.rebalance_id and order.currency is not None
        ccy = (
            order.currency
            if linked and order is not None and order.currency is not None
            else instrument_of(instruments, f.instrument_name).currency
        )
        fills_by_ccy[ccy].append((f, order))

    names = sorted(per_ccy)
    books = tuple(
        _currency_report(ccy, per_ccy.pop(ccy), fills_by_ccy.get(ccy, []), fund, instruments)
        for ccy in names
    )
    return Report(books=books, funding=fund_text)


def fill_cost(
    fill: Fill, order: OrderRow | OrderLink | None, currency: str, inverse: bool
) -> FillCost:
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
    rows: RebalanceColumns,
    fills: list[tuple[Fill, OrderLink | None]],
    funding: Funding,
    instruments: Mapping[str, Instrument],
) -> CurrencyReport:
    """One currency's report. A pass over the rows carries the hedge position forward and
    picks the observations; everything else is column arithmetic (see ``attribute_columns``)."""
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

    n = len(rows)
    num = rows.numbers
    out = {name: np.zeros(n) for name in NUMBERS}
    out.update({name: num[name] for name in ("index_price", "delta_before", "band_low")})
    out.update({name: num[name] for name in ("band_high", "trade_amount")})
    out["slippage_bps"] = np.full(n, math.nan)
    has_fills = np.zeros(n, dtype=np.bool_)
    obs_costs = np.zeros(n)
    added = np.zeros(n)  # coin delta the rebalance's fills added
    position = {rid: k for k, rid in enumerate(rows.id.tolist())} if per_reb else {}
    for rid, mine in per_reb.items():
        k = position.get(rid, -1)
        if k < 0:
            continue  # a fill of a rebalance before ``since`` or of another currency's
        signed = sum(c.amount * (1 if c.side == "buy" else -1) for c in mine)
        has_fills[k] = True
        added[k] = _delta_of(rows, k, mine, instruments)
        _sum_fills(out, k, signed, mine)
        obs_costs[k] = sum(c.fee_coin + (c.slippage_coin or 0.0) for c in mine)
    del position
    hedge, inferred = _hedge_held(rows.snapshot_hedge, out["filled_amount"], has_fills)
    out["hedge_held"] = hedge
    out["delta_held"] = num["delta_before"] + added  # NaN (not recorded) stays NaN
    # A row is an observation when every figure attribution needs was recorded (NaN: not).
    candidate = np.isfinite(out["delta_held"]) & np.asarray(
        [i is not None for i in rows.text["instrument"]], dtype=np.bool_
    )
    for name in ("index_price", "equity", "gamma", "vega", "theta"):
        candidate &= np.isfinite(num[name])
    obs_rows: list[int] = []
    last_obs: int | None = None
    ts_us = rows.ts_us.tolist()
    for k in np.flatnonzero(candidate).tolist():
        if last_obs is not None and ts_us[k] <= last_obs:
            cycle = rows.cycle_id[k]
            notes.append(f"rebalance {cycle} at the same time as the one before: skipped")
            continue
        last_obs = ts_us[k]
        obs_rows.append(k)
    del ts_us
    if inferred:
        notes.append("hedge position inferred from fills where no greeks snapshot was stored")
    if len(obs_rows) < 2:
        notes.append("fewer than two rebalances with greeks: no P&L attribution")

    picked = np.asarray(obs_rows, dtype=np.intp)
    attribution = attribute_columns(
        _observations(rows, picked, out, obs_costs, instruments), funding
    )
    if attribution.vega_intervals < attribution.n:
        notes.append(
            f"{attribution.n - attribution.vega_intervals} of {attribution.n} intervals have no "
            "IV stored with their greeks: their vega P&L is in the residual, and implied vol "
            "there is the break-even vol -2*365*theta/(gamma*S^2)"
        )
    if attribution.n:
        out["funding_coin"][picked[:-1]] = attribution.funding_coin
        out["funding_usd"][picked[:-1]] = attribution.funding_usd
    status = _statuses(rows.text["status"])
    table = RebalanceTable(
        id=rows.id,
        cycle_id=rows.cycle_id,
        ts_us=rows.ts_us,
        status=status,
        reason=rows.text["reason"],
        target_mode=rows.text["target_mode"],
        numbers=out,
        has_fills=has_fills,
    )
    notional: dict[str, float] = defaultdict(float)
    for c in costs:
        notional[c.instrument] += c.amount
    totals = Totals(
        rebalances=n,
        traded=sum(1 for s in status if s == RebalanceStatus.TRADED),
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
    fill_stamps = [c.ts for c in costs]
    return CurrencyReport(
        currency=ccy,
        first_ts=min([*stamps_of(rows.ts_us[:1]), *fill_stamps]),
        last_ts=max([*stamps_of(rows.ts_us[-1:]), *fill_stamps]),
        rebalances=table,
        fills=tuple(costs),
        attribution=attribution,
        totals=totals,
        notes=tuple(notes),
    )


def _hedge_held(
    snapshot: FloatArray, signed: FloatArray, has_fills: npt.NDArray[np.bool_]
) -> tuple[FloatArray, bool]:
    """The hedge position after each rebalance: the cycle's snapshot plus its fills; without a
    snapshot, the one before plus the fills (NaN until anything is known). True when any was
    inferred so."""
    held = snapshot + signed
    inferred = False
    for k in np.flatnonzero(np.isnan(snapshot)).tolist():
        before = held[k - 1] if k else math.nan
        if not math.isnan(before) or (has_fills[k] and signed[k]):
            held[k] = (0.0 if math.isnan(before) else before) + signed[k]
            inferred = True
    return held, inferred


def _statuses(values: list[str]) -> list[str]:
    """Each status as the report has always shown it, checked against ``RebalanceStatus``."""
    shown = {v: str(RebalanceStatus(v)) for v in set(values)}
    return [shown[v] for v in values]


def _sum_fills(out: dict[str, FloatArray], k: int, signed: float, fills: list[FillCost]) -> None:
    out["filled_amount"][k] = signed
    out["fees_coin"][k] = sum(c.fee_coin for c in fills)
    out["fees_usd"][k] = sum(c.fee_usd for c in fills)
    out["slippage_coin"][k] = sum(c.slippage_coin or 0.0 for c in fills)
    out["slippage_usd"][k] = sum(c.slippage_usd or 0.0 for c in fills)
    bps = _weighted_bps(fills)
    out["slippage_bps"][k] = math.nan if bps is None else bps


def _optional(x: float) -> float | None:
    return None if math.isnan(x) else x


def _delta_of(
    rows: RebalanceColumns, k: int, fills: list[FillCost], instruments: Mapping[str, Instrument]
) -> float:
    """Coin delta the rebalance's fills added, in the decision's own units when known."""
    trade_amount = _optional(float(rows.numbers["trade_amount"][k]))
    trade_delta = _optional(float(rows.numbers["trade_delta"][k]))
    if trade_amount and trade_delta is not None:
        per_unit = trade_delta / trade_amount
        return sum(c.amount * (1 if c.side == "buy" else -1) * per_unit for c in fills)
    return sum(
        (1 if c.side == "buy" else -1)
        * instrument_of(instruments, c.instrument).coin_delta_of_amount(c.amount, c.price)
        for c in fills
    )


def _observations(
    rows: RebalanceColumns,
    picked: npt.NDArray[np.intp],
    out: dict[str, FloatArray],
    costs: FloatArray,
    instruments: Mapping[str, Instrument],
) -> ObservationColumns:
    """The rows at ``picked`` as attribution's observations (the greeks at each read)."""
    num = rows.numbers
    index = num["index_price"][picked]
    mid = num["hedge_mid"][picked]
    names = [rows.text["instrument"][k] for k in picked.tolist()]
    kinds = {name: instrument_of(instruments, name) for name in set(names)}
    modes = [rows.text["target_mode"][k] for k in picked.tolist()]
    coin = {m: TargetMode(m) is TargetMode.COIN for m in set(modes)}
    hedge = out["hedge_held"][picked]
    return ObservationColumns(
        ts=stamps_of(rows.ts_us[picked]),
        ts_us=rows.ts_us[picked],
        index_price=index,
        # a hedge mid of 0 or none recorded: the index stands in for it
        hedge_price=np.where(np.isnan(mid) | (mid == 0.0), index, mid),
        equity=num["equity"][picked],
        delta_held=out["delta_held"][picked],
        gamma=num["gamma"][picked],
        vega=num["vega"][picked],
        theta=num["theta"][picked],
        hedge_held=np.where(np.isnan(hedge), 0.0, hedge),
        costs=costs[picked],
        iv=rows.iv[picked],
        coin=np.asarray([coin[m] for m in modes], dtype=np.bool_),
        inverse=np.asarray([kinds[x].inverse for x in names], dtype=np.bool_),
        perpetual=np.asarray(
            [kinds[x].kind is InstrumentKind.PERPETUAL for x in names], dtype=np.bool_
        ),
    )
