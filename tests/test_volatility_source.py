"""The policies' sigma: implied, or forecast from the index prices the daemon recorded."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
from structlog.testing import capture_logs

from bot.clock import FakeClock
from bot.config import PolicySettings, VolatilitySettings
from bot.daemon import Daemon
from bot.policy import VolSource, policy_params
from bot.store.ledger import Ledger
from strategies.time_band import TimeBandParams
from tests.support.books import NOW
from tests.support.harness import stack


def test_the_time_band_interval_scales_with_the_inverse_square_of_sigma() -> None:
    settings = PolicySettings(
        kind="time_band",
        time_band={"interval_seconds": 3600},
        volatility={"scale_time_band": True, "reference": 0.6},
    )
    assert policy_params(settings, 0.6) == TimeBandParams(3600)
    assert policy_params(settings, 1.2) == TimeBandParams(900)
    assert policy_params(settings, 0.1) == TimeBandParams(4 * 3600)  # capped at x4
    unscaled = PolicySettings(kind="time_band", time_band={"interval_seconds": 3600})
    assert policy_params(unscaled, 1.2) == TimeBandParams(3600)


async def test_an_ewma_source_uses_recorded_index_prices_once_there_are_enough(
    tmp_path: Path,
) -> None:
    clock = FakeClock(NOW)
    app = stack(
        tmp_path,
        clock=clock,
        policy={
            "kind": "gamma_scaled",
            "gamma_scaled": {"method": "zakamouline", "risk_aversion": 0.001},
            "volatility": {"source": "ewma", "min_points": 30, "lookback_hours": 48},
        },
    )
    daemon = Daemon(app.ctx, ("BTC",), 600, heartbeat_seconds=86400, stop_grace_seconds=1)
    with capture_logs() as logs:
        await daemon.run(asyncio.Event(), until=NOW + timedelta(hours=8))
    assert any(e["event"] == "volatility_fallback_to_implied" for e in logs)
    rows = app.ledger.rebalances()
    sigmas = [r.params["sigma"] for r in rows]
    implied = rows[0].greeks.iv if rows[0].greeks else None
    assert sigmas[0] == pytest.approx(implied)
    late = sigmas[40:]
    assert late
    assert all(s != pytest.approx(implied) for s in late)
    assert all(0.2 < s < 1.5 for s in late)  # the market's vol is 0.55 with jumps


class _RecordedPrices:
    """A ledger's greeks snapshots: one BTC index price a minute, read back by ``since``."""

    def __init__(self, n: int) -> None:
        self.rows = [
            SimpleNamespace(ts=NOW + timedelta(minutes=i), index_price=90_000.0 + 10.0 * (i % 7))
            for i in range(n)
        ]
        self.returned = 0

    def index_prices(
        self, currency: str, since: datetime, *, after: bool = False
    ) -> list[tuple[datetime, float]]:
        rows = [
            (r.ts, r.index_price)
            for r in self.rows
            if r.ts > since or (r.ts == since and not after)
        ]
        self.returned += len(rows)
        return rows


def test_a_forecast_source_reads_only_what_was_recorded_since_its_last_cycle() -> None:
    recorded = _RecordedPrices(3 * 60)
    settings = VolatilitySettings(source="ewma", lookback_hours=72, min_points=30)
    source = VolSource(settings, cast(Ledger, recorded))
    first = source.sigma("BTC", NOW + timedelta(hours=3), implied=0.5)
    assert recorded.returned == 180
    for i in range(180, 240):  # an hour of cycles, one new price each
        recorded.rows.append(
            SimpleNamespace(ts=NOW + timedelta(minutes=i), index_price=90_000.0 + 10.0 * (i % 7))
        )
        source.sigma("BTC", NOW + timedelta(minutes=i), implied=0.5)
    assert recorded.returned == 180 + 60  # each cycle reads only the row recorded since
    assert first is not None
    assert first != pytest.approx(0.5)
