"""Cycle compute: from the position tracker's Book to an allowed order, no I/O.

One cycle's arithmetic as the daemon runs it: :func:`bot.greeks.portfolio_greeks`, then
:func:`bot.policy.decide` (the gamma-scaled band, which reads the most of the book), then the
risk gate against an in-memory SQLite ledger (its trading state, order rate and notional
queries), on BTC books of 10, 1,000 and 10,000 options spread over 12 expiries; the book is
far enough off its band that the policy trades, so the gate runs every check. Targets
(issue 13): ≤ 1 ms, ≤ 3 ms and ≤ 20 ms of CPU time; the target itself is the row's baseline,
so a ratio of 1.0x or more meets it. A wall-time row follows each, without a target.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np

from bench.common import Row, seconds_per_call
from bot.clock import FakeClock
from bot.config import Settings
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
from bot.greeks import deribit_expiry, portfolio_greeks
from bot.policy import decide
from bot.risk import RiskGate
from bot.store.db import open_ledger

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
TARGET_MS = {10: 1.0, 1_000: 3.0, 10_000: 20.0}
# CPU time carries the target: the cycle runs on one thread, and on a shared machine its wall
# time is the CPU time stretched by everyone else's load (the wall row shows by how much).
CLOCKS = (time.process_time, time.perf_counter)
PERP = Instrument("BTC-PERPETUAL", "BTC", InstrumentKind.PERPETUAL, 10, 10, 10, 0.5)


def book(n: int, seed: int = 11) -> Book:
    """``n`` option positions on 12 weekly expiries around 90k, plus a perpetual hedge that
    leaves 0.6 coin of delta: outside the band, so the policy trades, and the trade reduces the
    hedge position, so the risk gate allows it whatever the size of the book."""
    rng = np.random.default_rng(seed)
    expiries = [deribit_expiry((NOW + timedelta(days=7 * (i + 1))).date()) for i in range(12)]
    positions = []
    marks = {}
    for i in range(n):
        expiry = expiries[i % len(expiries)]
        strike = float(round(90_000 * np.exp(rng.normal(0, 0.2)), -3))
        kind = OptionType.CALL if rng.random() < 0.5 else OptionType.PUT
        name = f"BTC-{expiry:%d%b%y}-{strike:.0f}-{kind.value[0].upper()}-{i}".upper()
        inst = Instrument(
            name,
            "BTC",
            InstrumentKind.OPTION,
            1,
            0.1,
            0.1,
            0.0005,
            expiry=expiry,
            strike=strike,
            option_type=kind,
        )
        positions.append(Position(inst, float(rng.choice([-1, 1]) * rng.integers(1, 20) / 10)))
        marks[name] = Mark(name, 0.02, 90_000, 90_500, NOW, mark_iv=float(rng.uniform(0.4, 0.9)))
    marks[PERP.name] = Mark(PERP.name, 90_000, 90_000, 90_000, NOW)
    options = Book(
        currency="BTC",
        as_of=NOW,
        positions=tuple(positions),
        marks=marks,
        account=Account("BTC", 100.0, 100.0, 100.0, None, timestamp=NOW),
        hedge_instrument=PERP,
        hedge_quote=Quote(PERP.name, 89_999.5, 90_000.5, 90_000, 90_000, NOW, 1e6, 1e6),
    )
    delta = portfolio_greeks(options, NOW).delta_coin
    side = -1.0 if delta > 0 else 1.0  # the hedge's sign; the 0.6 left over is on its side
    hedge_usd = round((-delta + 0.6 * side) * 90_000, -1)
    return replace(options, positions=(*positions, Position(PERP, hedge_usd, 90_000.0)))


def run() -> list[Row]:
    settings = Settings.model_validate({"policy": {"kind": "gamma_scaled"}})
    gate = RiskGate(settings.risk, FakeClock(NOW), open_ledger("sqlite://", create=True))
    rows = []
    for n, target in TARGET_MS.items():
        b = book(n)

        def cycle(base: Book = b) -> object:
            b = replace(base)  # the tracker's output is a new Book every cycle: nothing cached
            greeks = portfolio_greeks(b, NOW)
            decision = decide(
                b, greeks, settings.policy, settings.hedge.target_mode, 0.0, NOW, None
            )
            return gate.check(decision, b)

        verdict = cycle()
        if not getattr(verdict, "allowed", False):  # a gate that fails closed measures nothing
            raise AssertionError(f"the benchmark's cycle does not trade: {verdict}")
        cpu, wall = (seconds_per_call(cycle, clock=c) * 1e3 for c in CLOCKS)
        for what, ms, goal in (("CPU", cpu, 1.0), ("wall", wall, None)):
            rows.append(
                Row(
                    f"cycle compute ({what}), {n:,} options",
                    ms,
                    " ms",
                    f"target {target:g} ms",
                    target,
                    higher_is_better=False,
                    target=goal,
                )
            )
    return rows
