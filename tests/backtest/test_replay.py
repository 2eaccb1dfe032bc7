"""Replaying real Deribit options through their recorded marks, hedged by the policies."""

from __future__ import annotations

import json
import math

import pytest

from bot.backtest.datafiles import shared_data
from bot.backtest.engine import CostModel, PolicyRun
from bot.backtest.frontier import sweep_runs
from bot.backtest.replay import CHAIN_FILE, ReplayConfig, ReplayReport, run_replay
from bot.domain import DataError
from strategies.time_band import TimeBandParams

pytestmark = pytest.mark.skipif(not CHAIN_FILE.exists(), reason="shared Deribit data not mounted")

FUNDING = str(shared_data() / "prices" / "btc_usdt_perp_funding_8h_binance_2019_2026.csv")
RUNS = sweep_runs(intervals=(21_600.0, 86_400.0), bands=(0.05,), risk_aversions=(1e-3,))


@pytest.fixture(scope="module")
def february_drop() -> ReplayReport:
    """Short the 7-day ATM straddle on 30 Jan 2026 and hold it through the early-February drop."""
    return run_replay(ReplayConfig(start="2026-01-30T00:00:00", policies=RUNS))


def test_the_at_the_money_straddle_of_the_nearest_weekly_expiry_is_chosen(
    february_drop: ReplayReport,
) -> None:
    assert february_drop.instruments == ("BTC-6FEB26-83000-C", "BTC-6FEB26-83000-P")
    assert february_drop.expiry.startswith("2026-02-06T08:00:00")
    assert february_drop.start.startswith("2026-01-30")
    assert february_drop.snapshots > 20


def test_short_straddle_through_the_february_2026_drop_is_mostly_hedged(
    february_drop: ReplayReport,
) -> None:
    assert february_drop.premium_usd < 0  # short: the book is a liability
    assert february_drop.unhedged_pnl < -10_000  # BTC fell from 83k to the mid 60s
    for r in february_drop.results:
        assert abs(r.hedge_error_mean) < 0.25 * abs(february_drop.unhedged_pnl)
        assert r.cost > 0
        assert r.trades > 2
        assert r.mean_pnl == pytest.approx(r.hedge_error_mean - r.cost)


def test_the_book_settles_at_its_payoff_on_the_first_index_after_expiry(
    february_drop: ReplayReport,
) -> None:
    spot = february_drop.settlement_price
    assert spot is not None
    assert february_drop.end > february_drop.expiry
    payoff = max(spot - 83_000.0, 0.0) + max(83_000.0 - spot, 0.0)
    assert february_drop.unhedged_pnl == pytest.approx(-payoff - february_drop.premium_usd)
    assert any("settled on the index" in note for note in february_drop.notes)


def test_before_mid_april_the_hedge_trades_at_recorded_perpetual_marks(
    february_drop: ReplayReport,
) -> None:
    assert february_drop.perp_marks_used == february_drop.snapshots
    assert february_drop.index_prices_used == 0


def test_after_the_perpetual_file_ends_the_index_price_stands_in() -> None:
    report = run_replay(
        ReplayConfig(start="2026-05-01T00:00:00", policies=RUNS[:1], end="2026-05-04T00:00:00")
    )
    assert report.perp_marks_used == 0
    assert report.index_prices_used == report.snapshots
    assert report.settlement_price is None  # stopped before expiry, valued at the last marks
    assert report.end < "2026-05-04"


def test_a_named_expiry_is_held_and_its_short_hedge_earns_the_recorded_funding() -> None:
    report = run_replay(
        ReplayConfig(
            start="2026-01-02T00:00:00",
            expiry="27MAR26",
            book="call",
            size=2.0,
            end="2026-01-09T00:00:00",
            policies=(PolicyRun("time_band", TimeBandParams(43_200.0)),),
            costs=CostModel(fee_rate=0.0, funding_file=FUNDING),
        )
    )
    (name,) = report.instruments
    assert name.startswith("BTC-27MAR26-")
    assert name.endswith("-C")
    assert report.premium_usd > 0  # long two calls, hedged short in the perpetual
    (r,) = report.results
    assert r.fees == 0.0
    # Binance funding was positive in early January 2026: the short hedge was paid.
    assert r.funding < 0
    assert r.cost == r.funding


def test_replays_are_deterministic_and_serialise_to_json(february_drop: ReplayReport) -> None:
    again = run_replay(ReplayConfig(start="2026-01-30T00:00:00", policies=RUNS))
    assert again.to_dict() == february_drop.to_dict()
    d = json.loads(json.dumps(february_drop.to_dict()))
    assert len(d["results"]) == len(RUNS)
    assert all(math.isfinite(r["mean_pnl"]) for r in d["results"])


def test_unknown_expiry_or_a_start_outside_the_data_is_a_data_error() -> None:
    with pytest.raises(DataError, match="not listed"):
        run_replay(ReplayConfig(start="2026-01-30T00:00:00", expiry="1JAN20", policies=RUNS))
    for outside in ("2027-01-01T00:00:00", "2019-06-01", "2025-12-29T23:00:00"):
        with pytest.raises(DataError, match="outside the recorded chain, 2025-12-30"):
            run_replay(ReplayConfig(start=outside, policies=RUNS))
