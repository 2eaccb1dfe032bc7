"""``hedgebot check`` against the simulated venue and the independent replay server."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.audit import rebaseline
from bot.cli.check import Check, run_checks, scope_check
from bot.clock import FakeClock, SystemClock
from bot.config import Settings, load_settings
from bot.labels import Labels
from bot.lock import BookLease, account_identity, book_key
from bot.sim.faults import WireFaultPlan
from bot.store.db import make_engine, upgrade
from bot.store.lease import LeaseStore
from bot.store.ledger import Ledger
from tests.support.sim_server_kit import KEY, NOW, PERP, SECRET, raw_get, running


def _settings(tmp_path: Path, sim_url: str, **venue: Any) -> Settings:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    return load_settings(
        None,
        venue={"kind": "sim", "sim_url": sim_url, "api_key": KEY, "api_secret": SECRET, **venue},
        database={"url": db, "paper_url": f"sqlite:///{tmp_path / 'paper.db'}"},
    )


def _by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


async def test_check_against_the_sim_passes_every_check_and_plans_the_first_hedge(
    tmp_path: Path,
) -> None:
    async with running() as sim:
        settings = _settings(tmp_path, sim.url)
        upgrade(settings.database.url)
        checks = _by_name(await run_checks(settings, FakeClock(NOW)))
    assert {c.status for c in checks.values()} == {"ok"}, checks
    assert "0.000s" in checks["clock"].detail
    assert checks["key scopes"].detail == "trade yes, withdraw no"
    assert checks["account"].detail.startswith("main account")
    assert "10 USD a contract" in checks["facts BTC"].detail
    assert checks["plan BTC"].detail == "no trade: in_band"  # the sim starts delta-flat


async def test_check_fails_a_venue_clock_beyond_the_limit_and_a_ledger_without_schema(
    tmp_path: Path,
) -> None:
    async with running(fault_plan=WireFaultPlan(clock_offset_s=30.0)) as sim:
        settings = _settings(tmp_path, sim.url)
        checks = _by_name(await run_checks(settings, FakeClock(NOW)))
    assert checks["clock"].status == "fail"
    assert "NTP" in checks["clock"].detail
    assert checks["ledger"].status == "fail"
    assert "hedgebot db upgrade" in checks["ledger"].detail


async def test_check_fails_settings_facts_that_contradict_the_venue(tmp_path: Path) -> None:
    facts = {
        "BTC": {
            "perpetual": "BTC-PERPETUAL",
            "perp_contract_usd": 100,
            "perp_min_amount": 10,
            "perp_amount_step": 10,
            "perp_tick_size": 0.5,
            "option_min_amount": 0.1,
        }
    }
    async with running() as sim:
        settings = _settings(tmp_path, sim.url, facts=facts)
        upgrade(settings.database.url)
        checks = _by_name(await run_checks(settings, FakeClock(NOW)))
    assert checks["facts BTC"].status == "fail"
    assert "perp_contract_usd = 100" in checks["facts BTC"].detail


@pytest.mark.parametrize(
    ("scope", "allow", "status", "words"),
    [
        ("connection mainaccount trade:read_write wallet:read", False, "ok", "withdraw no"),
        ("connection trade:read wallet:read", False, "fail", "cannot trade"),
        ("connection trade:read_write wallet:read_write", False, "fail", "may WITHDRAW"),
        ("connection trade:read_write wallet:read_write", True, "warn", "withdraw YES"),
    ],
)
def test_key_scopes_trade_is_required_and_withdraw_refused_unless_allowed(
    scope: str, allow: bool, status: str, words: str
) -> None:
    check = scope_check(scope, allow)
    assert check.status == status
    assert words in check.detail


def test_hedgebot_check_exits_non_zero_with_one_line_when_the_venue_does_not_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli.main import main

    config = tmp_path / "config.yaml"
    config.write_text(
        "venue:\n  kind: sim\n  sim_url: http://127.0.0.1:9\n  timeout_seconds: 1\n"
        f"database:\n  url: sqlite:///{tmp_path / 'l.db'}\n"
    )
    assert main(["--config", str(config), "check"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "hedgebot check: failed: connectivity, ledger"


async def test_check_warns_of_a_hedge_position_the_ledger_does_not_know(tmp_path: Path) -> None:
    from bot.domain import OrderRequest, OrderType, Side

    async with running() as sim:
        await sim.venue.place_order(
            OrderRequest("manual-1", "BTC-PERPETUAL", Side.BUY, 1000.0, OrderType.MARKET)
        )
        settings = _settings(tmp_path, sim.url)
        upgrade(settings.database.url)
        checks = _by_name(await run_checks(settings, FakeClock(NOW)))
    assert checks["positions BTC"].status == "warn"
    assert (
        "BTC-PERPETUAL +1,000 held, the ledger knows none of it" in checks["positions BTC"].detail
    )


async def test_check_warns_of_a_live_daemon_on_the_book_and_fails_another_hedgebots_order(
    tmp_path: Path,
) -> None:
    """Preflight before a second start: the book's lease is held, and a resting order carries
    another ledger's hedgebot label (two ledgers on one account double every hedge)."""
    other = Labels("hb", "0badc0de").make("0123456789abcdef", 1)
    async with running() as sim:
        settings = _settings(tmp_path, sim.url)
        upgrade(settings.database.url)
        _, ticker = await raw_get(sim, "public/ticker", {"instrument_name": PERP})
        price = round(ticker["result"]["best_bid_price"] * 0.9)
        order = {"instrument_name": PERP, "amount": 10, "price": price, "label": other}
        await raw_get(sim, "private/buy", order)
        book = book_key(account_identity(settings, False), "BTC")
        store = LeaseStore(make_engine(settings.database.url))
        lease = BookLease(store, (book,), SystemClock(), 60.0, "daemon", pid=4242, host="box")
        with lease:
            checks = _by_name(await run_checks(settings, FakeClock(NOW)))
    assert checks["daemon BTC"].status == "warn"
    assert "pid 4242 on box" in checks["daemon BTC"].detail
    # no dry run beside a live daemon: it would read (and record) its orders mid-flight
    assert checks["plan BTC"].detail == "not planned: the live daemon hedges it"
    assert checks["other hedgebots BTC"].status == "fail"
    assert other in checks["other hedgebots BTC"].detail
    assert "0badc0de" in checks["other hedgebots BTC"].detail


async def test_check_passes_a_book_whose_last_daemon_is_gone(tmp_path: Path) -> None:
    async with running() as sim:
        settings = _settings(tmp_path, sim.url)
        upgrade(settings.database.url)
        book = book_key(account_identity(settings, False), "BTC")
        store = LeaseStore(make_engine(settings.database.url))
        BookLease(store, (book,), FakeClock(NOW), 60.0, "daemon").acquire()  # expired long ago
        checks = _by_name(await run_checks(settings, FakeClock(NOW)))
    assert checks["daemon BTC"] == Check("daemon BTC", "ok", "no live daemon holds this book")
    assert checks["other hedgebots BTC"].status == "ok"


async def test_check_passes_another_hedgebots_trade_from_before_the_rebaseline_that_accepted_it(
    tmp_path: Path,
) -> None:
    """The other hedgebot was stopped and `hedgebot db rebaseline` accepted what it left: the
    daemon starts and trades (start-up looks at trades from the baseline on), so check must
    not fail the account for the rest of the day saying the daemon would halt."""
    other = Labels("hb", "0badc0de").make("0123456789abcdef", 1)
    async with running() as sim:
        settings = _settings(tmp_path, sim.url)
        upgrade(settings.database.url)
        order = {"instrument_name": PERP, "amount": 10, "type": "market", "label": other}
        _, bought = await raw_get(sim, "private/buy", order)
        assert bought["result"]["order"]["order_state"] == "filled"
        later = NOW + timedelta(minutes=30)
        rebaseline(Ledger(make_engine(settings.database.url)), PERP, 10.0, later)
        sim.clock.advance(35 * 60)
        checks = _by_name(await run_checks(settings, FakeClock(sim.clock.now())))
    assert checks["other hedgebots BTC"].status == "ok", checks["other hedgebots BTC"]
