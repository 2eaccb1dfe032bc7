"""``hedgebot report`` over a year of two currencies at the default schedule (issue 13).

One rebalance a minute per currency for 365 days is 1,051,200 rebalances (and as many greeks
snapshots; about 3% trade, each with an order, two events and a fill). The ledger is written by
:mod:`bench.ledger_gen` once and cached under ``out/bench/`` (a few hundred MB); the real command
then runs in a subprocess, timed wall-clock, its peak resident memory read from the kernel's
accounting of that child (``os.wait4``'s ``ru_maxrss``). Targets: 30 s and 1 GiB; each target is
the row's baseline, so a ratio ≥ 1 meets it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bench.common import Row
from bench.ledger_gen import build_ledger

CYCLES_PER_CURRENCY = 365 * 24 * 60
LEDGER = Path("out/bench") / f"report_ledger_{CYCLES_PER_CURRENCY}_v1.sqlite"
TARGET_S = 30.0
TARGET_MIB = 1024.0


def ledger() -> Path:
    """The cached bench ledger, written first if missing (into a temporary name, then moved,
    so an interrupted build is never mistaken for a finished one)."""
    if not LEDGER.exists():
        LEDGER.parent.mkdir(parents=True, exist_ok=True)
        partial = LEDGER.with_suffix(".partial")
        t0 = time.perf_counter()
        build_ledger(partial, CYCLES_PER_CURRENCY)
        partial.rename(LEDGER)
        print(f"bench_report: wrote {LEDGER} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return LEDGER


def run_report(path: Path, *args: str) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MiB) of ``hedgebot report`` on ``path`` in a
    child process."""
    cmd = [sys.executable, "-m", "bot.cli.main", "report", "--db", f"sqlite:///{path}", *args]
    t0 = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - t0
    child.returncode = os.waitstatus_to_exitcode(status)
    stderr = child.stderr.read().decode() if child.stderr else ""
    if child.returncode != 0:
        raise RuntimeError(f"hedgebot report failed ({child.returncode}): {stderr[-2000:]}")
    # CPU time tells a slow machine from a slow command: on 2 shared cores they differ a lot.
    cpu = usage.ru_utime + usage.ru_stime
    print(f"bench_report: {seconds:.1f} s wall, {cpu:.1f} s CPU", file=sys.stderr)
    return seconds, cpu, usage.ru_maxrss / 1024.0  # ru_maxrss is in KiB on Linux


def run() -> list[Row]:
    path = ledger()
    seconds, cpu, mib = run_report(path)
    n = f"{2 * CYCLES_PER_CURRENCY / 1e6:.2f} M rebalances"
    return [
        Row(
            f"hedgebot report, {n}: wall time",
            seconds,
            "s",
            f"target {TARGET_S:g} s",
            TARGET_S,
            higher_is_better=False,
            target=1.0,
        ),
        # The command's own work: on 2 shared cores the wall time is mostly the others' load.
        Row(
            f"hedgebot report, {n}: CPU time (user + sys)",
            cpu,
            "s",
            f"target {TARGET_S:g} s",
            TARGET_S,
            higher_is_better=False,
            target=1.0,
        ),
        Row(
            f"hedgebot report, {n}: peak RSS",
            mib,
            "MiB",
            f"target {TARGET_MIB:g} MiB",
            TARGET_MIB,
            higher_is_better=False,
            target=1.0,
        ),
    ]
