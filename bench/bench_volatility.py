"""A forecast volatility source, per cycle: the daemon's VolSource against rereading history.

A SQLite ledger holds 72 hours of BTC greeks snapshots, one a minute (4,320 rows). Each timed
cycle records one more snapshot and asks for sigma, as the daemon does. Ours keeps the window
in memory and reads only the new row (GARCH refits once an hour; the timed cycles include
their share of it). The baseline is what the daemon did before: reread the whole lookback
through the ORM and forecast from scratch. Target (issue 13): ≤ 1 ms per cycle.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from bench.common import Row
from bot.config import VolatilitySettings
from bot.policy import VolSource
from bot.store.db import open_ledger
from bot.store.ledger import Ledger
from bot.store.records import GreeksSnapshot
from bot.volatility import make_forecaster

START = datetime(2026, 1, 1, tzinfo=UTC)
HISTORY = 72 * 60
CYCLES = 120
REREAD_CYCLES = 10  # the baseline is slow: fewer cycles give its mean


def _snapshot(i: int, price: float) -> GreeksSnapshot:
    return GreeksSnapshot(
        cycle_id=f"bench-{i}",
        ts=START + timedelta(minutes=i),
        currency="BTC",
        index_price=price,
        delta_coin=0.0,
        delta_usd_target=0.0,
        gamma=0.0,
        dollar_gamma=0.0,
        vega=0.0,
        theta=0.0,
        equity=1.0,
        hedge_position=0.0,
    )


def _prices(n: int) -> list[float]:
    rng = np.random.default_rng(5)
    steps = rng.normal(0.0, 0.6 * np.sqrt(60 / 3.15e7), n)
    return [float(p) for p in 90_000.0 * np.exp(np.cumsum(steps))]


def _reread(settings: VolatilitySettings, ledger: Ledger, now: datetime) -> float:
    snaps = ledger.greeks_snapshots(now - timedelta(hours=settings.lookback_hours), currency="BTC")
    prices = np.array([s.index_price for s in snaps])
    times = np.array([s.ts.timestamp() for s in snaps])
    return make_forecaster(settings.source).forecast(prices, times, implied=0.6)


def _history(folder: Path) -> Path:
    """A ledger file holding the 72 hours of snapshots, written once and copied per run."""
    path = folder / "history.db"
    ledger = open_ledger(f"sqlite:///{path}", create=True)
    for i, price in enumerate(_prices(HISTORY)):
        ledger.record_greeks(_snapshot(i, price))
    ledger.close()
    return path


def _per_cycle(history: Path, source: str, reread: bool) -> float:
    settings = VolatilitySettings(source=source, lookback_hours=72, min_points=30)
    prices = _prices(HISTORY + CYCLES)
    cycles = REREAD_CYCLES if reread else CYCLES
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        shutil.copy(history, path)
        ledger = open_ledger(f"sqlite:///{path}")
        vol = VolSource(settings, ledger)
        vol.sigma("BTC", START + timedelta(minutes=HISTORY - 1), 0.6)  # the start-up read
        spent = 0.0
        for i in range(HISTORY, HISTORY + cycles):
            ledger.record_greeks(_snapshot(i, prices[i]))
            now = START + timedelta(minutes=i)
            t0 = time.perf_counter()
            if reread:
                _reread(settings, ledger, now)
            else:
                vol.sigma("BTC", now, 0.6)
            spent += time.perf_counter() - t0
        ledger.close()
    return spent / cycles * 1e3


def run() -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        history = _history(Path(tmp))
        for source in ("ewma", "garch"):
            rows.extend(_rows(history, source))
    return rows


def _rows(history: Path, source: str) -> list[Row]:
    ours = _per_cycle(history, source, reread=False)
    name = f"vol source {source}, per cycle"
    return [
        Row(name, ours, " ms", "target 1 ms", 1.0, higher_is_better=False, target=1.0),
        Row(
            name,
            ours,
            " ms",
            "reread 72 h and forecast",
            _per_cycle(history, source, reread=True),
            higher_is_better=False,
        ),
    ]
