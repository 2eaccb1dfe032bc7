"""The hedgebot command as a user meets it: exit codes, the plan, status, the lock, the schema."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bot.cli.main import main
from bot.clock import SystemClock
from bot.config import load_settings
from bot.lock import BookLease, account_identity, book_key
from bot.store.db import head_revision, open_ledger
from bot.store.lease import LeaseStore


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in list(os.environ):
        if key.startswith("HEDGEBOT__"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HEDGEBOT__LOGGING__FORMAT", "json")
    return tmp_path


def test_a_missing_paper_ledger_refuses_to_start_names_the_paper_upgrade_and_creates_nothing(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rebalance", "--paper", "--dry-run"]) == 3
    assert "run `hedgebot db upgrade --paper`" in capsys.readouterr().err
    assert list(home.glob("*.db*")) == []


def test_db_upgrade_then_current_reports_the_head_revision(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "upgrade", "--paper"]) == 0
    assert main(["db", "current", "--paper"]) == 0
    out = capsys.readouterr().out
    head = head_revision()
    assert f"empty -> {head}" in out
    assert f"at {head}, code needs {head}" in out


def test_rebalance_dry_run_prints_the_plan_and_sends_nothing(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEDGEBOT__HEDGE__TARGET_DELTA", "1.5")
    main(["db", "upgrade", "--paper"])
    assert main(["rebalance", "--paper", "--dry-run"]) == 0
    out = capsys.readouterr().out
    for words in ("book delta", "target", "BUY", "BTC-PERPETUAL", "delta after", "est. cost"):
        assert words in out
    assert "BTC: dry_run" in out
    assert main(["status", "--paper", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["books"]["BTC"]["hedge"]["position"] == 0
    assert status["last_rebalances"][0]["status"] == "dry_run"


def test_rebalance_yes_sends_the_hedge_and_status_shows_it(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEDGEBOT__HEDGE__TARGET_DELTA", "1.5")
    main(["db", "upgrade", "--paper"])
    assert main(["rebalance", "--paper", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "BTC: traded" in out
    assert "filled" in out
    assert main(["status", "--paper", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["books"]["BTC"]["hedge"]["position"] > 0
    assert abs(status["books"]["BTC"]["greeks"]["delta_coin"] - 1.5) < 0.1


def test_rebalance_with_no_one_to_answer_the_prompt_sends_nothing_and_exits_6(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEDGEBOT__HEDGE__TARGET_DELTA", "1.5")
    main(["db", "upgrade", "--paper"])
    assert main(["rebalance", "--paper"]) == 6  # the test's stdin cannot be read: no answer
    assert "declined at the prompt: nothing sent" in capsys.readouterr().out
    main(["status", "--paper", "--json"])
    assert json.loads(capsys.readouterr().out)["books"]["BTC"]["hedge"]["position"] == 0


def daemon_lease(url: str) -> BookLease:
    """The lease a daemon on another host would hold on the paper BTC book of ``url``."""
    ledger = open_ledger(url)
    book = book_key(account_identity(load_settings(None), paper=True), "BTC")
    return BookLease(
        LeaseStore(ledger.engine), (book,), SystemClock(), 60, "daemon", host="other-host", pid=4242
    )


def test_rebalance_while_a_daemon_holds_the_book_says_so_and_sends_nothing(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["db", "upgrade", "--paper"])
    capsys.readouterr()
    # the daemon spelled the same file differently, from another directory and host
    with daemon_lease(f"sqlite:///{home}/./hedgebot-paper.db"):
        assert main(["rebalance", "--paper", "--yes"]) == 4
        err = capsys.readouterr().err
        assert main(["status", "--paper", "--json"]) == 0
        status = json.loads(capsys.readouterr().out)
    assert "holds book paper BTC" in err
    assert "pid 4242 on other-host" in err
    assert "sending nothing" in err
    (lease,) = status["leases"]
    assert (lease["book"], lease["host"], lease["pid"], lease["live"]) == (
        "paper BTC",
        "other-host",
        4242,
        True,
    )
    assert status["books"]["BTC"]["hedge"]["position"] == 0


def test_status_prints_a_readable_book(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["db", "upgrade", "--paper"])
    assert main(["status", "--paper"]) == 0
    out = capsys.readouterr().out
    assert "delta (coin, delta_total)" in out
    assert "BTC-PERPETUAL" in out


def test_report_after_a_hedge_shows_fees_slippage_and_writes_csv_and_plots(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEDGEBOT__HEDGE__TARGET_DELTA", "1.5")
    main(["db", "upgrade", "--paper"])
    main(["rebalance", "--paper", "--yes"])
    capsys.readouterr()
    code = main(["report", "--paper", "--csv", str(home / "csv"), "--plots", str(home / "png")])
    assert code == 0
    out = capsys.readouterr().out
    assert "fees" in out
    assert "slippage vs decision mid" in out
    assert (home / "csv" / "fills.csv").read_text().count("\n") >= 2
    assert any(p.suffix == ".png" for p in (home / "png").iterdir())


def test_report_of_an_empty_ledger_says_so(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["db", "upgrade", "--paper"])
    assert main(["report", "--paper"]) == 0
    assert "no rebalances recorded" in capsys.readouterr().out


def test_risk_shows_the_grid_and_draws_the_gamma_profile(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["db", "upgrade", "--paper"])
    capsys.readouterr()
    assert main(["risk", "--paper", "--range", "0.1", "--plot", str(home / "g.png"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "BTC" in data
    assert (home / "g.png").read_bytes()[:4] == b"\x89PNG"
