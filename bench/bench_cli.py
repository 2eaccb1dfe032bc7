"""Start-up of the ``hedgebot`` command: ``--help`` and ``--version`` in a fresh process.

A user types ``hedgebot --help`` first; before the commands imported their heavy modules only
when run, it took 4-6 s. The target is 0.5 s, median of several runs on this machine.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import Row

TARGET_SECONDS = 0.5
RUNS = 7


def _command() -> list[str]:
    script = Path(sys.executable).with_name("hedgebot")
    found = str(script) if script.exists() else shutil.which("hedgebot")
    return [found] if found else [sys.executable, "-m", "bot.cli.main"]


def median_seconds(args: list[str], runs: int = RUNS) -> float:
    """Median wall time of ``hedgebot <args>`` in a new process (after one untimed warm-up)."""
    cmd = [*_command(), *args]
    subprocess.run(cmd, capture_output=True, check=True)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run() -> list[Row]:
    return [
        Row(
            f"hedgebot {flag} (median of {RUNS} processes)",
            median_seconds([flag]),
            "s",
            "target",
            TARGET_SECONDS,
            higher_is_better=False,
        )
        for flag in ("--help", "--version")
    ]
