"""The confirmation prompt of ``hedgebot rebalance``, through the real command in a process:
no, end of input (Ctrl-D) and Ctrl-C each answer at once, say "nothing sent" once, send nothing."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.store.db import open_ledger

PROMPT = b"Send this order? [y/N]"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("HEDGEBOT__")}
    env.update(
        {
            "HEDGEBOT__LOGGING__FORMAT": "json",
            "HEDGEBOT__LOGGING__LEVEL": "warning",
            "HEDGEBOT__HEDGE__TARGET_DELTA": "1.5",  # far from the book's delta: a trade is due
        }
    )
    subprocess.run(_cli("db", "upgrade", "--paper"), env=env, cwd=tmp_path, check=True)
    return env


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "bot.cli.main", "--config", os.devnull, *args]


def _read_until(fd: int, marker: bytes, seconds: float = 30.0) -> bytes:
    got = b""
    deadline = time.monotonic() + seconds
    while marker not in got and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            got += chunk
    return got


def _sent(cwd: Path) -> int:
    """Orders the paper ledger holds (every order is recorded before it is sent)."""
    ledger = open_ledger(f"sqlite:///{cwd}/hedgebot-paper.db")
    try:
        return len(ledger.orders())
    finally:
        ledger.close()


def test_answering_n_says_nothing_sent_once_shows_the_plan_once_and_exits_6(
    env: dict[str, str], tmp_path: Path
) -> None:
    done = subprocess.run(
        _cli("rebalance", "--paper"), env=env, cwd=tmp_path, input=b"n\n", capture_output=True
    )
    out = done.stdout.decode()
    assert done.returncode == 6, done.stderr
    assert out.count("nothing sent") == 1
    assert out.count("BTC plan") == 1
    assert _sent(tmp_path) == 0


def test_end_of_input_at_the_prompt_answers_no_at_once_and_exits_6(
    env: dict[str, str], tmp_path: Path
) -> None:
    done = subprocess.run(
        _cli("rebalance", "--paper"), env=env, cwd=tmp_path, input=b"", capture_output=True
    )
    assert done.returncode == 6, done.stderr
    assert done.stdout.decode().count("nothing sent") == 1
    assert b"Traceback" not in done.stderr
    assert _sent(tmp_path) == 0


def test_ctrl_c_at_the_prompt_answers_at_once_without_enter_and_exits_130(
    env: dict[str, str], tmp_path: Path
) -> None:
    proc = subprocess.Popen(
        _cli("rebalance", "--paper"),
        env=env,
        cwd=tmp_path,
        stdin=subprocess.PIPE,  # kept open: no Enter, no end of input
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        shown = _read_until(proc.stdout.fileno(), PROMPT)
        assert PROMPT in shown
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)  # stdin stays open: only the signal can end the wait
        out, err = proc.stdout.read(), proc.stderr.read() if proc.stderr else b""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert (shown + out).decode().count("nothing sent") == 1
    assert b"Traceback" not in err
    assert _sent(tmp_path) == 0
