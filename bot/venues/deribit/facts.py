"""Instrument facts: the venue's word, which settings may narrow but never contradict.

Contract size, amount step, minimum and tick are published by Deribit in its instrument list
(``public/get_instruments``: ``contract_size``, ``min_trade_amount`` — also the amount step —,
``tick_size``, and ``settlement_currency`` ≠ ``counter_currency`` for inverse contracts). A
wrong value typed into the settings would size every hedge wrong, so at start-up each
currency's settings (``venue.facts``) are compared with the venue's: a larger minimum or a
coarser step or tick that stays on the venue's grid narrows it; anything else is refused,
naming the setting, its value and the venue's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.config import CurrencyFacts
from bot.domain import Instrument
from bot.venues.deribit.mapping import instrument_from_row
from bot.venues.errors import VenueError

_REL = 1e-9


class FactsRefused(VenueError):
    """Settings that contradict the venue's published instrument facts."""


@dataclass(frozen=True)
class VenueFacts:
    """What the venue publishes for one currency: its perpetual, and its options' smallest
    minimum and tick (None when it lists no option)."""

    currency: str
    perpetual: Instrument
    option_min_amount: float | None
    option_tick_size: float | None


def _on_grid(value: float, grid: float) -> bool:
    q = value / grid
    return abs(q - round(q)) <= _REL * max(1.0, abs(q))


def _at_least_on_grid(value: float, venue: float) -> bool:
    return value >= venue * (1 - _REL) and _on_grid(value, venue)


def problems(setting: CurrencyFacts, venue: VenueFacts) -> list[str]:
    """Every setting of ``venue.facts.<currency>`` that contradicts the venue, one line each."""
    perp = venue.perpetual
    where = f"venue.facts.{venue.currency}"
    out: list[str] = []
    if setting.perpetual != perp.name:
        out.append(f"{where}.perpetual {setting.perpetual!r} is not listed by the venue")
    if abs(setting.perp_contract_usd - perp.contract_size) > _REL * perp.contract_size:
        out.append(
            f"{where}.perp_contract_usd = {setting.perp_contract_usd:g} contradicts the venue: "
            f"{perp.name} is {perp.contract_size:g} USD a contract"
        )
    checks = [
        ("perp_min_amount", setting.perp_min_amount, perp.min_amount, "minimum amount"),
        ("perp_amount_step", setting.perp_amount_step, perp.amount_step, "amount step"),
        ("perp_tick_size", setting.perp_tick_size, perp.tick_size, "tick"),
    ]
    if venue.option_min_amount is not None:
        checks.append(
            (
                "option_min_amount",
                setting.option_min_amount,
                venue.option_min_amount,
                "option minimum",
            )
        )
    if venue.option_tick_size is not None:
        checks.append(
            ("option_tick_size", setting.option_tick_size, venue.option_tick_size, "option tick")
        )
    for key, value, published, what in checks:
        if not _at_least_on_grid(value, published):
            out.append(
                f"{where}.{key} = {value:g} contradicts the venue's {what} {published:g}: "
                f"settings may only narrow it (a multiple of {published:g})"
            )
    return out


def venue_facts(
    currency: str, setting: CurrencyFacts, markets_by_id: Mapping[str, Any]
) -> VenueFacts:
    """The venue's facts for ``currency`` from ccxt's markets (each market's ``info`` is the
    venue's own ``get_instruments`` row)."""
    rows = [entry[0]["info"] for entry in markets_by_id.values() if entry and "info" in entry[0]]
    perp_rows = [r for r in rows if r.get("instrument_name") == setting.perpetual]
    if not perp_rows:
        raise FactsRefused(
            f"venue.facts.{currency}.perpetual {setting.perpetual!r} is not listed by the venue"
        )
    perpetual = instrument_from_row(perp_rows[0])
    options = [
        r
        for r in rows
        if r.get("kind") == "option"
        and r.get("base_currency") == currency
        and r.get("min_trade_amount") is not None
        and r.get("tick_size") is not None
    ]
    return VenueFacts(
        currency=currency,
        perpetual=perpetual,
        option_min_amount=min((float(r["min_trade_amount"]) for r in options), default=None),
        option_tick_size=min((float(r["tick_size"]) for r in options), default=None),
    )


def refuse_contradictions(setting: CurrencyFacts, venue: VenueFacts) -> None:
    found = problems(setting, venue)
    if found:
        raise FactsRefused("; ".join(found))
