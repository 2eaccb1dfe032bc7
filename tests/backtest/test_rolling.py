"""The rolling replay: a short ATM straddle sold every Friday, each hedged by every policy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.backtest.chain import Chain
from bot.backtest.frontier import sweep_runs
from bot.backtest.replay import CHAIN_FILE, ReplayConfig, run_replay
from bot.backtest.rolling import RollingConfig, RollingReport, roll_starts, run_rolling
from bot.cli.main import main
from bot.domain import DataError

pytestmark = pytest.mark.skipif(not CHAIN_FILE.exists(), reason="shared Deribit data not mounted")

RUNS = sweep_runs(intervals=(21_600.0,), bands=(0.05, 0.2), risk_aversions=())
JANUARY = RollingConfig(policies=RUNS, start="2026-01-01", end="2026-01-20")


@pytest.fixture(scope="module")
def january() -> RollingReport:
    return run_rolling(JANUARY)


def test_one_straddle_is_sold_each_friday_after_the_weekly_expiry(january: RollingReport) -> None:
    starts = [r.start[:10] for r in january.straddles]
    assert starts == ["2026-01-02", "2026-01-09", "2026-01-16"]
    assert [r.instruments[0].split("-")[1] for r in january.straddles] == [
        "9JAN26",
        "16JAN26",
        "23JAN26",
    ]
    assert all(r.premium_usd < 0 for r in january.straddles)  # short: premium received
    assert january.skipped == ()


def test_each_straddle_is_the_same_replay_as_deribit_replay_from_its_start(
    january: RollingReport,
) -> None:
    second = january.straddles[1]
    alone = run_replay(ReplayConfig(start=second.config.start, policies=RUNS))
    assert alone.to_dict() == second.to_dict()


def test_results_are_per_policy_across_straddles_hedged_against_unhedged(
    january: RollingReport,
) -> None:
    assert [r.label for r in january.results] == [r.label for r in RUNS]
    unhedged = np.array([r.unhedged_pnl for r in january.straddles])
    for j, result in enumerate(january.results):
        hedged = np.array([s.results[j].outcome.hedged_pnl[0] for s in january.straddles])
        assert result.std_pnl == pytest.approx(float(hedged.std()))
        assert result.unhedged_std == pytest.approx(float(unhedged.std()))
        assert result.cost == pytest.approx(np.mean([s.results[j].cost for s in january.straddles]))
    assert january.results[0].trades > january.results[-1].trades  # 6-hourly beats a wide band


def test_sale_times_stay_inside_the_chain_and_leave_a_week_of_data() -> None:
    chain = Chain(str(CHAIN_FILE))
    first, last = chain.span()
    starts = roll_starts(RollingConfig(policies=RUNS), chain)
    assert starts[0] >= first
    assert starts[-1] <= last - 7 * 86_400
    assert np.allclose(np.diff(starts), 7 * 86_400)
    assert len(starts) == 33


def test_a_window_without_a_whole_week_of_data_is_a_data_error() -> None:
    with pytest.raises(DataError, match="no week to replay"):
        run_rolling(RollingConfig(policies=RUNS, start="2026-08-20"))


def test_the_command_line_prints_the_table_and_draws_the_frontier(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = tmp_path / "rolling.png"
    argv = ["backtest", "--deribit-rolling", "--start", "2026-01-01", "--end", "2026-01-10"]
    policy = ["--policy", "delta_band:band=0.05", "--plot", str(png)]
    assert main([*argv, *policy]) == 0
    out = capsys.readouterr().out
    assert "rolling replay: 2 weekly short ATM BTC straddles" in out
    assert "unhedged std" in out
    assert png.stat().st_size > 1000
