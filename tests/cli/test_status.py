"""``hedgebot status`` says which network it is on and fails when it cannot read the book."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli.status import network
from bot.config import load_settings
from tests.cli.cli_kit import fresh_home, run


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return fresh_home(tmp_path, monkeypatch)


def test_status_heads_its_tables_with_the_network(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(["db", "upgrade", "--paper"])
    capsys.readouterr()
    assert run(["status", "--paper"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "network PAPER" in first
    assert run(["status", "--paper", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["network"] == "paper"


def test_status_exits_1_when_the_simulated_venue_does_not_answer(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HEDGEBOT__VENUE__SIM_URL", "http://127.0.0.1:9")  # discard: refused
    run(["db", "upgrade"])
    capsys.readouterr()
    assert run(["status"]) == 1
    out = capsys.readouterr().out
    assert "network SIM" in out
    assert "BTC: cannot read the book" in out


@pytest.mark.parametrize(
    ("env", "name", "words"),
    [
        ({}, "sim", "SIM"),
        ({"HEDGEBOT__VENUE__KIND": "deribit"}, "testnet", "TESTNET"),
        (
            {"HEDGEBOT__VENUE__KIND": "deribit", "HEDGEBOT__VENUE__NETWORK": "mainnet"},
            "mainnet",
            "MAINNET: REAL MONEY",
        ),
    ],
)
def test_each_network_has_its_own_unmistakable_label(
    home: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], name: str, words: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    shown = network(load_settings(None), paper=False)
    assert shown["network"] == name
    assert words in shown["label"]
