"""What ``hedgebot watch`` shows, read from the ledger and the daemon's ``/readyz``."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client.parser import text_string_to_metric_families

from bot.config import Settings, hedge_instruments
from bot.monitor.costs import fill_cost
from bot.store.ledger import Ledger
from bot.store.records import OrderRow, RebalanceRow

DECISIONS = 5


@dataclass
class Costs:
    fills: int = 0
    traded_usd: float = 0.0
    fees_usd: float = 0.0
    slippage_usd: float = 0.0


@dataclass
class CurrencyView:
    currency: str
    delta: float | None = None
    delta_coin: float | None = None
    target: float | None = None
    band: tuple[float, float] | None = None
    hedge: float | None = None
    gamma: float | None = None
    dollar_gamma: float | None = None
    index: float | None = None
    data_age: float | None = None
    decisions: list[RebalanceRow] = field(default_factory=list)
    orders: list[OrderRow] = field(default_factory=list)
    costs: Costs = field(default_factory=Costs)
    state: str = "active"  # this currency's own trading state (the global one is the frame's)
    state_reason: str = ""


@dataclass
class Frame:
    now: datetime
    ledger: str
    state: str
    state_reason: str
    books: list[CurrencyView]
    daemon: str  # readiness as the daemon's /readyz says, or why it is unknown


def read_frame(
    ledger: Ledger, settings: Settings, now: datetime, where: str, monitor_url: str | None
) -> Frame:
    currencies = settings.venue.currencies
    hedges = hedge_instruments(settings.venue.facts)
    books = {c: CurrencyView(c) for c in currencies}
    for c, view in books.items():
        own = ledger.get_trading_state(c)
        view.state, view.state_reason = own.state.value, own.reason
        snap = ledger.last_greeks_snapshot(c)
        if snap is not None:
            view.delta_coin, view.hedge, view.gamma = (
                snap.delta_coin,
                snap.hedge_position,
                snap.gamma,
            )
            view.dollar_gamma, view.index = snap.dollar_gamma, snap.index_price
            view.data_age = (now - snap.ts).total_seconds()
    for row in ledger.last_rebalances(50 * len(currencies)):
        seen = books.get(row.currency)
        if seen is None:
            continue
        if len(seen.decisions) < DECISIONS:
            seen.decisions.append(row)
        if seen.band is None and row.band_low is not None and row.band_high is not None:
            seen.band, seen.delta, seen.target = (
                (row.band_low, row.band_high),
                row.delta_before,
                row.target,
            )
    for order in ledger.open_orders():
        inst = hedges.get(order.instrument)
        if inst is not None and inst.currency in books:
            books[inst.currency].orders.append(order)
    for f in ledger.fills(day_start_of(now)):
        inst = hedges.get(f.instrument_name)
        if inst is None or inst.currency not in books:
            continue
        c = inst.currency
        placed = ledger.order(f.label)
        cost = fill_cost(f, placed.decision_mid if placed else None, c, inst.inverse)
        k = books[c].costs
        k.fills += 1
        k.traded_usd += cost.notional_usd
        k.fees_usd += cost.fee_usd
        k.slippage_usd += cost.slippage_usd or 0.0
    state = ledger.get_trading_state()
    return Frame(
        now, where, state.state.value, state.reason, list(books.values()), _daemon(monitor_url)
    )


def day_start_of(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _daemon(url: str | None) -> str:
    """The daemon's own word: ``/readyz``, and from ``/metrics`` what the ledger cannot say
    (the venue clock offset, the venue's slowest method)."""
    if url is None:
        return "not watched (monitor.metrics: false)"
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=1) as r:
            body = json.loads(r.read())
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read() or b"{}")
    except (OSError, ValueError):
        return f"no answer at {url} (daemon not running?)"
    ready = "ready" if body.get("ok") else "not ready: " + "; ".join(body.get("problems", []))
    return ready + "".join(f"   {part}" for part in _from_metrics(url))


def _from_metrics(url: str) -> list[str]:
    try:
        with urllib.request.urlopen(f"{url}/metrics", timeout=1) as r:
            text = r.read().decode()
    except (OSError, ValueError):
        return []
    offset: float | None = None
    latency: dict[str, list[float]] = {}  # method -> [sum, count]
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "hedgebot_venue_clock_offset_seconds"
                and sample.value == sample.value
            ):
                offset = sample.value
            elif sample.name.startswith("hedgebot_venue_request_duration_seconds_"):
                kind = sample.name.rsplit("_", 1)[1]
                if kind in ("sum", "count"):
                    pair = latency.setdefault(sample.labels.get("method", "?"), [0.0, 0.0])
                    pair[kind == "count"] = sample.value
    parts = [] if offset is None else [f"venue clock {offset:+.3f} s"]
    means = {m: s / n for m, (s, n) in latency.items() if n}
    if means:
        slowest = max(means, key=lambda m: means[m])
        parts.append(f"slowest request {slowest} {means[slowest] * 1000:,.0f} ms (mean)")
    return parts
