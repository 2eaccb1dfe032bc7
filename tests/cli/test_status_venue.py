"""``status`` shows the venue's clock offset and settling positions, and exits 1 when a read
of the venue failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app import build_app
from bot.cli.status import render_status, status_data
from bot.config import load_settings
from bot.sim.faults import WireFaultPlan
from bot.store.db import upgrade
from tests.support.sim_server_kit import KEY, SECRET, running


async def test_status_shows_the_measured_offset_to_the_venue_clock(tmp_path: Path) -> None:
    async with running(fault_plan=WireFaultPlan(clock_offset_s=2.0)) as sim:
        settings = load_settings(
            None,
            venue={"kind": "sim", "sim_url": sim.url, "api_key": KEY, "api_secret": SECRET},
            database={"url": f"sqlite:///{tmp_path / 'l.db'}"},
        )
        upgrade(settings.database.url)
        app = build_app(settings, paper=False, clock=sim.clock, mode="status")
        try:
            data = await status_data(app)
        finally:
            await app.close()
    assert data["venue_clock"]["offset_seconds"] == pytest.approx(2.0, abs=0.01)
    assert "error" not in data["books"]["BTC"]
    text = render_status(data)
    assert "venue clock: this host is 2.000s behind the venue's" in text


def test_status_marks_an_expired_position_as_settling() -> None:
    data = {
        "venue": "deribit",
        "database": "sqlite://",
        "trading_state": {"state": "active", "reason": ""},
        "venue_clock": None,
        "books": {
            "BTC": {
                "as_of": "2022-06-04T10:31:00+00:00",
                "index_price": 29716.47,
                "hedge": {"instrument": "BTC-PERPETUAL", "position": 0.0, "bid": 1.0, "ask": 2.0},
                "equity": 10.0,
                "positions": [
                    {"instrument": "BTC-3JUN22-28000-C", "size": -2.0, "state": "settling"}
                ],
                "expired_skipped": ["BTC-3JUN22-28000-C"],
                "greeks": dict.fromkeys(
                    (
                        "delta_coin",
                        "delta_usd_target",
                        "delta_usd",
                        "gamma",
                        "dollar_gamma",
                        "vega",
                        "theta",
                    ),
                    0.0,
                ),
                "target_mode": "coin",
            }
        },
        "last_rebalances": [],
    }
    assert "BTC-3JUN22-28000-C" in render_status(data)
    assert "expired: settling, not in the greeks" in render_status(data)


def test_status_exits_1_when_the_venue_cannot_be_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli.main import main

    config = tmp_path / "config.yaml"
    config.write_text(
        "venue:\n  kind: sim\n  sim_url: http://127.0.0.1:9\n  timeout_seconds: 1\n"
        f"database:\n  url: sqlite:///{tmp_path / 'l.db'}\n"
    )
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    assert main(["--config", str(config), "status"]) == 1
    out = capsys.readouterr().out
    assert "BTC: cannot read the book: ReadFailed: read " in out  # names the method
