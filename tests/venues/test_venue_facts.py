"""Instrument facts come from the venue's listing (ccxt's markets); settings only narrow them."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import SecretStr

from bot.config import DEFAULT_FACTS, CurrencyFacts, VenueSettings
from bot.venues.deribit.adapter import DeribitVenue, RetryPolicy
from bot.venues.deribit.facts import FactsRefused
from tests.support.sim_server_kit import KEY, SECRET, Sim, running


def _venue(sim: Sim, **changes: float | str) -> DeribitVenue:
    btc = DEFAULT_FACTS["BTC"].model_copy(update=changes)
    settings = VenueSettings(
        kind="deribit",
        network="custom",
        url=sim.url,
        api_key=SecretStr(KEY),
        api_secret=SecretStr(SECRET),
        facts={"BTC": btc, "ETH": DEFAULT_FACTS["ETH"]},
    )
    return DeribitVenue(
        settings, sim.clock, retry=RetryPolicy(attempts=1), rng=np.random.default_rng(1)
    )


async def test_the_sim_publishes_the_facts_and_the_venue_reads_them_from_ccxt_markets() -> None:
    async with running() as sim:
        venue = _venue(sim)
        try:
            facts = await venue.facts("BTC")
        finally:
            await venue.close()
    assert facts is not None
    perp = facts.perpetual
    assert (perp.name, perp.contract_size, perp.min_amount, perp.tick_size) == (
        "BTC-PERPETUAL",
        10.0,
        10.0,
        0.5,
    )
    assert perp.inverse
    assert facts.option_min_amount == 0.1


async def test_a_larger_minimum_in_the_settings_narrows_the_venues() -> None:
    async with running() as sim:
        venue = _venue(sim, perp_min_amount=50.0, perp_amount_step=20.0)
        try:
            held = await venue.positions("BTC")
            instruments = {i.name: i for i in await venue.instruments("BTC")}
        finally:
            await venue.close()
    perp = instruments["BTC-PERPETUAL"]
    assert perp.min_amount == 50.0
    assert perp.amount_step == 20.0
    assert perp.contract_size == 10.0  # never from the settings
    assert all(p.instrument.min_amount >= 0.1 for p in held)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"perp_contract_usd": 100.0}, "perp_contract_usd = 100 contradicts the venue"),
        ({"perp_min_amount": 5.0}, "perp_min_amount = 5 contradicts the venue's minimum"),
        ({"perp_amount_step": 15.0}, "perp_amount_step = 15 contradicts"),
        ({"perp_tick_size": 0.25}, "perp_tick_size = 0.25 contradicts the venue's tick 0.5"),
        ({"option_min_amount": 0.05}, "option_min_amount = 0.05 contradicts"),
        ({"perpetual": "BTC-PERP"}, "'BTC-PERP' is not listed by the venue"),
    ],
)
async def test_a_setting_that_contradicts_the_venue_is_refused_naming_it(
    changes: dict[str, float | str], words: str
) -> None:
    async with running() as sim:
        venue = _venue(sim, **changes)
        try:
            with pytest.raises(FactsRefused) as caught:
                await venue.positions("BTC")
        finally:
            await venue.close()
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)


def test_settings_facts_are_still_checked_when_they_agree() -> None:
    from bot.domain import Instrument, InstrumentKind
    from bot.venues.deribit.facts import VenueFacts, problems

    perp = Instrument("BTC-PERPETUAL", "BTC", InstrumentKind.PERPETUAL, 10.0, 10.0, 10.0, 0.5, True)
    venue = VenueFacts("BTC", perp, 0.1, 0.0005)
    assert problems(DEFAULT_FACTS["BTC"], venue) == []
    wrong = CurrencyFacts(**{**DEFAULT_FACTS["BTC"].model_dump(), "perp_tick_size": 0.75})
    assert problems(wrong, venue) == [
        "venue.facts.BTC.perp_tick_size = 0.75 contradicts the venue's tick 0.5: settings may "
        "only narrow it (a multiple of 0.5)"
    ]
