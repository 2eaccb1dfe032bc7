"""A cycle reads and parses the marks of the held instruments only, through the real ccxt client.

Small books read one ``public/ticker`` per held instrument; larger ones read the currency's book
summaries and parse only the held rows. A held instrument without a usable mark fails the read.
The answers are the recorded June 2022 rows of ``tests/support/replay_server.py``, widened to a
listing of many strikes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from bot.backtest.datafiles import DERIBIT
from bot.clock import FakeClock
from bot.config import DEFAULT_FACTS, RiskSettings, VenueSettings
from bot.domain import DataError, Mark
from bot.positions import PositionTracker
from bot.venues.base import select_marks
from bot.venues.deribit.adapter import DeribitVenue
from bot.venues.errors import VenueError
from tests.support.replay_server import (
    KEY,
    SECRET,
    ReplayServer,
    RpcError,
    instrument_rows,
    option_position,
    recorded,
    recorded_answers,
    serving,
)

NOW = datetime(2022, 6, 4, 11, 22, tzinfo=UTC)  # just after the recorded summaries
OLD_DATA = RiskSettings(max_data_age_seconds=3600)
STRIKES = range(30000, 50000, 1000)  # twenty listed calls
HELD = [f"BTC-24JUN22-{k}-C" for k in (30000, 31000, 32000, 33000)]
UNHELD_BROKEN = "BTC-24JUN22-99000-C"  # listed, not held, no mark_price


def _listing(drop: str = "") -> list[dict[str, Any]]:
    """The recorded options (no ``mark_iv``), more calls shaped like the recorded June call,
    and one broken row."""
    rows: list[dict[str, Any]] = recorded(DERIBIT, "open_interest", "inverse_future_all")
    call = rows[0]
    assert call["instrument_name"] == f"BTC-24JUN22-{STRIKES[0]}-C"
    rows += [{**call, "instrument_name": f"BTC-24JUN22-{k}-C"} for k in STRIKES[1:]]
    rows.append({**call, "instrument_name": UNHELD_BROKEN, "mark_price": None})
    return [{k: v for k, v in row.items() if k != drop} for row in rows]


def _futures() -> list[dict[str, Any]]:
    return [
        *recorded(DERIBIT, "open_interest", "inverse_future"),
        *recorded(DERIBIT, "open_interest", "inverse_swap"),
    ]


def _answers(options: list[dict[str, Any]]) -> dict[str, Any]:
    """The recorded account, its summaries widened to ``options``, its tickers served from them."""
    answers = recorded_answers(DERIBIT)
    perp = answers["public/ticker"]({"instrument_name": "BTC-PERPETUAL"})
    rows = {r["instrument_name"]: r for r in [*options, *_futures()]}

    def ticker(params: dict[str, str]) -> Any:
        name = params.get("instrument_name", "")
        if name == "BTC-PERPETUAL":
            return perp
        if name not in rows:
            return answers["public/ticker"](params)  # instrument_not_found
        row = rows[name]
        return {
            **{k: v for k, v in row.items() if k not in ("creation_timestamp", "bid_price")},
            "timestamp": row["creation_timestamp"],
            "best_bid_price": row.get("bid_price"),
            "best_ask_price": row.get("ask_price"),
        }

    listed = instrument_rows()
    call = next(r for r in listed if r["instrument_name"] == f"BTC-24JUN22-{STRIKES[0]}-C")
    listed += [
        {**call, "instrument_name": f"BTC-24JUN22-{k}-C", "strike": float(k)} for k in STRIKES[1:]
    ]
    by_name = {r["instrument_name"]: r for r in listed}
    answers["public/get_instruments"] = lambda p: listed
    answers["public/get_instrument"] = lambda p: by_name.get(
        p.get("instrument_name", ""), RpcError(10020, "instrument_not_found")
    )
    answers["public/get_book_summary_by_currency"] = lambda p: (
        options if p.get("kind") == "option" else _futures()
    )
    answers["public/ticker"] = ticker
    return answers


@asynccontextmanager
async def venue_on(
    answers: dict[str, Any], ticker_max: int = 8
) -> AsyncIterator[tuple[DeribitVenue, ReplayServer, FakeClock]]:
    clock = FakeClock(NOW)
    server = ReplayServer(answers, time_ms=lambda: round(clock.now().timestamp() * 1000))
    async with serving(server) as url:
        settings = VenueSettings(
            kind="deribit",
            network="custom",
            url=url,
            api_key=SecretStr(KEY),
            api_secret=SecretStr(SECRET),
            marks_ticker_max=ticker_max,
        )
        venue = DeribitVenue(settings, clock, rng=np.random.default_rng(1))
        try:
            yield venue, server, clock
        finally:
            await venue.close()


def _by_name(marks: list[Mark]) -> dict[str, Mark]:
    return {m.instrument_name: m for m in marks}


async def test_a_four_option_book_on_the_summary_path_parses_only_its_own_rows() -> None:
    async with venue_on(_answers(_listing()), ticker_max=0) as (venue, server, _):
        with capture_logs() as logs:
            marks = _by_name(await venue.marks("BTC", HELD))
    assert sorted(marks) == sorted(HELD)
    assert server.methods_called().count("public/get_book_summary_by_currency") == 2
    assert "public/ticker" not in server.methods_called()
    # the broken unheld row was never parsed, and only the four IVs were solved
    assert not [e for e in logs if e["event"] == "mark_skipped"]
    derived = next(e for e in logs if e["event"] == "marks_derived")
    assert derived["counts"] == {"iv_mark_price": 4, "venue": 4}


async def test_the_whole_listing_is_still_read_when_no_instruments_are_named() -> None:
    async with venue_on(_answers(_listing()), ticker_max=0) as (venue, _, _):
        with capture_logs() as logs:
            marks = _by_name(await venue.marks("BTC"))
    assert len([n for n in marks if n.startswith("BTC-24JUN22-")]) == len(STRIKES)
    assert [e["instrument"] for e in logs if e["event"] == "mark_skipped"] == [UNHELD_BROKEN]


async def test_a_small_book_reads_one_ticker_per_held_instrument_and_no_summary() -> None:
    names = [*HELD, "BTC-PERPETUAL"]
    async with venue_on(_answers(_listing())) as (venue, server, _):
        by_ticker = _by_name(await venue.marks("BTC", names))
        called = list(server.methods_called())
    async with venue_on(_answers(_listing()), ticker_max=0) as (venue, _, _):
        by_summary = _by_name(await venue.marks("BTC", names))
    assert called.count("public/ticker") == len(names)
    assert "public/get_book_summary_by_currency" not in called
    assert sorted(by_ticker) == sorted(names)
    for name in HELD:  # the same mark, IV, forward and time either way
        assert by_ticker[name] == by_summary[name]
    assert by_ticker["BTC-PERPETUAL"].mark_price > 0


async def test_a_small_book_whose_tickers_lack_the_forward_reads_the_futures_for_it() -> None:
    async with venue_on(_answers(_listing(drop="underlying_price"))) as (venue, server, _):
        marks = _by_name(await venue.marks("BTC", HELD))
    assert (
        server.calls.count(
            ("public/get_book_summary_by_currency", {"currency": "BTC", "kind": "future"})
        )
        == 1
    )
    assert all(m.forward_source == "future" for m in marks.values())
    assert marks[HELD[0]].underlying_price == 29727.97  # BTC-24JUN22's recorded mark


@pytest.mark.parametrize("ticker_max", [0, 8], ids=["summary", "ticker"])
async def test_a_held_instrument_absent_from_the_answer_fails_the_read(ticker_max: int) -> None:
    missing = "BTC-24JUN22-120000-C"
    async with venue_on(_answers(_listing()), ticker_max) as (venue, _, _):
        with pytest.raises((DataError, VenueError)):
            await venue.marks("BTC", [*HELD, missing])


@pytest.mark.parametrize("ticker_max", [0, 8], ids=["summary", "ticker"])
async def test_a_held_instrument_with_an_unusable_mark_fails_the_read_naming_it(
    ticker_max: int,
) -> None:
    async with venue_on(_answers(_listing()), ticker_max) as (venue, _, _):
        with pytest.raises(DataError, match=UNHELD_BROKEN):
            await venue.marks("BTC", [*HELD, UNHELD_BROKEN])


async def test_the_tracker_asks_for_the_held_marks_and_reads_a_newly_held_one_after() -> None:
    answers = _answers(_listing())
    held: list[dict[str, Any]] = list(answers["private/get_positions"])
    answers["private/get_positions"] = lambda p: held
    async with venue_on(answers) as (venue, server, clock):
        tracker = PositionTracker(venue, dict(DEFAULT_FACTS), clock, OLD_DATA)
        first = await tracker.read("BTC")  # nothing known yet: the whole listing
        assert "public/get_book_summary_by_currency" in server.methods_called()
        server.calls.clear()
        again = await tracker.read("BTC")
        tickers = sorted(p["instrument_name"] for m, p in server.calls if m == "public/ticker")
        assert "public/get_book_summary_by_currency" not in server.methods_called()
        # the hedge's ticker is read once: its quote brings its mark
        assert tickers == sorted(p.instrument.name for p in first.positions)
        assert "BTC-PERPETUAL" in tickers
        assert again.marks["BTC-PERPETUAL"].mark_price == again.hedge_quote.mark
        held.append(option_position(HELD[1], -1.0, None))  # traded since the last read
        server.calls.clear()
        third = await tracker.read("BTC")
    assert sorted(again.marks) == sorted({p.instrument.name for p in first.positions})
    assert HELD[1] in third.marks
    assert ("public/ticker", {"instrument_name": HELD[1]}) in server.calls


def test_a_venue_holding_every_mark_selects_the_named_ones_and_refuses_a_missing_one() -> None:
    marks = [
        Mark(name, 0.05, 30000.0, 30000.0, NOW, mark_iv=0.6) for name in (*HELD, UNHELD_BROKEN)
    ]
    assert [m.instrument_name for m in select_marks("BTC", marks, HELD[:2])] == HELD[:2]
    assert select_marks("BTC", marks, None) == marks
    with pytest.raises(DataError, match="BTC-24JUN22-120000-C"):
        select_marks("BTC", marks, ["BTC-24JUN22-120000-C"])
