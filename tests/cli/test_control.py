"""``hedgebot halt | reduce | resume``: the persisted switch, obeyed at the next cycle of a
process already running, recorded with who, when and why, shown by status."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bot.app import build_app
from bot.config import load_settings
from bot.cycle import rebalance_once
from tests.cli.cli_kit import fresh_home, run


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = fresh_home(tmp_path, monkeypatch)
    monkeypatch.setenv("HEDGEBOT__HEDGE__TARGET_DELTA", "1.5")  # a trade is due
    assert run(["db", "upgrade", "--paper"]) == 0
    return home


def _status(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    capsys.readouterr()
    run(["status", "--paper", "--json"])
    data: dict[str, object] = json.loads(capsys.readouterr().out)
    return data


def test_halt_is_recorded_with_who_and_why_and_status_shows_it(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["halt", "--paper", "--reason", "vol spike"]) == 0
    state = _status(capsys)["trading_state"]
    assert isinstance(state, dict)
    assert state["state"] == "halted"
    assert "vol spike" in state["reason"]
    assert "@" in state["reason"]  # user@host
    assert state["updated_at"] is not None
    assert state["by_currency"]["BTC"]["state"] == "halted"


def test_a_switch_that_would_change_nothing_is_refused_in_one_line(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["resume", "--paper"]) == 1
    assert "already active" in capsys.readouterr().err
    assert run(["halt", "--paper"]) == 0
    assert run(["halt", "--paper"]) == 1
    assert "already halted" in capsys.readouterr().err
    assert run(["resume", "--paper", "--currency", "BTC"]) == 1
    assert "all trading is halted" in capsys.readouterr().err


def test_a_halt_reaches_a_running_process_at_its_next_cycle_and_resume_lifts_it(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = build_app(load_settings(None), paper=True, mode="oneshot")

    async def cycle() -> str:
        return (await rebalance_once(app.ctx, "BTC", dry_run=True)).status

    try:
        assert asyncio.run(cycle()) == "dry_run"
        assert run(["halt", "--paper", "--currency", "BTC", "--reason", "test"]) == 0
        assert asyncio.run(cycle()) == "denied"
        assert run(["resume", "--paper"]) == 0
        assert asyncio.run(cycle()) == "dry_run"
    finally:
        asyncio.run(app.close())


def test_reduce_on_one_currency_leaves_all_trading_active(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["reduce", "--paper", "--currency", "BTC"]) == 0
    state = _status(capsys)["trading_state"]
    assert isinstance(state, dict)
    assert state["state"] == "active"
    assert state["by_currency"]["BTC"]["state"] == "reducing"
