"""Seeded soak: many seeds × many cycles with random faults and crashes, every invariant after
every cycle. Sized for the normal suite; ``HEDGEBOT_SOAK_SEEDS`` and ``HEDGEBOT_SOAK_CYCLES``
make it longer, ``HEDGEBOT_SOAK_SEED`` replays one seed. A failure prints the one command that
replays it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.faults.kit import Faults, World

SEEDS = int(os.environ.get("HEDGEBOT_SOAK_SEEDS", "8"))
CYCLES = int(os.environ.get("HEDGEBOT_SOAK_CYCLES", "20"))
ONE = os.environ.get("HEDGEBOT_SOAK_SEED")

CHANCES = {
    "accept_then_timeout": 0.08,
    "timeout_before_accept": 0.04,
    "hidden": 0.5,
    "reject": 0.04,
    "rate_limited": 0.04,
    "understate": 0.05,
    "transient_read": 0.03,
    "crash_before_send": 0.03,
    "crash_after_send": 0.04,
    "crash_after_fill": 0.03,
    "db_before_send": 0.02,
    "db_after_send": 0.02,
}


def replay_command(seed: int) -> str:
    return (
        f"HEDGEBOT_SOAK_SEED={seed} HEDGEBOT_SOAK_CYCLES={CYCLES} "
        ".venv/bin/pytest tests/faults/test_soak.py -q"
    )


def seeds() -> list[int]:
    return [int(ONE)] if ONE is not None else list(range(SEEDS))


@pytest.mark.parametrize("seed", seeds())
async def test_soak_seed_keeps_every_invariant_through_random_faults_and_crashes(
    seed: int, tmp_path: Path
) -> None:
    faults = Faults(seed=seed, p=dict(CHANCES), hide_for=int(seed % 4) - 1)
    post_only = seed % 2 == 0
    w = World(tmp_path, faults, execution={"post_only": post_only})
    try:
        for _ in range(CYCLES):
            await w.cycle()
        faults.p = {}  # the storm passes: everything must settle
        for _ in range(3):
            await w.cycle()
        assert all(o.status.terminal for o in w.ledger.orders()), "orders left unresolved"
    except AssertionError as exc:
        raise AssertionError(
            f"seed {seed} failed at cycle {w.cycles} (crashes {w.crashes}): {exc}\n"
            f"replay: {replay_command(seed)}"
        ) from exc
    traded = sum(1 for r in w.results if r is not None and r.status == "traded")
    assert traded > 0, f"seed {seed}: no cycle traded; the soak tested nothing"
    faults_fired = sum(faults.fired.values())
    print(
        f"soak seed {seed}: {w.cycles} cycles, {traded} traded, {len(w.truth._orders)} venue "
        f"orders, {faults_fired} faults, {w.crashes} crashes: {dict(faults.fired)}"
    )
