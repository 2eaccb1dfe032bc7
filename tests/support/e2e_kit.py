"""Processes for end-to-end tests: ``hedgebot sim`` on 127.0.0.1 and hedgebot commands against it
through ccxt, on lockstep time (the venue owns the clock; the daemon advances it when it sleeps),
so what happens does not depend on how busy the machine is. Every wait is bounded; every process
is killed on the way out."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KEY, SECRET = "e2e-key", "e2e-secret-value-0123456789"
START = "2026-01-05T00:00:00+00:00"  # every end-to-end day starts here


@dataclass
class SimProcess:
    proc: subprocess.Popen[str]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def base_env(home: Path, pace: float | None = None) -> dict[str, str]:
    """Settings both processes share: lockstep time from ``START``; ``pace`` (simulated
    seconds per wall second) only slows the daemon's sleeps, for a test that must catch it
    mid-way."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEDGEBOT")}
    if pace is not None:
        env["HEDGEBOT__MARKET__PACE"] = str(pace)
    env.update(
        {
            "HEDGEBOT_SIM_API_KEY": KEY,
            "HEDGEBOT_E2E_HOME": str(home),
            "HEDGEBOT_SIM_API_SECRET": SECRET,
            "HEDGEBOT__MARKET__CLOCK": "lockstep",
            "HEDGEBOT__MARKET__START": START,
            "HEDGEBOT__LOGGING__FORMAT": "json",
        }
    )
    return env


def client_env(env: dict[str, str], sim: SimProcess, **extra: str) -> dict[str, str]:
    out = dict(env)
    out.update(
        {
            "HEDGEBOT__VENUE__KIND": "sim",
            "HEDGEBOT__VENUE__SIM_URL": sim.url,
            "HEDGEBOT__VENUE__API_KEY": KEY,
            "HEDGEBOT__VENUE__API_SECRET": SECRET,
            "HEDGEBOT__DATABASE__URL": f"sqlite:///{env['HEDGEBOT_E2E_HOME']}/live.db",
        }
    )
    out.update(extra)
    return out


def cli(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "bot.cli.main", "--config", os.devnull, *args]


@contextmanager
def sim_venue(home: Path, env: dict[str, str], *extra: str) -> Iterator[SimProcess]:
    """``hedgebot sim`` on a free port; yields once it answers, kills it on exit."""
    proc = subprocess.Popen(
        cli(home, "sim", "--port", "0", "--db", "", *extra),
        env=env,
        cwd=home,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        port = 0
        while time.monotonic() < deadline and not port:
            line = proc.stdout.readline()
            if not line:
                break
            if "Deribit API on http://127.0.0.1:" in line:
                port = int(line.split("http://127.0.0.1:")[1].split()[0])
        assert port, f"hedgebot sim did not start: {proc.stderr.read() if proc.stderr else ''}"
        yield SimProcess(proc, port)
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[str], timeout: float = 15) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(home: Path, env: dict[str, str], *args: str, timeout: float = 120) -> Any:
    return subprocess.run(
        cli(home, *args), env=env, cwd=home, capture_output=True, text=True, timeout=timeout
    )


def events(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
