"""The venue's clock: measured from ``public/get_time``, used to judge data age, and a limit
beyond which hedgebot refuses to trade with one line that blames the host clock."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from bot.clock import FakeClock, OffsetClock
from bot.config import DEFAULT_FACTS, RiskSettings, VenueClockSettings, VenueSettings
from bot.positions import PositionTracker, StaleData
from bot.sim.faults import WireFaultPlan
from bot.venues.deribit.adapter import DeribitVenue, RetryPolicy
from bot.venues.venue_clock import ClockOffsetTooLarge, VenueClock
from tests.support.sim_server_kit import KEY, NOW, SECRET, Sim, raw_get, running


def _venue(sim: Sim, max_offset: float = 5.0, refresh: float = 300.0) -> DeribitVenue:
    settings = VenueSettings(
        kind="deribit",
        network="custom",
        url=sim.url,
        api_key=SecretStr(KEY),
        api_secret=SecretStr(SECRET),
        clock=VenueClockSettings(refresh_seconds=refresh, max_offset_seconds=max_offset),
    )
    return DeribitVenue(
        settings, sim.clock, retry=RetryPolicy(attempts=1), rng=np.random.default_rng(1)
    )


async def test_offset_is_the_venue_time_minus_the_middle_of_the_request() -> None:
    host = FakeClock(NOW)

    async def venue_time() -> datetime:
        host.advance(0.2)  # a 0.4 s round trip, answered half way
        answer = host.now() + timedelta(seconds=-42.0)
        host.advance(0.2)
        return answer

    clock = VenueClock(host, venue_time, refresh_seconds=60, max_offset_seconds=5)
    with capture_logs() as logs:
        assert await clock.measure() == pytest.approx(-42.0)
    assert clock.round_trip_seconds == pytest.approx(0.4)
    assert clock.now() == host.now() - timedelta(seconds=42)
    assert logs[0]["event"] == "venue_clock_offset"
    assert logs[0]["offset_seconds"] == -42.0


async def test_offset_is_measured_again_only_after_the_refresh_interval() -> None:
    host = FakeClock(NOW)
    asked = []

    async def venue_time() -> datetime:
        asked.append(host.now())
        return host.now()

    clock = VenueClock(host, venue_time, refresh_seconds=300, max_offset_seconds=5)
    await clock.ensure()
    host.advance(299)
    await clock.ensure()
    host.advance(1)
    await clock.ensure()
    assert len(asked) == 2


async def test_an_offset_beyond_the_limit_refuses_with_one_line_naming_the_host_clock() -> None:
    host = FakeClock(NOW)

    async def venue_time() -> datetime:
        return host.now() + timedelta(seconds=90)

    clock = VenueClock(host, venue_time, refresh_seconds=300, max_offset_seconds=5)
    with pytest.raises(ClockOffsetTooLarge) as caught:
        await clock.ensure()
    message = str(caught.value)
    assert "\n" not in message
    assert "90.0s behind the venue's" in message
    assert "NTP" in message


async def test_the_sim_serves_get_time_and_shifts_its_clock_by_the_fault_plan() -> None:
    async with running(fault_plan=WireFaultPlan(clock_offset_s=-120.0)) as sim:
        status, body = await raw_get(sim, "public/get_time")
        assert status == 200
        assert body["result"] == round((NOW - timedelta(seconds=120)).timestamp() * 1000)


async def test_a_venue_clock_two_minutes_behind_is_refused_with_the_default_limit() -> None:
    async with running(fault_plan=WireFaultPlan(clock_offset_s=-120.0)) as sim:
        venue = _venue(sim)
        try:
            with pytest.raises(ClockOffsetTooLarge, match=r"120\.0s ahead of the venue.s"):
                await venue.positions("BTC")
        finally:
            await venue.close()


async def test_data_age_is_judged_on_the_venue_clock_not_the_host_clock() -> None:
    """A venue 2 minutes behind: its data looks 120 s old on the host's clock, fresh on its own."""
    async with running(fault_plan=WireFaultPlan(clock_offset_s=-120.0)) as sim:
        venue = _venue(sim, max_offset=600.0)
        try:
            host_judged = PositionTracker(venue, dict(DEFAULT_FACTS), sim.clock, RiskSettings())
            with pytest.raises(StaleData):
                await host_judged.read("BTC")
            assert venue.venue_clock is not None
            venue_judged = PositionTracker(
                venue, dict(DEFAULT_FACTS), venue.venue_clock, RiskSettings()
            )
            book = await venue_judged.read("BTC")
        finally:
            await venue.close()
    assert venue.venue_clock.offset_seconds == pytest.approx(-120.0, abs=1.0)
    assert book.as_of == sim.clock.now() - timedelta(seconds=120)


def test_offset_clock_shifts_time_but_sleeps_on_its_base() -> None:
    base = FakeClock(NOW)
    shifted = OffsetClock(base, 30.0)
    assert shifted.now() - base.now() == timedelta(seconds=30)
