"""The policies' sigma: implied, or forecast from the index prices the daemon recorded."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from bot.clock import FakeClock
from bot.config import PolicySettings
from bot.daemon import Daemon
from bot.policy import policy_params
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
