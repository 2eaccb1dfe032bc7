"""The heartbeat's day figures come from SQL aggregates; they must equal the rows' own sums."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.daemon import Daemon
from bot.heartbeat import day_figures
from bot.store.ledger import Ledger
from tests.support.books import NOW
from tests.support.harness import stack


def figures_from_rows(ledger: Ledger, currency: str, since: object) -> dict[str, object]:
    """What the heartbeat said when it read every row of the day (the reference)."""
    counts = Counter(r.status for r in ledger.rebalances(since=since))  # type: ignore[arg-type]
    fees: dict[str, float] = {}
    for f in ledger.fills(since=since):  # type: ignore[arg-type]
        fees[f.fee_currency] = fees.get(f.fee_currency, 0.0) + f.fee
    snaps = ledger.greeks_snapshots(since, currency=currency)  # type: ignore[arg-type]
    coin = snaps[-1].equity - snaps[0].equity
    return {
        "by_status_today": dict(sorted(counts.items())),
        "fees_today": fees,
        "pnl_today": {currency: {"coin": coin, "usd": coin * snaps[-1].index_price}},
    }


async def test_day_figures_aggregated_in_sql_equal_the_sums_over_the_days_rows(
    tmp_path: Path,
) -> None:
    clock = FakeClock(NOW)
    app = stack(
        tmp_path, clock=clock, policy={"delta_band": {"band": 0.05}}, hedge={"target_delta": 0.3}
    )
    daemon = Daemon(app.ctx, ("BTC",), 60.0, heartbeat_seconds=600, stop_grace_seconds=1)
    await daemon.run(asyncio.Event(), until=NOW + timedelta(minutes=30))
    ledger: Ledger = app.ledger  # type: ignore[attr-defined]
    since = NOW - timedelta(minutes=1)
    got = day_figures(ledger, ("BTC", "ETH"), since)
    want = figures_from_rows(ledger, "BTC", since)
    assert got["cycles_today"] == 30
    assert got["by_status_today"] == want["by_status_today"]
    assert got["by_status_today"].get("traded", 0) >= 1  # fills and fees are exercised
    assert got["fees_today"] == pytest.approx(want["fees_today"], rel=1e-12)
    assert got["pnl_today"]["BTC"] == pytest.approx(want["pnl_today"]["BTC"], rel=1e-12)  # type: ignore[index]
    assert "ETH" not in got["pnl_today"]  # no snapshot of it: no P&L, not an error


async def test_a_day_that_starts_after_every_row_has_empty_figures(tmp_path: Path) -> None:
    clock = FakeClock(NOW)
    app = stack(tmp_path, clock=clock, hedge={"target_delta": 0.3})
    daemon = Daemon(app.ctx, ("BTC",), 60.0, heartbeat_seconds=600, stop_grace_seconds=1)
    await daemon.run(asyncio.Event(), until=NOW + timedelta(minutes=3))
    got = day_figures(app.ledger, ("BTC",), NOW + timedelta(days=1))  # type: ignore[attr-defined]
    assert got["cycles_today"] == 0
    assert got["fees_today"] == {}
    assert got["pnl_today"] == {}
