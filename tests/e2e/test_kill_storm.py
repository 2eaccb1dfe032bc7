"""The end-to-end kill storm: ``hedgebot sim`` and the daemon as separate processes over one
simulated day, at least 50 SIGKILLs of the daemon (many right around an order's send, ack or
fill) and 10 restarts of the venue, then the venue's own record compared with the ledger.

The venue's record is its state file (every order and trade it ever held, including those a
restarted venue no longer shows, as Deribit forgets closed orders after a restart). Seeded:
``HEDGEBOT_STORM_SEED`` replays or varies the schedule; a failure prints the command.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.domain import OrderStatus
from bot.store.db import make_engine, open_ledger
from bot.store.paper import SqlPaperStore
from tests.support.databases import BACKENDS, database_url
from tests.support.storm_kit import START, Storm, StormFigures, StormPlan, blows

pytestmark = pytest.mark.e2e

SEED = int(os.environ.get("HEDGEBOT_STORM_SEED", "12"))
PERP = "BTC-PERPETUAL"


def replay_command(backend: str) -> str:
    return (
        f"HEDGEBOT_STORM_SEED={SEED} .venv/bin/pytest tests/e2e/test_kill_storm.py -s -k {backend}"
    )


@pytest.fixture(params=BACKENDS)
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from database_url(request.param, tmp_path)


def compare(storm: Storm, db_url: str) -> dict[str, int]:
    """The venue's record against the ledger; raises AssertionError on any difference."""
    venue = SqlPaperStore(make_engine(storm.sim_db)).load()
    ledger = open_ledger(db_url)
    try:
        orders = [o for o in venue.orders.values() if o.label.startswith("hb-")]
        trades = [t for t in venue.trades if t.label.startswith("hb-")]
        fills = ledger.fills()
        rows = {o.label: o for o in ledger.orders()}
        ids = Counter(f.trade_id for f in fills)
        assert [t for t, n in ids.items() if n > 1] == [], "a venue trade recorded twice"
        assert sorted(ids) == sorted(t.trade_id for t in trades), "ledger fills != venue trades"
        labels = Counter(o.label for o in orders)
        assert [label for label, n in labels.items() if n > 1] == [], "a label sent twice"
        missing = [o.label for o in orders if o.label not in rows]
        assert missing == [], f"venue orders missing from the ledger: {missing}"
        wrong = [o.label for o in orders if rows[o.label].venue_order_id != o.venue_order_id]
        assert wrong == [], f"ledger rows naming another venue order: {wrong}"
        unresolved = [r.label for r in rows.values() if not r.status.terminal]
        assert unresolved == [], f"orders the day ended with unresolved: {unresolved}"
        resting = [o.label for o in orders if o.status is OrderStatus.OPEN]
        assert resting == [], f"orders left resting at the venue after the stop: {resting}"
        held = venue.positions[PERP].size if PERP in venue.positions else 0.0
        assert ledger.hedge_position_from_fills(PERP) == pytest.approx(held, abs=1e-9)
        return {
            "venue_orders": len(orders),
            "venue_trades": len(trades),
            "ledger_orders": len(rows),
            "ledger_fills": len(fills),
            "position": int(held),
        }
    finally:
        ledger.close()


def report(figures: StormFigures, counts: dict[str, int], backend: str) -> str:
    moments = ", ".join(f"{k} {v}" for k, v in sorted(figures.kills_by_event.items()))
    return (
        f"\nkill storm ({backend}, seed {SEED}): {figures.kills} daemon SIGKILLs ({moments}), "
        f"{figures.sim_restarts} venue restarts, {figures.daemons} daemon starts "
        f"({figures.refused_starts} refused by start-up reconciliation and restarted), "
        f"{counts['venue_orders']} venue orders, {counts['venue_trades']} venue trades, "
        f"{counts['ledger_fills']} ledger fills, position {counts['position']:+,} USD, "
        f"{figures.sim_hours:.1f} simulated hours, {figures.wall_s:.1f} s wall"
        f"\nreplay: {replay_command(backend)}"
    )


def test_a_simulated_day_of_sigkills_and_venue_restarts_loses_no_fill_and_sends_nothing_twice(
    tmp_path: Path, ledger_url: str
) -> None:
    backend = ledger_url.split(":")[0].split("+")[0]
    plan = StormPlan(seed=SEED)
    storm = Storm(tmp_path, ledger_url, plan)
    try:
        figures = storm.run()
        counts = compare(storm, ledger_url)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nreplay: {replay_command(backend)}") from exc
    finally:
        storm.close()
    print(report(figures, counts, backend))
    assert figures.kills >= plan.kills
    assert figures.sim_restarts >= plan.sim_restarts
    assert figures.sim_hours >= plan.hours
    assert counts["venue_trades"] > 0


def test_the_storm_schedule_holds_fifty_daemon_kills_and_ten_venue_restarts_from_its_seed() -> None:
    plan = StormPlan(seed=SEED)
    schedule = blows(plan)
    assert schedule == blows(StormPlan(seed=SEED))
    assert schedule != blows(StormPlan(seed=SEED + 1))
    kills = [b for b in schedule if b.target in ("daemon", "both")]
    venue = [b for b in schedule if b.target in ("sim", "both")]
    assert len(kills) >= plan.kills
    assert len(venue) == plan.sim_restarts
    latest = [b.by for b in schedule]
    assert latest == sorted(latest)
    assert latest[0] > START
    assert latest[-1] < START + timedelta(hours=plan.hours)
