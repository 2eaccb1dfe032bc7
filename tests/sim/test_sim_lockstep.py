"""``hedgebot sim`` on lockstep time: its clock moves only on a client's advance or a latency the
fault plan models on purpose, and a restart resumes at the time it saved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp

from bot.clock import LockstepClock
from bot.config import load_settings
from bot.sim.faults import WireFaultPlan
from bot.sim.serve import build_server, venue_clock
from bot.venues.paper.state import MemoryPaperStore

START = datetime(2026, 1, 5, tzinfo=UTC)


async def test_only_the_advance_route_and_the_planned_latency_move_the_venue_clock() -> None:
    settings = load_settings(None, market={"clock": "lockstep", "start": START})
    store = MemoryPaperStore()
    clock, start = venue_clock(settings, store)
    assert isinstance(clock, LockstepClock)
    assert start == clock.now() == START
    server = build_server(
        settings,
        clock,
        api_key="k",
        api_secret="s",
        fault_plan=WireFaultPlan(seed=1, latency_ms=(250.0, 250.0)),
        start=start,
        store=store,
    )
    port = await server.start("127.0.0.1", 0)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(2):
                async with http.get(f"{base}/api/v2/public/get_time") as answer:
                    assert answer.status == 200
            assert clock.now() == START + timedelta(seconds=0.5)  # two modelled latencies
            target = START + timedelta(hours=1)
            to_us = (target - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
            async with http.post(f"{base}/sim/v1/advance", json={"to_us": to_us}) as answer:
                reply = await answer.json()
            assert reply == {"clock": "lockstep", "now_us": to_us}
            async with http.post(f"{base}/sim/v1/advance", json={"to_us": 0}) as answer:
                assert (await answer.json())["now_us"] == to_us  # never back
            async with http.post(f"{base}/sim/v1/advance", json={"to_us": "soon"}) as answer:
                assert answer.status == 400
    finally:
        await server.stop()
    again, start_again = venue_clock(settings, store)  # a restart on the same account
    assert again.now() == START + timedelta(hours=1)
    assert start_again == START
