"""What every benchmark module shares: the result row and a careful timer.

A benchmark module is ``bench/bench_<topic>.py`` with ``run() -> list[Row]``; the runner
(``python -m bench``) finds it by name, so adding one needs no registration.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """One measured number against one named baseline.

    ``ratio`` is how many times better than the baseline the measurement is (> 1 is better),
    whichever way "better" points for the unit.
    """

    name: str
    value: float
    unit: str
    baseline: str
    baseline_value: float
    higher_is_better: bool = True
    target: float | None = None  # the ratio this row must reach, when the row has a target

    def __post_init__(self) -> None:
        if not (self.value > 0 and self.baseline_value > 0):
            raise ValueError(f"{self.name}: value and baseline must be positive")

    @property
    def ratio(self) -> float:
        if self.higher_is_better:
            return self.value / self.baseline_value
        return self.baseline_value / self.value

    @property
    def met(self) -> bool | None:
        """Whether the ratio reaches the target; None for a row without one."""
        return None if self.target is None else self.ratio >= self.target


def seconds_per_call(
    fn: Callable[[], object],
    *,
    min_time: float = 0.1,
    repeat: int = 5,
    max_calls: int = 10_000,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Median wall time of one call of ``fn`` (see :func:`interleaved_seconds`)."""
    return interleaved_seconds(
        [fn], min_time=min_time, repeat=repeat, max_calls=max_calls, clock=clock
    )[0]


def interleaved_seconds(
    fns: Sequence[Callable[[], object]],
    *,
    min_time: float = 0.1,
    repeat: int = 5,
    max_calls: int = 10_000,
    clock: Callable[[], float] = time.perf_counter,
) -> list[float]:
    """Median wall time of one call of each function over ``repeat`` repeats, interleaved.

    Each repeat loops a function for at least ``min_time``. Interleaving exposes a measurement
    and its baseline to the same load, so their ratio is fair, and the median of the repeats is
    robust to a repeat disturbed by another process. One untimed warm-up call first pays for
    imports, caches, JIT compilation and the allocator's first page faults.

    ``clock=time.process_time`` measures this process's CPU time instead of wall time: for
    single-threaded work, what it costs whatever else the machine is running.
    """
    calls = []
    for fn in fns:
        fn()
        start = time.perf_counter()
        fn()
        once = max(time.perf_counter() - start, 1e-9)
        calls.append(max(1, min(max_calls, math.ceil(min_time / once))))
    times: list[list[float]] = [[] for _ in fns]
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            for i, (fn, n) in enumerate(zip(fns, calls, strict=True)):
                start = clock()
                for _ in range(n):
                    fn()
                times[i].append((clock() - start) / n)
    finally:
        if gc_was_enabled:
            gc.enable()
    return [statistics.median(t) for t in times]


def si(value: float) -> str:
    """``12_300_000 -> '12.3 M'``: short numbers for the table."""
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}"
    return f"{value:.3g} "
