"""``python -m bench [filter ...]``: run every ``bench/bench_*.py`` and print one table.

Each module exposes ``run() -> list[Row]``. Arguments keep only modules whose name contains one
of them (``python -m bench greeks``). A module that fails is reported and the exit code is 1;
the others still run.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import platform
import sys
import time
import traceback
from collections.abc import Sequence

import numpy as np

import bench
from bench.common import Row, si

BUDGET_SECONDS = 60.0


def discover(filters: Sequence[str] = ()) -> list[str]:
    """Module names ``bench.bench_*``, sorted, kept when any filter is a substring."""
    names = sorted(
        m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_")
    )
    if filters:
        names = [n for n in names if any(f in n for f in filters)]
    return [f"bench.{n}" for n in names]


def format_table(rows: Sequence[Row]) -> str:
    header = ("benchmark", "value", "baseline", "baseline value", "ratio")
    lines = [
        (
            r.name,
            f"{si(r.value)}{r.unit}",
            r.baseline,
            f"{si(r.baseline_value)}{r.unit}",
            f"{r.ratio:.2f}x",
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    right = {1, 3, 4}

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    out = [fmt(header), fmt(["-" * w for w in widths])]
    out.extend(fmt(line) for line in lines)
    return "\n".join(out)


def main(argv: Sequence[str]) -> int:
    modules = discover(argv)
    if not modules:
        print(f"no benchmark module matches {list(argv)}", file=sys.stderr)
        return 1
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}"
    )
    rows: list[Row] = []
    failed: list[str] = []
    took: list[str] = []
    start = time.perf_counter()
    for name in modules:
        t0 = time.perf_counter()
        try:
            rows.extend(importlib.import_module(name).run())
        except Exception:
            failed.append(name)
            traceback.print_exc()
        took.append(f"{name.removeprefix('bench.')} {time.perf_counter() - t0:.1f} s")
    print(format_table(rows) if rows else "(no rows)")
    total = time.perf_counter() - start
    print(f"\n{len(rows)} rows in {total:.1f} s ({', '.join(took)})")
    print("ratio: times better than the baseline (>1 is better)")
    if total > BUDGET_SECONDS:
        print(f"warning: over the {BUDGET_SECONDS:.0f} s budget", file=sys.stderr)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
