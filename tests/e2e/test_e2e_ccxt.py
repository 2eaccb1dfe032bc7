"""End to end through ccxt: hedgebot against ``hedgebot sim`` running in another process, on
lockstep time (the venue owns the clock and the daemon advances it when it sleeps).

Only 127.0.0.1; every process is bounded in time and stopped by the test.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from bot.config import load_settings
from bot.domain import Fill, OrderStatus
from bot.store.db import open_ledger
from bot.venues.deribit.adapter import DeribitVenue
from bot.venues.sim_clock import SimVenueClock
from tests.support.e2e_kit import (
    KEY,
    SECRET,
    SimProcess,
    base_env,
    cli,
    client_env,
    events,
    run,
    sim_venue,
)
from tests.support.e2e_kit import stop as stop_process

pytestmark = pytest.mark.e2e


async def venue_fills(sim: SimProcess, currencies: tuple[str, ...]) -> list[Fill]:
    """Every fill the venue has for us, read through ccxt at the venue's own time."""
    clock = SimVenueClock.connect(sim.url)
    settings = load_settings(
        None,
        venue={
            "kind": "deribit",
            "network": "custom",
            "url": sim.url,
            "api_key": KEY,
            "api_secret": SECRET,
            "currencies": currencies,
        },
    )
    venue = DeribitVenue(settings.venue, clock, rng=np.random.default_rng(1))
    try:
        return [f for c in currencies for f in await venue.fills(c)]
    finally:
        await venue.close()
        await clock.close()


def orders_per_label(fills: list[Fill]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for f in fills:
        out[f.label].add(f.venue_order_id)
    return out


def read_while_writing(home: Path, env: dict[str, str], daemon: subprocess.Popen[str]) -> int:
    """``status`` and ``report`` against the ledger the running daemon writes; returns how
    many reads ran. Each must succeed: no "database is locked" (SQLite WAL + busy timeout)."""
    reads = 0
    deadline = time.monotonic() + 150
    while daemon.poll() is None and time.monotonic() < deadline and reads < 6:
        for args in (("status", "--json"), ("report", "--json")):
            done = run(home, env, *args, timeout=120)
            if daemon.poll() is not None and done.returncode != 0:
                break  # the run ended under us: nothing to compare with
            assert done.returncode == 0, done.stderr[-2000:]
            assert "database is locked" not in done.stderr
            reads += 1
    return reads


def test_four_simulated_hours_of_btc_and_eth_hedging_have_no_duplicate_order_and_every_fill_once(
    tmp_path: Path, db_url: str
) -> None:
    env = base_env(tmp_path, pace=480)  # paced to about 30 wall seconds: time for the readers
    with sim_venue(tmp_path, env) as sim:
        client = client_env(
            env,
            sim,
            HEDGEBOT__DATABASE__URL=db_url,
            HEDGEBOT__VENUE__CURRENCIES='["BTC","ETH"]',
            HEDGEBOT__POLICY__CHECK_SECONDS="300",
            HEDGEBOT__POLICY_BY_CURRENCY='{"ETH": {"delta_band": {"band": 3.0}}}',
            HEDGEBOT__DAEMON__HEARTBEAT_SECONDS="21600",
        )
        assert run(tmp_path, client, "db", "upgrade").returncode == 0
        t0 = time.monotonic()
        daemon = subprocess.Popen(
            cli(tmp_path, "run", "--duration", str(4 * 3600)),
            env=client,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            reads = read_while_writing(tmp_path, client, daemon)
            _out, err = daemon.communicate(timeout=180)
        finally:
            stop_process(daemon)
        wall = time.monotonic() - t0
        assert daemon.returncode == 0, err[-2000:]
        assert reads >= 2
        venue = asyncio.run(venue_fills(sim, ("BTC", "ETH")))
    ledger = open_ledger(db_url)
    ours = [f for f in venue if f.label.startswith("hb-")]
    recorded = ledger.fills()
    assert sorted(f.trade_id for f in recorded) == sorted(f.trade_id for f in ours)
    duplicates = {label: ids for label, ids in orders_per_label(ours).items() if len(ids) > 1}
    assert duplicates == {}
    orders = ledger.orders()
    assert all(o.status.terminal for o in orders)
    rebalances = ledger.rebalances()
    assert len(rebalances) == 2 * 4 * 12  # every tick of both currencies, none skipped
    assert {r.currency for r in rebalances if r.status == "traded"} == {"BTC", "ETH"}
    assert not [r for r in rebalances if r.status in ("skipped", "failed")]
    print(
        f"\ne2e four hours ({db_url.split(':')[0]}): {len(ledger.rebalances())} rebalances, "
        f"{len(orders)} orders, {len(recorded)} fills, {len(duplicates)} duplicates, "
        f"{reads} reads beside the daemon, {wall:.1f} s wall"
    )
    ledger.close()


def test_a_timeout_after_an_accepted_order_ends_with_exactly_one_hedge(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    plan = '{"seed": 1, "accept_then_drop": [1], "drop_mode": "hold", "hold_seconds": 20}'
    with sim_venue(tmp_path, env, "--faults", plan) as sim:
        client = client_env(
            env,
            sim,
            HEDGEBOT__VENUE__TIMEOUT_SECONDS="2",
            HEDGEBOT__HEDGE__TARGET_DELTA="1.0",
            HEDGEBOT__EXECUTION__POST_ONLY="false",
        )
        run(tmp_path, client, "db", "upgrade")
        first = run(tmp_path, client, "rebalance", "--yes")
        assert first.returncode == 0, first.stderr[-2000:]
        assert "order_outcome_unknown" in [e["event"] for e in events(first.stderr)]
        assert SECRET not in first.stdout + first.stderr  # secrets are never logged
        assert "BTC: traded" in first.stdout
        second = run(tmp_path, client, "rebalance", "--yes")
        assert "BTC: no_trade" in second.stdout, second.stdout + second.stderr[-2000:]
        venue = asyncio.run(venue_fills(sim, ("BTC",)))
    per_label = orders_per_label([f for f in venue if f.label.startswith("hb-")])
    assert len(per_label) == 1
    assert all(len(ids) == 1 for ids in per_label.values())
    db_bytes = b"".join(p.read_bytes() for p in tmp_path.glob("live.db*"))  # with its WAL
    assert SECRET.encode() not in db_bytes  # nor stored
    assert KEY.encode() not in db_bytes
    ledger = open_ledger(client["HEDGEBOT__DATABASE__URL"])
    (order,) = ledger.orders()
    assert order.status is OrderStatus.FILLED
    assert [e.status for e in ledger.order_events(order.label)][:2] == [
        OrderStatus.PENDING,
        OrderStatus.UNKNOWN,
    ]


def test_a_restart_mid_chase_readopts_the_working_order(tmp_path: Path) -> None:
    env = base_env(tmp_path, pace=60)  # the 600 s chase wait lasts 10 s of wall time
    with sim_venue(tmp_path, env) as sim:
        client = client_env(
            env,
            sim,
            HEDGEBOT__HEDGE__TARGET_DELTA="0.5",
            HEDGEBOT__POLICY__DELTA_BAND__BAND="0.05",
            HEDGEBOT__POLICY__CHECK_SECONDS="1",
            HEDGEBOT__EXECUTION__URGENT_BAND_MULTIPLE="1000",
            HEDGEBOT__EXECUTION__REPRICE_SECONDS="600",
            HEDGEBOT__DAEMON__STOP_GRACE_SECONDS="1",
            HEDGEBOT__DAEMON__CANCEL_ON_STOP="false",  # leave it working, as a crash would
        )
        run(tmp_path, client, "db", "upgrade")
        daemon = subprocess.Popen(
            cli(tmp_path, "run"),
            env=client,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        ledger = open_ledger(client["HEDGEBOT__DATABASE__URL"])
        try:
            deadline = time.monotonic() + 40
            working = []
            while time.monotonic() < deadline and not working:
                time.sleep(0.2)
                working = [o for o in ledger.orders() if o.status is OrderStatus.OPEN]
            assert working, "the daemon never left a post-only order working"
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=15)
        finally:
            stop_process(daemon)
        (label,) = [o.label for o in working]
        assert ledger.order(label).status is OrderStatus.OPEN  # type: ignore[union-attr]
        # A fresh process with the same ledger; this one chases briefly, then goes IOC.
        quick = {
            **client,
            "HEDGEBOT__EXECUTION__REPRICE_SECONDS": "1",
            "HEDGEBOT__EXECUTION__MAX_REPRICES": "0",
        }
        again = run(tmp_path, quick, "run", "--max-cycles", "1")
        assert again.returncode == 0, again.stderr[-2000:]
        log = events(again.stderr)
        assert any(e["event"] == "order_readopted" and e["label"] == label for e in log)
        venue = asyncio.run(venue_fills(sim, ("BTC",)))
    row = ledger.order(label)
    assert row is not None
    assert row.status in (OrderStatus.CANCELLED, OrderStatus.FILLED)
    per_label = orders_per_label([f for f in venue if f.label.startswith("hb-")])
    assert all(len(ids) == 1 for ids in per_label.values())


def test_sigterm_cancels_the_resting_post_only_order_at_the_venue(tmp_path: Path) -> None:
    env = base_env(tmp_path, pace=5)  # a simulated second lasts 0.2 s: the order stays working
    with sim_venue(tmp_path, env) as sim:
        client = client_env(
            env,
            sim,
            HEDGEBOT__HEDGE__TARGET_DELTA="0.5",
            HEDGEBOT__POLICY__DELTA_BAND__BAND="0.05",
            HEDGEBOT__POLICY__CHECK_SECONDS="1",
            HEDGEBOT__EXECUTION__URGENT_BAND_MULTIPLE="1000",
            HEDGEBOT__EXECUTION__REPRICE_SECONDS="600",
            HEDGEBOT__DAEMON__STOP_GRACE_SECONDS="1",
        )
        run(tmp_path, client, "db", "upgrade")
        daemon = subprocess.Popen(
            cli(tmp_path, "run"),
            env=client,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        ledger = open_ledger(client["HEDGEBOT__DATABASE__URL"])
        try:
            deadline = time.monotonic() + 40
            working = []
            while time.monotonic() < deadline and not working:
                time.sleep(0.2)
                working = [o for o in ledger.orders() if o.status is OrderStatus.OPEN]
            assert working, "the daemon never left a post-only order working"
            daemon.send_signal(signal.SIGTERM)
            _out, err = daemon.communicate(timeout=15)
        finally:
            stop_process(daemon)
        assert daemon.returncode == 0, err[-2000:]
        (label,) = [o.label for o in working]
        row = ledger.order(label)
        assert row is not None
        assert row.status in (OrderStatus.CANCELLED, OrderStatus.FILLED)
        assert "daemon stopped" in ledger.order_events(label)[-1].detail
        status = run(tmp_path, client, "status", "--json")
        assert status.returncode == 0, status.stderr[-2000:]
        assert json.loads(status.stdout)["leases"] == []  # released on the way out
        open_at_venue = asyncio.run(venue_open_orders(sim))
    assert open_at_venue == []


async def venue_open_orders(sim: SimProcess) -> list[str]:
    """Our open orders at the venue, read through ccxt at the venue's own time."""
    clock = SimVenueClock.connect(sim.url)
    settings = load_settings(
        None,
        venue={
            "kind": "deribit",
            "network": "custom",
            "url": sim.url,
            "api_key": KEY,
            "api_secret": SECRET,
        },
    )
    venue = DeribitVenue(settings.venue, clock, rng=np.random.default_rng(1))
    try:
        return [o.label for o in await venue.open_orders("BTC")]
    finally:
        await venue.close()
        await clock.close()
