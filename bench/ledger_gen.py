"""A realistic ledger of any size, written fast: what ``bench_report`` and the report tests read.

Per currency and per cycle (every ``step_s`` seconds) the daemon stores one rebalance and one
greeks snapshot; a few percent of cycles trade, each with one order, two order events and one
fill. Prices follow a seeded random walk; the book's delta drifts and is hedged back to zero
when it leaves the band. Rows go in with SQLAlchemy Core ``insert`` executemany on untyped
``table()`` columns (no per-value type processing), after Alembic has created the schema, so a
million rebalances take seconds, not the hours the ledger's one-transaction-per-write API would.
Timestamps are written in SQLAlchemy's SQLite format (``YYYY-MM-DD HH:MM:SS.ffffff``, UTC).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine, column, insert, table

from bot.store.db import open_ledger

START = datetime(2025, 1, 1, tzinfo=UTC)
CURRENCIES = {"BTC": 90_000.0, "ETH": 3_000.0}
TRADED_SHARE = 0.03
BAND = 0.1
CHUNK = 50_000


def _stamps(start_s: float, n: int, step_s: float) -> npt.NDArray[np.str_]:
    us = (np.arange(n, dtype=np.int64) * int(step_s * 1e6)) + int(start_s * 1e6)
    text = np.datetime_as_string(us.astype("datetime64[us]"), unit="us")
    return np.char.replace(text, "T", " ")


def _insert(engine: Engine, name: str, columns: dict[str, Any]) -> None:
    keys = list(columns)
    target = table(name, *(column(k) for k in keys))
    values = [v.tolist() if isinstance(v, np.ndarray) else v for v in columns.values()]
    n = len(values[0])
    with engine.begin() as conn:
        for lo in range(0, n, CHUNK):
            hi = min(n, lo + CHUNK)
            rows = [
                dict(zip(keys, r, strict=True))
                for r in zip(*(v[lo:hi] for v in values), strict=True)
            ]
            conn.execute(insert(target), rows)


def nan_none(a: npt.NDArray[np.float64]) -> list[float | None]:
    """NaN as SQL NULL."""
    return [None if x != x else x for x in a.tolist()]


def build_ledger(path: Path, cycles: int, *, step_s: float = 60.0, seed: int = 7) -> Path:
    """Write a ledger of ``cycles`` rebalances per currency of :data:`CURRENCIES` at ``path``
    (replaced if it exists); returns ``path``."""
    path.unlink(missing_ok=True)
    ledger = open_ledger(f"sqlite:///{path}", create=True)
    engine = ledger.engine
    rng = np.random.default_rng(seed)
    next_id = 1
    trade_no = 0
    try:
        for offset, (ccy, spot) in enumerate(CURRENCIES.items()):
            n = cycles
            ts = _stamps(START.timestamp() + offset, n, step_s)
            ids = np.arange(next_id, next_id + n)
            next_id += n
            cycle_ids = [f"{ccy.lower()}-{i:08d}" for i in range(n)]
            index = spot * np.exp(np.cumsum(rng.normal(0.0, 0.0007, n)))
            mid = index * (1.0 + rng.normal(0.0, 2e-4, n))
            gamma = 1e-5 * spot / 90_000.0 * (1.0 + 0.1 * rng.random(n))
            vega = 40.0 * (1.0 + 0.1 * rng.random(n))
            theta = -60.0 * (1.0 + 0.1 * rng.random(n))
            iv = 0.55 + 0.05 * np.sin(np.arange(n) / 5000.0) + rng.normal(0, 0.002, n)
            equity = 10.0 + np.cumsum(rng.normal(0.0, 1e-4, n))
            delta = rng.normal(0.0, 0.06, n)
            traded = np.abs(delta) > BAND
            traded |= rng.random(n) < TRADED_SHARE - traded.mean()
            amount = np.maximum(10.0, np.round(np.abs(delta) * index / 10.0) * 10.0)
            trade_amount = np.where(traded, -np.sign(delta) * amount, np.nan)
            trade_delta = np.where(traded, -delta, np.nan)
            hedge = np.cumsum(np.where(traded, trade_amount, 0.0))
            # Every 97th cycle is skipped before reading the book (stale data): no figures.
            skipped = (np.arange(n) % 97 == 50) & ~traded
            status = np.where(traded, "traded", np.where(skipped, "skipped", "no_trade"))
            reason = np.where(
                traded,
                "delta outside the band",
                np.where(skipped, "stale market data", "delta inside the band"),
            )
            index_or_none = np.where(skipped, np.nan, index)
            greeks = [
                json.dumps(
                    {
                        "currency": ccy,
                        "index_price": float(s),
                        "delta_coin": float(d),
                        "delta_usd_target": float(d + e),
                        "options_delta_net": float(d),
                        "options_delta_bs": float(d),
                        "futures_delta": 0.0,
                        "gamma": float(g),
                        "dollar_gamma": float(g * s * s / 100),
                        "vega": float(v),
                        "theta": float(t),
                        "equity": float(e),
                        "expired_skipped": [],
                        # an older daemon stored no IV: every 13th cycle of the first tenth
                        "iv": None if (j % 13 == 0 and j < n // 10) else float(i),
                        "mean_iv": float(i),
                        "nearest_tau": 0.05,
                    }
                )
                for j, (s, d, g, v, t, e, i) in enumerate(
                    zip(
                        index.tolist(),
                        delta.tolist(),
                        gamma.tolist(),
                        vega.tolist(),
                        theta.tolist(),
                        equity.tolist(),
                        iv.tolist(),
                        strict=True,
                    )
                )
            ]
            _insert(
                engine,
                "rebalances",
                {
                    "id": ids,
                    "cycle_id": cycle_ids,
                    "ts": ts,
                    "currency": [ccy] * n,
                    "mode": ["paper"] * n,
                    "policy": ["band"] * n,
                    "params": ['{"band": 0.1}'] * n,
                    "target_mode": ["usd"] * n,
                    "status": status,
                    "reason": reason,
                    "index_price": nan_none(index_or_none),
                    "hedge_bid": nan_none(np.where(skipped, np.nan, mid - 0.25)),
                    "hedge_ask": nan_none(np.where(skipped, np.nan, mid + 0.25)),
                    "hedge_mid": nan_none(np.where(skipped, np.nan, mid)),
                    "delta_before": nan_none(np.where(skipped, np.nan, delta)),
                    "target": [0.0] * n,
                    "band_low": [-BAND] * n,
                    "band_high": [BAND] * n,
                    "gamma": nan_none(np.where(skipped, np.nan, gamma)),
                    "vega": nan_none(np.where(skipped, np.nan, vega)),
                    "theta": nan_none(np.where(skipped, np.nan, theta)),
                    "equity": nan_none(np.where(skipped, np.nan, equity)),
                    "trade_amount": nan_none(trade_amount),
                    "trade_delta": nan_none(trade_delta),
                    "expected_delta_after": nan_none(np.where(traded, 0.0, np.nan)),
                    "est_cost_usd": nan_none(np.where(traded, 0.5, np.nan)),
                    "greeks": [
                        None if x else g for x, g in zip(skipped.tolist(), greeks, strict=True)
                    ],
                    "instrument": [f"{ccy}-PERPETUAL"] * n,
                },
            )
            del greeks
            keep = np.flatnonzero(~skipped)  # a skipped cycle stores no snapshot
            held_before = hedge - np.where(traded, trade_amount, 0.0)
            _insert(
                engine,
                "greeks_snapshots",
                {
                    "cycle_id": [cycle_ids[i] for i in keep.tolist()],
                    "ts": ts[keep],
                    "currency": [ccy] * len(keep),
                    "index_price": index[keep],
                    "delta_coin": delta[keep],
                    "delta_usd_target": (delta + equity)[keep],
                    "gamma": gamma[keep],
                    "dollar_gamma": (gamma * index * index / 100)[keep],
                    "vega": vega[keep],
                    "theta": theta[keep],
                    "equity": equity[keep],
                    # the hedge held when the cycle read it: before this cycle's trade
                    "hedge_position": held_before[keep],
                },
            )
            k = np.flatnonzero(traded)
            m = len(k)
            labels = [f"hb-{ccy.lower()}-{trade_no + j}" for j in range(m)]
            venue_ids = [f"{ccy[0]}{trade_no + j}" for j in range(m)]
            trade_no += m
            sides = np.where(trade_amount[k] > 0, "buy", "sell")
            price = mid[k] * (1.0 + np.where(sides == "buy", 1.0, -1.0) * 5e-5)
            amounts = np.abs(trade_amount[k])
            fill_ts = _stamps(START.timestamp() + offset + 2, n, step_s)[k]
            _insert(
                engine,
                "orders",
                {
                    "label": labels,
                    "cycle_id": [cycle_ids[i] for i in k.tolist()],
                    "rebalance_id": ids[k],
                    "venue_order_id": venue_ids,
                    "instrument": [f"{ccy}-PERPETUAL"] * m,
                    "side": sides,
                    "amount": amounts,
                    "price": price,
                    "order_type": ["limit"] * m,
                    "post_only": [True] * m,
                    "reduce_only": [False] * m,
                    "time_in_force": ["good_til_cancelled"] * m,
                    "status": ["filled"] * m,
                    "filled_amount": amounts,
                    "average_price": price,
                    "decision_mid": mid[k],
                    "created_at": ts[k],
                    "updated_at": fill_ts,
                },
            )
            for detail, when, state in (("recorded", ts[k], "pending"), ("", fill_ts, "filled")):
                _insert(
                    engine,
                    "order_events",
                    {
                        "label": labels,
                        "ts": when,
                        "status": [state] * m,
                        "filled_amount": amounts if state == "filled" else [0.0] * m,
                        "detail": [detail] * m,
                    },
                )
            _insert(
                engine,
                "fills",
                {
                    "trade_id": [f"t-{v}" for v in venue_ids],
                    "label": labels,
                    "venue_order_id": venue_ids,
                    "instrument": [f"{ccy}-PERPETUAL"] * m,
                    "side": sides,
                    "amount": amounts,
                    "price": price,
                    "fee": -0.0001 * amounts / price,
                    "fee_currency": [ccy] * m,
                    "liquidity": ["maker"] * m,
                    "ts": fill_ts,
                    "index_price": index[k],
                },
            )
    finally:
        ledger.close()
    return path
