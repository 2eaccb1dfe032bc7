"""The ccxt adapter reports each request's latency, by method, through the monitor's timer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import SecretStr

from bot.config import VenueSettings
from bot.monitor import Monitor
from bot.store.db import open_ledger
from bot.venues.deribit.adapter import DeribitVenue
from tests.support.harness import settings as harness_settings
from tests.support.sim_server_kit import KEY, SECRET, running

OPEN_ORDERS = "get_open_orders_by_currency"


async def test_requests_to_the_simulated_deribit_land_in_the_latency_histogram_by_method(
    tmp_path: Path,
) -> None:
    s = harness_settings(tmp_path)
    ticks = iter(float(i) * 0.01 for i in range(10_000))  # every request takes 10 ms
    async with running() as sim:
        ledger = open_ledger(s.database.url, create=True)
        mon = Monitor(s, ledger, sim.clock, environ={}, timer=lambda: next(ticks))
        venue_settings = VenueSettings(
            kind="deribit",
            network="custom",
            url=sim.url,
            api_key=SecretStr(KEY),
            api_secret=SecretStr(SECRET),
        )
        venue = DeribitVenue(
            venue_settings, sim.clock, rng=np.random.default_rng(1), request_timer=mon.request_timer
        )
        try:
            await venue.positions("BTC")
            await venue.positions("BTC")
            await venue.open_orders("BTC")
        finally:
            await venue.close()
    reg = mon.metrics.registry
    name = "hedgebot_venue_request_duration_seconds"
    assert reg.get_sample_value(f"{name}_count", {"method": "get_positions"}) == 2
    assert abs(reg.get_sample_value(f"{name}_sum", {"method": "get_positions"}) - 0.02) < 1e-9
    assert reg.get_sample_value(f"{name}_count", {"method": OPEN_ORDERS}) == 1
