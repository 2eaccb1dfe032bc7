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
    assert "martingale" in capsys.readouterr().err


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


HISTORY = str(DATA / "prices" / "btc_usd_1h_cryptocompare_2022_2026.csv")
LATE = "2030-01-01"

# Each mistake and a word its one-line answer must contain.
BAD_INPUT = {
    "replay without history": (["--model", "replay"], "needs --history"),
    "bootstrap without history": (["--model", "bootstrap"], "needs --history"),
    "missing history file": (["--model", "replay", "--history", "nope.csv"], "no such file"),
    "deribit replay tomorrow": (["--deribit-replay", "tomorrow"], "not an ISO UTC time"),
    "deribit replay in 2019": (["--deribit-replay", "2019-06-01"], "outside the recorded chain"),
    "deribit replay after the data": (["--deribit-replay", "2027-01-01"], "outside"),
    "deribit rolling window after the data": (
        ["--deribit-rolling", "--start", "2027-01-01"],
        "no week to replay",
    ),
    "deribit replay and rolling": (
        ["--deribit-replay", "2026-01-30", "--deribit-rolling"],
        "pick one",
    ),
    "unknown expiry": (["--deribit-replay", "2026-01-30", "--expiry", "1JAN20"], "not listed"),
    "expiry without replay": (["--expiry", "27FEB26"], "only applies"),
    "end without rolling": (["--end", "2026-03-01"], "only applies"),
    "zero paths": (["--paths", "0"], "--paths must be at least 1"),
    "negative paths": (["--paths", "-5"], "--paths must be at least 1"),
    "odd chunk": (["--chunk-paths", "1500"], "multiple of 1000"),
    "negative seed": (["--seed", "-1"], "--seed"),
    "zero days": (["--days", "0"], "--days must be positive"),
    "nan days": (["--days", "nan"], "finite"),
    "zero step": (["--step-seconds", "0"], "--step-seconds must be positive"),
    "days not whole steps": (["--days", "1", "--step-seconds", "7000"], "whole number"),
    "zero sigma": (["--sigma", "0"], "--sigma must be positive"),
    "sigma in percent": (["--sigma", "60"], "--sigma is annual and decimal"),
    "sub-second step": (["--step-seconds", "0.5", "--days", "1"], "at least 1 s"),
    "a million days": (["--days", "1000000"], "at most 1,000,000"),
    "negative s0": (["--s0", "-1"], "--s0 must be positive"),
    "infinite rate": (["--rate", "inf"], "--rate must be a finite"),
    "huge rate": (["--rate", "5"], "rate must be"),
    "negative fee": (["--fee", "-0.1"], "fee_rate"),
    "funding word": (["--funding", "lots"], "neither a rate"),
    "missing funding file": (["--funding", "nope.csv"], "no such file"),
    "funding file without start": (
        ["--funding", str(DATA / "prices" / "btc_usdt_perp_funding_8h_binance_2019_2026.csv")],
        "needs --start",
    ),
    "bad start": (["--model", "replay", "--history", HISTORY, "--start", "soon"], "ISO"),
    "history replay after its data": (
        ["--model", "replay", "--history", HISTORY, "--start", LATE, "--step-seconds", "3600"],
        "outside the history",
    ),
    "history step finer than the data": (
        ["--model", "bootstrap", "--history", HISTORY],
        "multiple of the data's 3600s",
    ),
    "a file that is not prices": (["--model", "replay", "--history", __file__], "neither"),
    "unknown policy": (["--policy", "martingale"], "martingale"),
    "policy parameter not key=value": (["--policy", "delta_band:0.05"], "key=value"),
    "unknown policy parameter": (["--policy", "delta_band:width=0.05"], "width"),
    "bad policy value": (["--policy", "delta_band:band=-1"], "band"),
    "bad leg type": (["--leg", "straddle:-1:7"], "TYPE call or put"),
    "leg size word": (["--leg", "call:lots:7"], "--leg call:lots:7"),
    "zero leg size": (["--leg", "call:0:7"], "size"),
    "negative strike": (["--leg", "call:-1:7:strike=-5"], "strike"),
    "leg fourth part": (["--leg", "call:-1:7:vol=3"], "moneyness or strike"),
    "plot into a missing directory": (["--plot", "/nonexistent/dir/f.png"], "does not exist"),
}


@pytest.mark.parametrize(("argv", "says"), BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_each_bad_backtest_input_gives_one_line_and_exit_2(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    small = [] if "--paths" in argv else ["--paths", "10"]
    code = main(["backtest", "--days", "1", *small, *argv])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("hedgebot backtest: ")
    assert says in lines[0]
    assert "Traceback" not in captured.err + captured.out


def test_a_textbook_case_runs_from_the_command_line_with_progress_lines_on_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        [
            "backtest",
            *("--s0", "49", "--sigma", "0.2", "--mu", "0.13", "--rate", "0.05"),
            *("--days", "140", "--step-seconds", "604800", "--paths", "3000"),
            *("--chunk-paths", "1000", "--leg", "call:-100000:140:strike=50", "--continuous"),
            *("--fee", "0", "--policy", "time_band:interval_seconds=604800", "--json"),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0
    (result,) = json.loads(captured.out)["results"]
    assert result["trades"] == pytest.approx(21.0, abs=1.0)  # 20 weekly hedges + the unwind
    assert 0.15 < result["hedge_error_std"] / 240_000 < 0.35  # Hull's 1-week figure: 0.26
    progress = captured.err.strip().splitlines()
    assert progress[-1] == "hedgebot backtest: backtest: 3,000 of 3,000 paths"
    assert len(progress) == 3
