"""Prometheus metrics of one daemon, on a registry of its own (tests run side by side).

Names follow https://prometheus.io/docs/practices/naming/: the unit in the name, ``_total`` on
counters. Fees and slippage can be negative (maker rebates, price improvement) and a counter
may only grow, so each is two counters split by ``kind``: the net is their difference.
Everything here takes plain values; :mod:`bot.monitor.monitor` decides what they are.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.domain import HedgeDecision, OrderStatus, PortfolioGreeks, TradingState

PREFIX = "hedgebot"
# Deribit answers in tens of milliseconds from nearby, seconds when loaded or far away.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
TERMINAL = tuple(s.value for s in OrderStatus if s.terminal)
WORKING = tuple(s.value for s in OrderStatus if not s.terminal)


class _OrderOutcomes(Collector):
    """``hedgebot_orders_total{status}``: orders that reached each final status, as the ledger
    counts them, so the figure survives a restart and equals the record."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def collect(self) -> list[Metric]:
        family = CounterMetricFamily(
            f"{PREFIX}_orders",
            "Orders that reached a final status, by status (from the ledger)",
            labels=["status"],
        )
        for status in TERMINAL:
            family.add_metric([status], float(self.counts.get(status, 0)))
        return [family]


class Metrics:
    """The gauges, counters and the latency histogram of one daemon."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self._now = now
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry

        def gauge(name: str, doc: str, labels: tuple[str, ...] = ("currency",)) -> Gauge:
            return Gauge(f"{PREFIX}_{name}", doc, list(labels), registry=r)

        def counter(name: str, doc: str, labels: tuple[str, ...] = ("currency",)) -> Counter:
            return Counter(f"{PREFIX}_{name}", doc, list(labels), registry=r)

        self.delta_coin = gauge("delta_coin", "Book delta (Deribit delta_total), coin")
        self.delta_usd = gauge("delta_usd", "Book delta in USD at the index")
        self.hedged_delta = gauge(
            "hedged_delta_coin", "Delta the policy hedges (target mode), coin"
        )
        self.target = gauge("target_delta_coin", "Delta the policy aims for, coin")
        self.band_low = gauge("band_low_coin", "Lowest delta the policy tolerates, coin")
        self.band_high = gauge("band_high_coin", "Highest delta the policy tolerates, coin")
        self.gamma = gauge("gamma_coin_per_usd", "Book gamma, coin of delta per USD of forward")
        self.dollar_gamma = gauge("dollar_gamma_usd", "USD change of delta per 1% move")
        self.vega = gauge("vega_usd", "Book vega, USD per vol point")
        self.index = gauge("index_price_usd", "Index price at the last good read")
        self.hedge = gauge("hedge_position_usd", "Hedge perpetual position, USD (inverse)")
        self.read_age = gauge("last_read_age_seconds", "Age of the last good read of the book")
        self.success_age = gauge(
            "last_success_age_seconds", "Time since the last cycle that read and decided"
        )
        self.state = gauge(
            "trading_state",
            "1 for the current trading state of a scope (global or a currency)",
            ("scope", "state"),
        )
        self.clock_offset = gauge(
            "venue_clock_offset_seconds", "Venue clock minus ours, when measured", ()
        )
        self.unknown = gauge("orders_unknown", "Orders sent whose outcome is not known", ())
        self.working = gauge("orders_working", "Orders not finished, by status", ("status",))
        self.cycles = counter("cycles_total", "Rebalance cycles by outcome", ("currency", "status"))
        self.fills = counter("fills_total", "Fills recorded in the ledger")
        self.traded = counter("traded_usd_total", "Hedge notional filled, USD")
        self.fees_coin = counter(
            "fees_coin_total", "Fees, coin; kind=rebate for maker rebates", ("currency", "kind")
        )
        self.fees_usd = counter(
            "fees_usd_total", "Fees, USD at the fill's index", ("currency", "kind")
        )
        self.slippage_usd = counter(
            "slippage_usd_total",
            "Fill price against the decision mid, USD; kind=improvement when better than the mid",
            ("currency", "kind"),
        )
        self.alerts = counter("alerts_total", "Alerts by kind and fate", ("kind", "fate"))
        self.latency = Histogram(
            f"{PREFIX}_venue_request_duration_seconds",
            "Venue request latency by method",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.outcomes = _OrderOutcomes()
        r.register(self.outcomes)
        self._last_read: dict[str, datetime] = {}
        self._last_success: dict[str, datetime] = {}
        for status in WORKING:
            self.working.labels(status).set(0)
        self.unknown.set(0)
        self.clock_offset.set(float("nan"))  # not measured yet, which is not "no offset"

    # -- per currency ---------------------------------------------------------------------------

    def track(self, currency: str) -> None:
        """Ages are computed when scraped, from the injected clock."""
        self.read_age.labels(currency).set_function(lambda: self._age(self._last_read, currency))
        self.success_age.labels(currency).set_function(
            lambda: self._age(self._last_success, currency)
        )

    def _age(self, seen: dict[str, datetime], currency: str) -> float:
        at = seen.get(currency)
        return float("nan") if at is None else (self._now() - at).total_seconds()

    def cycle(self, currency: str, status: str) -> None:
        self.cycles.labels(currency, status).inc()

    def success(self, currency: str, at: datetime) -> None:
        self._last_success[currency] = at

    def book(
        self, greeks: PortfolioGreeks, read_at: datetime, hedge_position: float | None
    ) -> None:
        c = greeks.currency
        self._last_read[c] = read_at
        self.delta_coin.labels(c).set(greeks.delta_coin)
        self.delta_usd.labels(c).set(greeks.delta_usd)
        self.gamma.labels(c).set(greeks.gamma)
        self.dollar_gamma.labels(c).set(greeks.dollar_gamma)
        self.vega.labels(c).set(greeks.vega)
        self.index.labels(c).set(greeks.index_price)
        if hedge_position is not None:
            self.hedge.labels(c).set(hedge_position)

    def decision(self, currency: str, d: HedgeDecision) -> None:
        self.hedged_delta.labels(currency).set(d.delta_before)
        self.target.labels(currency).set(d.target)
        self.band_low.labels(currency).set(d.band_low)
        self.band_high.labels(currency).set(d.band_high)

    def fill(
        self,
        currency: str,
        notional_usd: float,
        fee_coin: float,
        fee_usd: float,
        slippage_usd: float | None,
    ) -> None:
        self.fills.labels(currency).inc()
        self.traded.labels(currency).inc(abs(notional_usd))
        kind = "paid" if fee_coin >= 0 else "rebate"
        self.fees_coin.labels(currency, kind).inc(abs(fee_coin))
        self.fees_usd.labels(currency, kind).inc(abs(fee_usd))
        if slippage_usd is not None:
            kind = "cost" if slippage_usd >= 0 else "improvement"
            self.slippage_usd.labels(currency, kind).inc(abs(slippage_usd))

    # -- global ---------------------------------------------------------------------------------

    def trading_state(self, scope: str, state: TradingState) -> None:
        for s in TradingState:
            self.state.labels(scope, s.value).set(1.0 if s is state else 0.0)

    def orders(self, by_status: dict[str, int]) -> None:
        self.outcomes.counts = {k: v for k, v in by_status.items() if k in TERMINAL}
        for status in WORKING:
            self.working.labels(status).set(by_status.get(status, 0))
        self.unknown.set(by_status.get(OrderStatus.UNKNOWN.value, 0))

    def request(self, method: str, seconds: float) -> None:
        self.latency.labels(method).observe(max(0.0, seconds))
