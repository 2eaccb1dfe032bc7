"""The independent-server round trip: the real ccxt adapter against a minimal Deribit-compatible
server written without ``bot/sim`` (``tests/support/replay_server.py``), serving recorded
mainnet payloads and Deribit's documented shapes as they are. hedgebot reads the balances,
positions, orders and fills and plans the hedge, as ``rebalance --dry-run`` does."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bot.app import build_app
from bot.backtest.datafiles import DERIBIT
from bot.clock import FakeClock
from bot.config import load_settings
from bot.cycle import rebalance_once
from bot.store.db import upgrade
from bot.venues.deribit.adapter import DeribitVenue
from tests.support.replay_server import KEY, SECRET, ReplayServer, recorded_answers, serving

NOW = datetime(2022, 6, 4, 11, 22, tzinfo=UTC)  # just after the recorded book summaries


async def test_the_adapter_reads_a_recorded_account_and_plans_its_hedge(tmp_path: Path) -> None:
    clock = FakeClock(NOW)
    server = ReplayServer(
        recorded_answers(DERIBIT), time_ms=lambda: round(clock.now().timestamp() * 1000)
    )
    async with serving(server) as url:
        settings = load_settings(
            None,
            venue={
                "kind": "deribit",
                "network": "custom",
                "url": url,
                "api_key": KEY,
                "api_secret": SECRET,
            },
            # the recorded answers were taken within 51 minutes of each other
            risk={"max_data_age_seconds": 3600},
            database={"url": f"sqlite:///{tmp_path / 'ledger.db'}"},
        )
        upgrade(settings.database.url)
        app = build_app(settings, paper=False, clock=clock, mode="oneshot")
        try:
            assert isinstance(app.venue, DeribitVenue)
            account = await app.venue.account("BTC")
            positions = {p.instrument.name: p.size for p in await app.venue.positions("BTC")}
            orders = await app.venue.open_orders("BTC")
            fills = await app.venue.fills("BTC")
            result = await rebalance_once(app.ctx, "BTC", dry_run=True)
        finally:
            await app.close()
    assert (account.equity, account.available) == (10.02, 9.5)
    assert positions == {
        "BTC-PERPETUAL": 50.0,
        "BTC-24JUN22-30000-C": -5.0,
        "BTC-30DEC22-90000-P": -1.0,
    }
    assert [o.label for o in orders] == ["manual-1"]  # not ours: left alone
    assert fills == []
    assert result.status == "dry_run", result.reason
    plan = result.plan
    assert plan is not None
    assert plan.instrument == "BTC-PERPETUAL"
    # short calls (net -2.1) and a short deep put (+2.9): +0.68 BTC to sell, ~20,700 USD at
    # the recorded bid, in contracts of 10 USD
    assert 0.5 < plan.delta_before < 0.9
    assert plan.trade_amount < 0
    assert plan.trade_amount % 10 == 0
    assert abs(plan.expected_delta_after) < 0.001
    assert plan.price == 30434.5  # the recorded perpetual book's best bid
    assert result.greeks is not None
    assert result.greeks.iv is not None  # solved from the recorded marks (no mark_iv sent)
