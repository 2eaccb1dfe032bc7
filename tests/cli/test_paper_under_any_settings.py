"""A paper account is readable under any settings, and on lockstep time it resumes where it
stopped: the demo's BTC and ETH account read by a BTC-only configuration."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bot.cli.main import main


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in list(os.environ):
        if key.startswith("HEDGEBOT__"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HEDGEBOT__LOGGING__FORMAT", "json")
    monkeypatch.setenv("HEDGEBOT__MARKET__CLOCK", "lockstep")
    monkeypatch.setenv("HEDGEBOT__MARKET__START", "2026-01-05T00:00:00+00:00")
    return tmp_path


def test_a_btc_only_status_shows_the_accounts_eth_book_as_unhedged(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as both:
        both.setenv("HEDGEBOT__VENUE__CURRENCIES", '["BTC","ETH"]')
        assert main(["db", "upgrade", "--paper"]) == 0
        assert main(["rebalance", "--paper", "--yes"]) == 0
    capsys.readouterr()
    assert main(["status", "--paper"]) == 0
    out = capsys.readouterr().out
    assert "unknown instrument" not in out
    assert "cannot read the book" not in out
    assert "BTC book at 2026-01-05T00:00:00" in out
    assert "ETH book: unhedged (not in venue.currencies: add it there to hedge it)" in out
    assert "ETH-PERPETUAL" in out
    assert main(["rebalance", "--paper", "--yes"]) == 0  # and trading BTC alone still works
    assert "BTC: " in capsys.readouterr().out


def test_a_lockstep_paper_account_resumes_at_its_own_time(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEDGEBOT__POLICY__CHECK_SECONDS", "600")
    assert main(["db", "upgrade", "--paper"]) == 0
    assert main(["run", "--paper", "--duration", "3600"]) == 0
    assert main(["run", "--paper", "--duration", "1800"]) == 0
    capsys.readouterr()
    assert main(["status", "--paper", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["books"]["BTC"]["as_of"] == "2026-01-05T01:30:00+00:00"
    times = [r["ts"] for r in status["last_rebalances"]]
    assert times == sorted(times, reverse=True)
    assert times[0] == "2026-01-05T01:20:00+00:00"
    assert len(set(times)) == len(times)  # the second run went on, it did not start again
