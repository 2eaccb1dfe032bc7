"""``python -m bench [filter ...]``: run every ``bench/bench_*.py`` and print one table.

Each module exposes ``run() -> list[Row]``. Arguments keep only modules whose name contains one
of them (``python -m bench greeks``). A module that fails is reported and the exit code is 1;
the others still run. Every baseline is measured in the same run on the same machine; no figure
comes from elsewhere. The table is also written to ``out/bench/latest.txt`` and ``latest.json``,
and the previous run's JSON (when there is one) adds a column comparing each value with it.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import platform
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

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


OUT = Path("out/bench")


def _target(r: Row) -> str:
    if r.target is None:
        return ""
    return f">={r.target:g}x {'ok' if r.met else 'MISSED'}"


def _versus(r: Row, previous: dict[str, float]) -> str:
    before = previous.get(f"{r.name} | {r.baseline}")
    if not before:
        return ""
    change = r.value / before if r.higher_is_better else before / r.value
    return f"{change:.2f}x"


def format_table(rows: Sequence[Row], previous: dict[str, float] | None = None) -> str:
    header = ("benchmark", "value", "baseline", "baseline value", "ratio", "target", "vs last run")
    lines = [
        (
            r.name,
            f"{si(r.value)}{r.unit}",
            r.baseline,
            f"{si(r.baseline_value)}{r.unit}",
            f"{r.ratio:.2f}x",
            _target(r),
            _versus(r, previous or {}),
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    right = {1, 3, 4, 6}

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
    latest_json = OUT / "latest.json"
    previous: dict[str, float] = {}
    if latest_json.exists():
        previous = {r["key"]: r["value"] for r in json.loads(latest_json.read_text())["rows"]}
    table = format_table(rows, previous) if rows else "(no rows)"
    print(table)
    total = time.perf_counter() - start
    print(f"\n{len(rows)} rows in {total:.1f} s ({', '.join(took)})")
    print("ratio: times better than the baseline (>1 is better)")
    if total > BUDGET_SECONDS:
        print(f"warning: over the {BUDGET_SECONDS:.0f} s budget", file=sys.stderr)
    missed = [r for r in rows if r.met is False]
    if missed:
        print(f"{len(missed)} of {sum(r.target is not None for r in rows)} targets missed")
    if rows:
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "latest.txt").write_text(table + "\n")
        latest_json.write_text(
            json.dumps(
                {
                    "rows": [
                        {**asdict(r), "ratio": r.ratio, "key": f"{r.name} | {r.baseline}"}
                        for r in rows
                    ]
                },
                indent=1,
            )
        )
        print(f"table written to {OUT / 'latest.txt'}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
