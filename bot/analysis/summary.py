"""A ledger's headline: what was decided, sent and filled, what it cost, how tight delta stayed.

Shared by the demo and ``hedgebot report``'s first table; reads the ledger only.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import numpy as np

from bot.config import Settings
from bot.domain import Instrument, RebalanceStatus
from bot.store.ledger import Ledger
from bot.units import SECONDS_PER_HOUR


def render_summary(ledger: Ledger, settings: Settings, since: datetime | None = None) -> str:
    s = ledger.summary()
    rebalances = [r for r in ledger.rebalances() if since is None or r.ts >= since]
    lines = ["ledger summary"]
    if s.first_ts and s.last_ts:
        hours = (s.last_ts - s.first_ts).total_seconds() / SECONDS_PER_HOUR
        lines.append(
            f"  period          {s.first_ts:%Y-%m-%d %H:%M} → {s.last_ts:%Y-%m-%d %H:%M}"
            f" UTC ({hours:.1f} h simulated)"
        )
    by = ", ".join(f"{k} {v}" for k, v in sorted(s.rebalances_by_status.items()))
    lines.append(f"  rebalances      {s.rebalances} ({by})")
    skipped = Counter(
        r.reason.split(":")[0] for r in rebalances if r.status == RebalanceStatus.SKIPPED
    )
    if skipped:
        why = ", ".join(f"{reason} {n}" for reason, n in skipped.most_common())
        lines.append(f"  skipped because {why}")
    ob = ", ".join(f"{k} {v}" for k, v in sorted(s.orders_by_status.items()))
    lines.append(f"  orders          {s.orders} ({ob or 'none'})")
    lines.append(f"  fills           {s.fills}")
    for currency in settings.venue.currencies:
        rows = [r for r in rebalances if r.currency == currency and r.delta_before is not None]
        if not rows:
            continue
        last_index = next((r.index_price for r in reversed(rows) if r.index_price), None)
        fee = s.fees.get(currency, 0.0)
        fee_usd = f" (${fee * last_index:,.2f})" if last_index else ""
        lines.append(f"\n  {currency}")
        lines.append(f"    fees            {fee:.8f} {currency}{fee_usd}")
        hedge_instrument = settings.venue.facts[currency].perpetual_instrument(currency)
        notional = s.traded_notional.get(hedge_instrument.name, 0.0)
        lines.append(f"    traded          ${notional:,.0f} of {currency} perpetual")
        before = np.abs([r.delta_before for r in rows if r.delta_before is not None])
        after = np.abs([r.expected_delta_after for r in rows if r.expected_delta_after is not None])
        bands = [
            r.band_high - r.target for r in rows if r.band_high is not None and r.target is not None
        ]
        lines.append(
            f"    |delta| seen    median {np.median(before):.4f}, "
            f"95% {np.quantile(before, 0.95):.4f},"
            f" max {before.max():.4f} {currency}"
            + (f" (band ±{np.median(bands):.4f})" if bands else "")
        )
        if after.size:
            lines.append(f"    |delta| after   max {after.max():.4f} {currency} after each trade")
        eq = [(r.equity, r.index_price) for r in rows if r.equity is not None and r.index_price]
        if len(eq) >= 2:
            (e0, p0), (e1, p1) = eq[0], eq[-1]
            lines.append(
                f"    equity          {e0:.6f} → {e1:.6f} {currency} "
                f"({e1 - e0:+.6f} {currency}); in USD ${e0 * p0:,.0f} → ${e1 * p1:,.0f} "
                f"({e1 * p1 - e0 * p0:+,.0f})"
            )
            hedge = _hedge_pnl_coin(ledger, hedge_instrument, p1)
            lines.append(
                f"    hedge P&L       {hedge:+.6f} {currency} (${hedge * p1:+,.0f}) from the "
                f"perpetual at the last index {p1:,.2f}; index moved {100 * (p1 / p0 - 1):+.2f}%"
            )
    if s.slippage_bps is not None:
        lines.append(f"\n  slippage vs decision mid {s.slippage_bps:+.2f} bps (amount-weighted)")
    return "\n".join(lines)


def _hedge_pnl_coin(ledger: Ledger, hedge: Instrument, last_price: float) -> float:
    """Coin P&L of the fills in the (inverse) hedge perpetual, marked at ``last_price``."""
    pnl = 0.0
    for f in ledger.fills():
        if f.instrument_name != hedge.name:
            continue
        pnl += f.side.sign * f.amount * (1 / f.price - 1 / last_price) - f.fee
    return pnl
