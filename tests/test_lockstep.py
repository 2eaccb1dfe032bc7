"""Lockstep time: the venue's clock moves only when its driver sleeps, never back; a client in
another process follows it over the sim's time routes; ids come from the seed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from aiohttp import web

from bot.clock import Clock, FakeClock, LockstepClock, SeededIds
from bot.sim.time_control import TimeControl
from bot.venues.sim_clock import SimClockUnavailable, SimVenueClock
from tests.support.books import NOW


async def test_a_lockstep_clock_moves_only_when_slept_on_and_tells_each_new_instant() -> None:
    seen = []
    clock = LockstepClock(NOW, on_advance=seen.append)
    assert clock.now() == NOW
    await asyncio.sleep(0.01)
    assert clock.now() == NOW  # wall time passing moves nothing
    await clock.sleep(120)
    await clock.sleep(0.5)
    assert clock.now() == NOW + timedelta(seconds=120.5)
    assert clock.advance_to(NOW) == NOW + timedelta(seconds=120.5)  # never back
    assert seen == [NOW + timedelta(seconds=120), NOW + timedelta(seconds=120.5)]


async def test_a_paced_lockstep_clock_ends_at_the_same_instant() -> None:
    paced = LockstepClock(NOW, pace=10_000)
    await paced.sleep(60)
    assert paced.now() == NOW + timedelta(seconds=60)


def test_seeded_ids_repeat_with_their_seed_and_salt_and_differ_otherwise() -> None:
    first = SeededIds(7, "a").cycle_id()
    ids = SeededIds(7, "a")
    again = [ids.cycle_id(), ids.cycle_id()]
    assert again[0] == first
    assert again[0] != again[1]
    assert SeededIds(7, "b").cycle_id() != first
    assert SeededIds(8, "a").cycle_id() != first
    assert len(first) == 16


@asynccontextmanager
async def time_server(clock: Clock) -> AsyncIterator[str]:
    app = web.Application()
    TimeControl(clock).add_routes(app.router)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_a_client_follows_the_venue_clock_and_its_sleep_moves_the_venue() -> None:
    venue_clock = LockstepClock(NOW)
    async with time_server(venue_clock) as url:
        client = await asyncio.to_thread(SimVenueClock.connect, url)
        try:
            assert client.now() == NOW
            await client.sleep(300)
            assert venue_clock.now() == client.now() == NOW + timedelta(seconds=300)
            venue_clock.advance(0.25)  # a modelled latency at the venue
            await client.sleep(60)
            assert client.now() == venue_clock.now() == NOW + timedelta(seconds=360)
        finally:
            await client.close()


async def test_a_client_refuses_a_venue_on_the_wall_clock_and_names_the_setting() -> None:
    async with time_server(FakeClock(NOW)) as url:
        with pytest.raises(SimClockUnavailable, match=r"market\.clock: lockstep"):
            await asyncio.to_thread(SimVenueClock.connect, url)


def test_a_client_says_when_no_venue_answers() -> None:
    with pytest.raises(SimClockUnavailable, match="is `hedgebot sim` running"):
        SimVenueClock.connect("http://127.0.0.1:9", timeout=2)
