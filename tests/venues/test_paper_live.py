"""Paper trading on live market data: ``--paper`` with ``venue.kind: deribit``, here with
``hedgebot sim`` standing in for Deribit as a public data source. Fills are local, market data
comes from the venue through public calls only, and nothing private ever reaches it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app import build_app
from bot.config import Settings, load_settings
from bot.cycle import rebalance_once
from bot.store.db import upgrade
from bot.venues.deribit.adapter import PrivateCallRefused, PublicOnlyDeribit
from bot.venues.deribit.live_market import LivePaperVenue
from tests.support.replay_server import ReplayServer, serving
from tests.support.sim_server_kit import running


def _settings(tmp_path: Path, url: str) -> Settings:
    return load_settings(
        None,
        venue={"kind": "deribit", "network": "custom", "url": url},
        database={
            "url": f"sqlite:///{tmp_path / 'live.db'}",
            "paper_url": f"sqlite:///{tmp_path / 'paper.db'}",
        },
        policy={"kind": "delta_band", "delta_band": {"band": 0.05}},
        execution={"post_only": False},
        risk={"max_data_age_seconds": 120},
    )


async def test_a_paper_day_on_the_sims_public_data_hedges_in_the_paper_ledger_only(
    tmp_path: Path,
) -> None:
    async with running() as sim:
        settings = _settings(tmp_path, sim.url)
        upgrade(settings.database.paper_url)
        app = build_app(settings, paper=True, clock=sim.clock)
        assert isinstance(app.venue, LivePaperVenue)
        statuses = []
        try:
            for _ in range(8):  # a day, three hours at a time
                result = await rebalance_once(app.ctx, "BTC")
                statuses.append(result.status)
                sim.clock.advance(3 * 3600)
            paper_fills = await app.venue.fills("BTC")
            held = await app.venue.positions("BTC")
        finally:
            await app.close()
        venue_orders = await sim.venue.open_orders("BTC")
        venue_fills = await sim.venue.fills("BTC")
    assert "skipped" not in statuses, statuses
    assert "traded" in statuses  # the book's delta drifted and was hedged
    assert paper_fills, "the paper account filled against the venue's book"
    assert {p.instrument.name for p in held if p.instrument.is_option}  # the settings' legs
    assert app.ledger.fills(), "fills recorded in the paper ledger"
    assert venue_orders == []  # the venue itself saw no order ...
    assert venue_fills == []  # ... and no trade: every fill was local


async def test_the_public_only_client_refuses_every_private_call_before_sending() -> None:
    server = ReplayServer({})
    async with serving(server) as url:
        client = PublicOnlyDeribit({"enableRateLimit": False})
        client.urls["api"] = {"rest": url}
        try:
            for call in (
                client.privateGetGetPositions,
                client.privateGetBuy,
                client.privateGetGetAccountSummary,
            ):
                with pytest.raises(PrivateCallRefused):
                    await call({"currency": "BTC"})
            await client.publicGetGetTime()
        finally:
            await client.close()
    assert server.methods_called() == ["public/get_time"]  # nothing private left the process


async def test_paper_on_live_data_refuses_settings_facts_that_contradict_the_venue(
    tmp_path: Path,
) -> None:
    async with running() as sim:
        base = _settings(tmp_path, sim.url)
        wrong = base.venue.facts["BTC"].model_copy(update={"perp_contract_usd": 100.0})
        settings = base.model_copy(
            update={"venue": base.venue.model_copy(update={"facts": {"BTC": wrong}})}
        )
        upgrade(settings.database.paper_url)
        app = build_app(settings, paper=True, clock=sim.clock)
        try:
            result = await rebalance_once(app.ctx, "BTC")
        finally:
            await app.close()
    assert result.status == "skipped"
    assert "venue.facts.BTC.perp_contract_usd = 100 contradicts the venue" in result.reason
