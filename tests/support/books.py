"""Hand-built books for tests of the cycle's rooms (no venue needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.domain import (
    Account,
    Book,
    Instrument,
    InstrumentKind,
    Mark,
    OptionType,
    Position,
    Quote,
)

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

PERP = Instrument(
    name="BTC-PERPETUAL",
    currency="BTC",
    kind=InstrumentKind.PERPETUAL,
    contract_size=10,
    min_amount=10,
    amount_step=10,
    tick_size=0.5,
)


def option(strike: float, kind: OptionType, days: float = 7.0) -> Instrument:
    expiry = (NOW + timedelta(days=days)).replace(hour=8, minute=0, second=0, microsecond=0)
    letter = "C" if kind is OptionType.CALL else "P"
    return Instrument(
        name=f"BTC-{expiry.day}{expiry:%b%y}-{strike:.0f}-{letter}".upper(),  # BTC-4FEB26-…
        currency="BTC",
        kind=InstrumentKind.OPTION,
        contract_size=1,
        min_amount=0.1,
        amount_step=0.1,
        tick_size=0.0005,
        expiry=expiry,
        strike=strike,
        option_type=kind,
    )


def book(
    *,
    hedge: float = 0.0,
    price: float = 90_000.0,
    equity: float = 10.0,
    options: tuple[tuple[Instrument, float, float], ...] = (),
    as_of: datetime = NOW,
    spread: float = 0.5,
) -> Book:
    """A BTC book: ``options`` are (instrument, size, iv); ``hedge`` is the perp size in USD."""
    positions = [Position(inst, size) for inst, size, _ in options]
    marks = {
        inst.name: Mark(inst.name, 0.02, price, price, as_of, mark_iv=iv) for inst, _, iv in options
    }
    if hedge:
        positions.append(Position(PERP, hedge, price))
    marks[PERP.name] = Mark(PERP.name, price, price, price, as_of)
    return Book(
        currency="BTC",
        as_of=as_of,
        positions=tuple(positions),
        marks=marks,
        account=Account("BTC", equity, equity, equity, None, timestamp=as_of),
        hedge_instrument=PERP,
        hedge_quote=Quote(PERP.name, price - spread, price + spread, price, price, as_of, 1e6, 1e6),
    )
