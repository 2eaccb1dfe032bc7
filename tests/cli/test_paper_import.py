"""``hedgebot paper import-book``: a real account's options copied once, with a read-only key,
into a fresh paper account; the independent replay server stands in for Deribit."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.backtest.datafiles import DERIBIT
from bot.cli.paper import ImportRefused, import_book
from bot.clock import FakeClock
from bot.config import Settings, load_settings
from bot.store.db import upgrade
from tests.support.replay_server import KEY, SECRET, ReplayServer, recorded_answers, serving

CLOCK = FakeClock(datetime(2022, 6, 4, 11, 22, tzinfo=UTC))  # beside the recorded answers
READ_ONLY = "connection mainaccount account:read trade:read wallet:read"


def _settings(tmp_path: Path, url: str) -> Settings:
    settings = load_settings(
        None,
        venue={
            "kind": "deribit",
            "network": "custom",
            "url": url,
            "api_key": KEY,
            "api_secret": SECRET,
        },
        database={
            "url": f"sqlite:///{tmp_path / 'live.db'}",
            "paper_url": f"sqlite:///{tmp_path / 'paper.db'}",
        },
    )
    upgrade(settings.database.paper_url)
    return settings


def _server(scope: str) -> ReplayServer:
    answers: dict[str, Any] = recorded_answers(DERIBIT)
    answers["public/auth"] = {**answers["public/auth"], "scope": scope}
    return ReplayServer(answers, time_ms=lambda: round(CLOCK.now().timestamp() * 1000))


async def test_import_book_copies_the_real_options_once_into_the_paper_account(
    tmp_path: Path,
) -> None:
    server = _server(READ_ONLY)
    async with serving(server) as url:
        settings = _settings(tmp_path, url)
        lines = await import_book(settings, CLOCK)
        with pytest.raises(ImportRefused, match="already exists"):
            await import_book(settings, CLOCK)
    assert lines[0] == f"BTC: 2 option positions copied into {settings.database.paper_url}"
    copied = "\n".join(lines[1:])
    assert "BTC-24JUN22-30000-C" in copied
    assert "-5.0000" in copied
    assert "BTC-PERPETUAL" not in copied  # the hedge starts flat
    private = [m for m in server.methods_called() if m.startswith("private/")]
    assert set(private) == {"private/get_positions"}  # read, never traded


async def test_import_book_refuses_a_key_that_may_trade(tmp_path: Path) -> None:
    server = _server("connection mainaccount trade:read_write wallet:read")
    async with serving(server) as url:
        with pytest.raises(ImportRefused, match="read-only key"):
            await import_book(_settings(tmp_path, url), CLOCK)
    assert "private/get_positions" not in server.methods_called()


def test_import_book_from_the_command_line_refuses_a_simulated_venue_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli.main import main

    config = tmp_path / "config.yaml"
    config.write_text(f"database:\n  paper_url: sqlite:///{tmp_path / 'p.db'}\n")
    assert main(["--config", str(config), "paper", "import-book"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        "hedgebot paper import-book: venue.kind must be deribit: the book is copied from a "
        "real account"
    )
