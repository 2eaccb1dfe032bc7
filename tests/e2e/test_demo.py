"""The README's first command: the demo hedges BTC and ETH in its own world, on lockstep time
gives the same ledger row by row however busy the machine is, and every next step it prints
works when typed exactly as printed.

The demo runs three simulated hours here (``--hours 3``) instead of a day: same code, less time.
"""

from __future__ import annotations

import os
import re
import shlex
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bot.cli.main import main as hedgebot
from tests.support.e2e_kit import stop

pytestmark = pytest.mark.e2e

HOURS = "3"


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("HEDGEBOT")}


def demo(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli.demo", "--hours", HOURS, *args],
        cwd=home,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def summary_of(out: str) -> str:
    """The ledger summary block, from its title to the blank line before the wall time."""
    return out.split("ledger summary", 1)[1].split("\nwall time", 1)[0]


def next_steps(out: str) -> list[str]:
    """The commands of the printed ``next`` list, exactly as printed."""
    block = out.split("next (from this directory):\n", 1)[1]
    return [re.split(r"\s{3,}", line.strip())[0] for line in block.splitlines() if line.strip()]


def typed(home: Path, command: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run a printed ``hedgebot`` command as typed, in this process (the demo's own commands
    run the same way), from ``home``; its exit code and output."""
    words = shlex.split(command)
    assert Path(words[0]).name == "hedgebot", command
    capsys.readouterr()
    code = hedgebot(words[1:])
    return code, capsys.readouterr().out


def ledger_rows(db: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, in insertion order: two runs are compared on all of it."""
    with sqlite3.connect(db) as conn:
        tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: list(conn.execute(f'SELECT * FROM "{t}" ORDER BY rowid')) for t in tables}


@contextmanager
def busy_cpu(seconds: float) -> Iterator[None]:
    """A process spinning on the CPU for at most ``seconds`` (killed on the way out)."""
    spin = f"import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass"
    proc = subprocess.Popen([sys.executable, "-c", spin])
    try:
        yield
    finally:
        proc.kill()
        proc.wait()


def assert_the_summary_shows_both_books(out: str) -> None:
    assert "ledger summary" in out
    for words in ("rebalances", "orders", "fills", "fees", "|delta| seen", "hedge P&L"):
        assert words in out
    assert "\n  BTC\n" in out
    assert "\n  ETH\n" in out
    assert "skipped because" not in out  # on lockstep time no cycle finds its data stale


def test_the_live_demo_gives_the_same_ledger_row_by_row_on_a_busy_machine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = demo(tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert_the_summary_shows_both_books(first.stdout)
    rows = ledger_rows(tmp_path / "demo" / "live.db")
    venue_rows = ledger_rows(tmp_path / "demo" / "sim.db")
    with busy_cpu(240):
        second = demo(tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert summary_of(second.stdout) == summary_of(first.stdout)
    again = ledger_rows(tmp_path / "demo" / "live.db")
    for table in ("rebalances", "orders", "order_events", "fills", "greeks_snapshots"):
        assert again[table], table
        assert again[table] == rows[table], table
    assert again == rows  # every table, every column: nothing is wall-clock
    assert ledger_rows(tmp_path / "demo" / "sim.db") == venue_rows
    assert not list(tmp_path.glob("*.db"))  # neither hedgebot.db nor hedgebot-paper.db

    steps = next_steps(second.stdout)
    venue_cmd = next(s for s in steps if " sim " in s)
    assert venue_cmd.endswith(" &")
    assert steps[-2:] == ["kill %1", "make demo-paper"]
    venue = subprocess.Popen(
        shlex.split(venue_cmd.removesuffix(" &")),  # exactly as printed
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    monkeypatch.chdir(tmp_path)
    outputs = {}
    try:
        assert venue.stdout is not None
        lines = [venue.stdout.readline() for _ in range(2)]
        assert "Deribit API on" in lines[0]
        assert f"clock: lockstep, now 2026-01-05T{int(HOURS):02d}:00" in lines[1]
        for command in steps:
            if command.endswith(" &") or command in ("kill %1", "make demo-paper"):
                continue
            code, out = typed(tmp_path, command, capsys)
            assert code == 0, f"{command}: {out[-2000:]}"
            outputs[command.split()[3]] = out
    finally:
        stop(venue)
    assert "cannot read the book" not in outputs["status"]
    assert f"BTC book at 2026-01-05T{int(HOURS):02d}:00:00" in outputs["status"]
    assert re.search(r"^BTC: (traded|no_trade)", outputs["rebalance"], re.M)
    assert re.search(r"^ETH: (traded|no_trade)", outputs["rebalance"], re.M)
    assert "demo-paper:" in (Path(__file__).parents[2] / "Makefile").read_text()


def test_the_paper_demo_stays_in_its_world_and_its_next_steps_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    done = demo(tmp_path, "--paper")
    assert done.returncode == 0, done.stderr[-3000:]
    assert_the_summary_shows_both_books(done.stdout)
    assert (tmp_path / "demo" / "paper.db").exists()
    assert not list(tmp_path.glob("*.db"))
    monkeypatch.chdir(tmp_path)
    for command in next_steps(done.stdout):
        code, out = typed(tmp_path, command, capsys)
        assert code == 0, f"{command}: {out[-2000:]}"
        if " status" in command:
            assert "cannot read the book" not in out
            assert f"ETH book at 2026-01-05T{int(HOURS):02d}:00:00" in out
