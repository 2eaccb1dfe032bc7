"""A corpus of malformed venue answers reaching the position tracker (issue 12): missing fields,
nulls, numbers as strings, NaN, unknown kinds, expired instruments, partial position lists.

Each goes through the real cycle on the paper venue, lying in one way through a constructor-
injected wrapper; each must end as a recorded skip that names what was wrong, with no order
sent and no traceback. Raw Deribit rows are checked at the mapping, which must raise a
``DataError`` naming the field.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.cycle import rebalance_once
from bot.domain import (
    Account,
    DataError,
    Instrument,
    Mark,
    Position,
    Quote,
    RebalanceStatus,
)
from tests.support.books import NOW
from tests.support.harness import CountingVenue, stack

PERP = "BTC-PERPETUAL"
TIGHT = {
    "policy": {"kind": "delta_band", "delta_band": {"band": 0.05}},
    "hedge": {"target_delta": 0.5},
}

Edit = Callable[[Any], Any]


def _first_option(items: list[Any], edit: Edit) -> list[Any]:
    """Apply ``edit`` to the first option position (or its mark) of the list."""
    out, done = [], False
    for item in items:
        name = item.instrument.name if isinstance(item, Position) else item.instrument_name
        if not done and name.endswith(("-C", "-P")):
            out.append(edit(item))
            done = True
        else:
            out.append(item)
    assert done, "the paper book holds options"
    return out


def _unknown_kind(p: Position) -> Position:
    return replace(p, instrument=replace(p.instrument, kind="swap"))


def _other_currency(p: Position) -> Position:
    return replace(p, instrument=replace(p.instrument, currency="ETH"))


def _expired_without_mark(p: Position) -> Position:
    return replace(p, instrument=replace(p.instrument, expiry=NOW - timedelta(days=1)))


POSITIONS: dict[str, Callable[[list[Position]], list[Position]]] = {
    "size null": lambda ps: _first_option(ps, lambda p: replace(p, size=None)),
    "size as a string": lambda ps: _first_option(ps, lambda p: replace(p, size="-5")),
    "size NaN": lambda ps: _first_option(ps, lambda p: replace(p, size=float("nan"))),
    "size infinite": lambda ps: _first_option(ps, lambda p: replace(p, size=float("inf"))),
    "size a bool": lambda ps: _first_option(ps, lambda p: replace(p, size=True)),
    "unknown instrument kind": lambda ps: _first_option(ps, _unknown_kind),
    "instrument not an instrument": lambda ps: _first_option(
        ps, lambda p: replace(p, instrument={"name": "BTC-X"})
    ),
    "position of another currency": lambda ps: _first_option(ps, _other_currency),
    "one instrument listed twice": lambda ps: [*ps, ps[0]],
}
# Edits of the mark of the first option the book holds; None removes it.
MARKS: dict[str, Edit] = {
    "held option's mark missing": lambda m: None,
    "mark price null": lambda m: replace(m, mark_price=None),
    "mark price as a string": lambda m: replace(m, mark_price="0.1"),
    "mark price NaN": lambda m: replace(m, mark_price=float("nan")),
    "mark price negative": lambda m: replace(m, mark_price=-0.01),
    "underlying price missing": lambda m: replace(m, underlying_price=None),
    "mark iv NaN": lambda m: replace(m, mark_iv=float("nan")),
    "mark iv negative": lambda m: replace(m, mark_iv=-0.5),
    "mark timestamp null": lambda m: replace(m, timestamp=None),
    "mark stamped an hour ahead": lambda m: replace(m, timestamp=m.timestamp + timedelta(hours=1)),
}
ACCOUNT: dict[str, Edit] = {
    "equity null": lambda a: replace(a, equity=None),
    "equity as a string": lambda a: replace(a, equity="10"),
    "equity NaN": lambda a: replace(a, equity=float("nan")),
    "equity zero": lambda a: replace(a, equity=0.0),
    "equity negative": lambda a: replace(a, equity=-5.0),
    "delta_total missing": lambda a: replace(a, delta_total=None),
    "delta_total as a string": lambda a: replace(a, delta_total="0.1"),
    "delta_total NaN": lambda a: replace(a, delta_total=float("nan")),
}
QUOTE: dict[str, Edit] = {
    "bid null": lambda q: replace(q, bid=None),
    "bid as a string": lambda q: replace(q, bid="89000"),
    "ask NaN": lambda q: replace(q, ask=float("nan")),
    "ask below bid": lambda q: replace(q, ask=q.bid - 100),
    "index zero": lambda q: replace(q, index_price=0.0),
    "mark at half the index": lambda q: replace(q, mark=q.index_price / 2),
    "bid and ask at twice the index": lambda q: replace(
        q, bid=2 * q.index_price, ask=2 * q.index_price + 1
    ),
    "timestamp naive": lambda q: replace(q, timestamp=q.timestamp.replace(tzinfo=None)),
    "timestamp a minute ahead": lambda q: replace(q, timestamp=q.timestamp + timedelta(minutes=1)),
    "timestamp ten minutes old": lambda q: replace(
        q, timestamp=q.timestamp - timedelta(minutes=10)
    ),
}


class Lying(CountingVenue):
    """One of the answers above, from the first read on."""

    positions_edit: Callable[[list[Position]], list[Position]] | None = None
    marks_edit: Edit | None = None
    account_edit: Edit | None = None
    quote_edit: Edit | None = None

    async def positions(self, currency: str) -> list[Position]:
        real = await self.inner.positions(currency)
        return type(self).positions_edit(real) if type(self).positions_edit else real

    async def marks(self, currency: str, instruments: Collection[str] | None = None) -> list[Mark]:
        real = await self.inner.marks(currency, instruments)
        edit = type(self).marks_edit
        if edit is None:
            return real
        held = [p.instrument.name for p in await self.inner.positions(currency)]
        target = next(n for n in held if n.endswith(("-C", "-P")))
        edited = [edit(m) if m.instrument_name == target else m for m in real]
        return [m for m in edited if m is not None]

    async def account(self, currency: str) -> Account:
        real = await self.inner.account(currency)
        return type(self).account_edit(real) if type(self).account_edit else real

    async def quote(self, instrument_name: str) -> Quote:
        real = await self.inner.quote(instrument_name)
        return type(self).quote_edit(real) if type(self).quote_edit else real


CASES: list[tuple[str, str, Any]] = (
    [(name, "positions_edit", staticmethod(e)) for name, e in POSITIONS.items()]
    + [(name, "marks_edit", staticmethod(e)) for name, e in MARKS.items()]
    + [(name, "account_edit", staticmethod(e)) for name, e in ACCOUNT.items()]
    + [(name, "quote_edit", staticmethod(e)) for name, e in QUOTE.items()]
)


@pytest.mark.parametrize(("name", "where", "edit"), CASES, ids=[c[0] for c in CASES])
async def test_a_malformed_venue_answer_is_a_recorded_skip_with_no_order(
    tmp_path: Path, name: str, where: str, edit: Any
) -> None:
    venue = type("Lie", (Lying,), {where: edit})
    app = stack(tmp_path, clock=FakeClock(NOW), wrap=venue, **TIGHT)
    result = await rebalance_once(app.ctx, "BTC")
    assert result.status is RebalanceStatus.SKIPPED, f"{name}: {result.status} {result.reason}"
    assert result.reason
    assert app.venue.count.placed == 0
    row = app.ledger.last_rebalances(1)[0]
    assert (row.status, row.reason) == (RebalanceStatus.SKIPPED, result.reason)


async def test_an_expired_option_held_without_a_mark_is_listed_as_skipped_not_dropped_silently(
    tmp_path: Path,
) -> None:
    venue = type(
        "Expired",
        (Lying,),
        {
            "positions_edit": staticmethod(lambda ps: _first_option(ps, _expired_without_mark)),
            "marks_edit": staticmethod(lambda m: None),
        },
    )
    app = stack(tmp_path, clock=FakeClock(NOW), wrap=venue, **TIGHT)
    result = await rebalance_once(app.ctx, "BTC")
    assert result.greeks is not None
    assert len(result.greeks.expired_skipped) == 1
    stored = app.ledger.last_rebalances(1)[0].greeks
    assert stored is not None
    assert stored.expired_skipped == result.greeks.expired_skipped
    assert app.venue.count.placed == 0  # the venue's delta still holds it: the read disagrees


async def test_a_partial_position_list_after_a_full_one_is_refused_against_the_ledger(
    tmp_path: Path,
) -> None:
    class DropsAnOption(CountingVenue):
        reads = 0

        async def positions(self, currency: str) -> list[Position]:
            self.reads += 1
            real = await self.inner.positions(currency)
            return real if self.reads == 1 else [p for p in real if p.instrument.name != PERP]

    app = stack(tmp_path, clock=FakeClock(NOW), wrap=DropsAnOption, **TIGHT)
    assert (await rebalance_once(app.ctx, "BTC")).status is RebalanceStatus.TRADED
    placed = app.venue.count.placed
    app.clock.advance(60)
    result = await rebalance_once(app.ctx, "BTC")
    assert result.status is RebalanceStatus.SKIPPED
    assert app.venue.count.placed == placed


# --- raw Deribit rows, at the mapping ---------------------------------------------------------

OPTION_ROW: dict[str, Any] = {
    "instrument_name": "BTC-12JAN26-90000-C",
    "kind": "option",
    "option_type": "call",
    "strike": 90000,
    "expiration_timestamp": 1768204800000,
    "min_trade_amount": 0.1,
    "tick_size": 0.0005,
    "contract_size": 1,
    "base_currency": "BTC",
    "settlement_currency": "BTC",
    "counter_currency": "USD",
}
SUMMARY_ROW: dict[str, Any] = {
    "instrument_name": "BTC-12JAN26-90000-C",
    "mark_price": 0.02,
    "mark_iv": 55.0,
    "underlying_price": 90100.0,
    "index_price": 90000.0,
    "creation_timestamp": 1767614400000,
}
TICKER_ROW: dict[str, Any] = {
    "instrument_name": PERP,
    "best_bid_price": 89999.5,
    "best_ask_price": 90000.5,
    "mark_price": 90000.0,
    "index_price": 90000.0,
    "timestamp": 1767614400000,
    "best_bid_amount": 1000,
    "best_ask_amount": 1000,
}
ACCOUNT_ROW: dict[str, Any] = {
    "currency": "BTC",
    "equity": 10.0,
    "balance": 10.0,
    "available_funds": 9.0,
    "delta_total": 0.5,
}
POSITION_ROW: dict[str, Any] = {"instrument_name": PERP, "size": -10, "average_price": 90000}


def _instrument(row: dict[str, Any]) -> Instrument:
    from bot.venues.deribit import mapping

    return mapping.instrument_from_row(row)


def _position(row: dict[str, Any]) -> Position:
    from bot.venues.deribit import mapping

    perp = replace(_instrument(OPTION_ROW), name=PERP)
    return mapping.position_from_row(row, perp)


def _summary(row: dict[str, Any]) -> Mark:
    from bot.venues.deribit import mapping

    return mapping.mark_from_summary(row, NOW)


def _ticker(row: dict[str, Any]) -> Quote:
    from bot.venues.deribit import mapping

    return mapping.quote_from_ticker(row)


def _account(row: dict[str, Any]) -> Account:
    from bot.venues.deribit import mapping

    return mapping.account_from_summary(row, "BTC", NOW)


def _without(row: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != key}


RAW: list[tuple[str, Callable[[dict[str, Any]], Any], dict[str, Any], str]] = [
    ("instrument kind unknown", _instrument, {**OPTION_ROW, "kind": "swap"}, "kind"),
    ("instrument kind missing", _instrument, _without(OPTION_ROW, "kind"), "kind"),
    ("instrument name null", _instrument, {**OPTION_ROW, "instrument_name": None}, "name"),
    ("option type unknown", _instrument, {**OPTION_ROW, "option_type": "straddle"}, "option"),
    ("strike NaN", _instrument, {**OPTION_ROW, "strike": float("nan")}, "strike"),
    ("expiry missing", _instrument, _without(OPTION_ROW, "expiration_timestamp"), "expiration"),
    ("position size missing", _position, _without(POSITION_ROW, "size"), "size"),
    ("position size null", _position, {**POSITION_ROW, "size": None}, "size"),
    ("position size word", _position, {**POSITION_ROW, "size": "ten"}, "size"),
    ("position size NaN", _position, {**POSITION_ROW, "size": float("nan")}, "size"),
    ("mark price missing", _summary, _without(SUMMARY_ROW, "mark_price"), "mark_price"),
    ("mark price NaN", _summary, {**SUMMARY_ROW, "mark_price": float("nan")}, "mark_price"),
    ("underlying null", _summary, {**SUMMARY_ROW, "underlying_price": None}, "underlying"),
    ("index missing", _summary, _without(SUMMARY_ROW, "index_price"), "price"),
    ("ticker bid null", _ticker, {**TICKER_ROW, "best_bid_price": None}, "best_bid_price"),
    ("ticker ask zero", _ticker, {**TICKER_ROW, "best_ask_price": 0}, "best_ask_price"),
    ("ticker timestamp missing", _ticker, _without(TICKER_ROW, "timestamp"), "timestamp"),
    ("ticker index a word", _ticker, {**TICKER_ROW, "index_price": "index"}, "index_price"),
    ("equity missing", _account, _without(ACCOUNT_ROW, "equity"), "equity"),
    ("equity NaN", _account, {**ACCOUNT_ROW, "equity": float("nan")}, "equity"),
    ("delta_total a word", _account, {**ACCOUNT_ROW, "delta_total": "flat"}, "delta_total"),
]


@pytest.mark.parametrize(("name", "read", "row", "field"), RAW, ids=[r[0] for r in RAW])
def test_a_malformed_deribit_row_raises_a_data_error_naming_the_field(
    name: str, read: Callable[[dict[str, Any]], Any], row: dict[str, Any], field: str
) -> None:
    with pytest.raises(DataError, match=field):
        read(row)


def test_a_summary_without_delta_total_maps_to_none_which_the_tracker_refuses() -> None:
    assert _account(_without(ACCOUNT_ROW, "delta_total")).delta_total is None


async def test_an_equity_too_large_to_store_is_a_recorded_skip_not_a_traceback(
    tmp_path: Path,
) -> None:
    venue = type(
        "Huge", (Lying,), {"account_edit": staticmethod(lambda a: replace(a, equity=1e20))}
    )
    app = stack(tmp_path, clock=FakeClock(NOW), wrap=venue, **TIGHT)
    result = await rebalance_once(app.ctx, "BTC")
    assert result.status is RebalanceStatus.SKIPPED
    assert "NUMERIC" in result.reason
    assert app.venue.count.placed == 0
    assert app.ledger.last_rebalances(1)[0].status is RebalanceStatus.SKIPPED
