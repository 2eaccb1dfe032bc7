"""The README's first command: the demo runs a day and summarises it (here ten times faster)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def demo(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEDGEBOT")}
    env["HEDGEBOT__MARKET__SPEED"] = "14400"  # a simulated day in 6 s of wall time
    env["HEDGEBOT__VENUE__SIM_URL"] = "http://127.0.0.1:0"  # any free port
    return subprocess.run(
        [sys.executable, "-m", "bot.cli.demo", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("mode", [(), ("--paper",)], ids=["live-through-ccxt", "paper"])
def test_the_demo_hedges_btc_and_eth_for_a_day_and_prints_the_ledger_summary(
    tmp_path: Path, mode: tuple[str, ...]
) -> None:
    done = demo(tmp_path, *mode)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "ledger summary" in out
    for words in ("rebalances", "orders", "fills", "fees", "|delta| seen", "hedge P&L"):
        assert words in out
    assert "\n  BTC\n" in out
    assert "\n  ETH\n" in out
    ledger = tmp_path / ("hedgebot-paper.db" if mode else "hedgebot.db")
    assert ledger.exists()
