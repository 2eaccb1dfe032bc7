"""hedgebot backtest from the command line: sweeps, chosen policies, history and Deribit replays."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bot.backtest.datafiles import shared_data
from bot.cli.main import main

DATA = shared_data()


def test_a_chosen_policy_backtest_prints_json_with_costs_and_tail_risk(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        [
            "--config",
            os.devnull,
            "backtest",
            "--paths",
            "200",
            "--days",
            "2",
            "--policy",
            "delta_band:band=0.05",
            "--policy",
            "time_band:interval_seconds=3600",
            "--json",
        ]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    results = data["results"]
    assert [r["policy"] for r in results] == ["delta_band", "time_band"]
    for r in results:
        assert r["cost"] > 0
        assert r["es99"] >= r["es95"]


def test_the_default_sweep_draws_the_frontier(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = tmp_path / "frontier.png"
    assert (
        main(
            [
                "--config",
                os.devnull,
                "backtest",
                "--paths",
                "100",
                "--days",
                "1",
                "--plot",
                str(png),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "gamma_scaled" in out
    assert "time_band" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_policy_parameters_not_given_come_from_the_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("policy:\n  gamma_scaled:\n    min_band: 0.033\n")
    assert (
        main(
            [
                "--config",
                str(cfg),
                "backtest",
                "--paths",
                "50",
                "--days",
                "1",
                "--policy",
                "gamma_scaled:risk_aversion=0.01",
                "--json",
            ]
        )
        == 0
    )
    (result,) = json.loads(capsys.readouterr().out)["results"]
    assert "min_band=0.033" in result["label"]


def test_a_bad_policy_spec_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", os.devnull, "backtest", "--policy", "martingale"]) == 2
    assert "martingale" in capsys.readouterr().out


def test_a_real_history_replays_with_real_funding(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "--config",
            os.devnull,
            "backtest",
            "--model",
            "replay",
            "--history",
            str(DATA / "prices" / "btc_usd_1h_cryptocompare_2022_2026.csv"),
            "--start",
            "2022-11-07T00:00:00",
            "--step-seconds",
            "3600",
            "--funding",
            str(DATA / "prices" / "btc_usdt_perp_funding_8h_binance_2019_2026.csv"),
            "--policy",
            "time_band:interval_seconds=3600",
            "--json",
        ]
    )
    assert code == 0
    (result,) = json.loads(capsys.readouterr().out)["results"]
    assert result["funding"] != 0
    assert result["trades"] > 0


def test_a_real_deribit_straddle_replays_hedged_against_unhedged(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        [
            "--config",
            os.devnull,
            "backtest",
            "--deribit-replay",
            "2026-01-30T00:00:00",
            "--policy",
            "time_band:interval_seconds=21600",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "BTC-6FEB26-83000-C" in out
    assert "unhedged P&L $-12,863" in out
