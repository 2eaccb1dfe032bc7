"""Two ledgers on one venue account would double every hedge; the venue shows them to each other.

Another hedgebot's open orders or trades (its ledger id in the label, or our prefix and a label
this ledger never recorded) halt trading with one line naming both ledgers, at start and in any
cycle, and nothing of the other's is touched. An order stamped with our own ledger's id that the
ledger lost is ours: recovered, never halted on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.app import App, build_app
from bot.audit import rebaseline
from bot.clock import FakeClock
from bot.cycle import rebalance_once
from bot.domain import OrderRequest, OrderType, RebalanceStatus, Side, TimeInForce, TradingState
from bot.labels import Labels
from bot.reconcile import ReconciliationFailed, reconcile
from bot.store.db import open_ledger
from bot.store.identity import ledger_id
from bot.units import MAX_LABEL_LENGTH
from tests.support.books import NOW
from tests.support.harness import CountingVenue, stack

TIGHT = {
    "policy": {"kind": "delta_band", "delta_band": {"band": 0.05}},
    "hedge": {"target_delta": 0.5},
}
PERP = "BTC-PERPETUAL"


def second_ledger(first: App, tmp_path: Path) -> App:
    """Another hedgebot with its own ledger, on the first one's venue account."""
    ledger = open_ledger(f"sqlite:///{tmp_path}/other.db", create=True)
    return build_app(
        first.settings,
        paper=True,
        clock=first.clock,
        venue=CountingVenue(first.venue),
        ledger=ledger,
    )


def ioc(label: str, amount: float) -> OrderRequest:
    return OrderRequest(
        label=label,
        instrument_name=PERP,
        side=Side.BUY,
        amount=amount,
        order_type=OrderType.MARKET,
        time_in_force=TimeInForce.IOC,
    )


def placed(app: App) -> int:
    venue: Any = app.venue
    return int(venue.count.placed)


async def test_a_second_ledger_on_the_same_account_refuses_to_start_naming_both_and_halts(
    tmp_path: Path,
) -> None:
    first = stack(tmp_path, clock=FakeClock(NOW), wrap=CountingVenue, **TIGHT)
    await reconcile(first.ctx, "BTC")
    assert (await rebalance_once(first.ctx, "BTC")).status is RebalanceStatus.TRADED
    other = second_ledger(first, tmp_path)
    ours, theirs = first.ctx.executor.labels.ledger_id, other.ctx.executor.labels.ledger_id
    assert ours != theirs
    with pytest.raises(ReconciliationFailed, match="another hedgebot") as caught:
        await reconcile(other.ctx, "BTC")
    assert ours in str(caught.value)
    assert theirs in str(caught.value)
    assert "\n" not in str(caught.value)
    assert other.ledger.get_trading_state().state is TradingState.HALTED
    assert other.ledger.fills() == []  # the other's fills are not recorded as ours
    assert placed(other) == 0


async def test_another_hedgebot_appearing_mid_run_halts_the_next_cycle_and_its_order_is_left_alone(
    tmp_path: Path,
) -> None:
    first = stack(tmp_path, clock=FakeClock(NOW), wrap=CountingVenue, **TIGHT)
    other = second_ledger(first, tmp_path)
    await reconcile(other.ctx, "BTC")  # alone so far: starts
    quote = await first.venue.quote(PERP)
    resting = OrderRequest(
        label=first.ctx.executor.labels.make("0123456789abcdef", 1),
        instrument_name=PERP,
        side=Side.SELL,
        amount=100,
        price=round(quote.ask * 1.2),
        post_only=True,
    )
    await first.venue.place_order(resting)  # the first hedgebot's order, resting
    first.clock.advance(60)
    result = await rebalance_once(other.ctx, "BTC")
    assert result.status is RebalanceStatus.SKIPPED
    assert "another hedgebot" in result.reason
    assert first.ctx.executor.labels.ledger_id in result.reason
    assert other.ledger.get_trading_state().state is TradingState.HALTED
    assert placed(other) == 0
    cancelled = await other.ctx.executor.cancel_resting("BTC", "halted")
    assert cancelled == []  # not ours to cancel
    assert [o.label for o in await first.venue.open_orders("BTC")] == [resting.label]


async def test_a_trade_with_our_prefix_that_this_ledger_never_recorded_halts_a_cycle(
    tmp_path: Path,
) -> None:
    app = stack(tmp_path, clock=FakeClock(NOW), wrap=CountingVenue, **TIGHT)
    await reconcile(app.ctx, "BTC")
    await app.venue.inner.place_order(ioc("hb-0123456789abcdef-1", 1000))  # type: ignore[attr-defined]
    app.clock.advance(60)
    result = await rebalance_once(app.ctx, "BTC")
    assert "another hedgebot" in result.reason
    assert "trade hb-0123456789abcdef-1" in result.reason
    assert app.ledger.get_trading_state().state is TradingState.HALTED
    assert placed(app) == 0


async def test_a_dry_run_reports_another_hedgebot_without_halting(tmp_path: Path) -> None:
    app = stack(tmp_path, clock=FakeClock(NOW), **TIGHT)
    await app.venue.place_order(ioc("hb-89abcdef-0123456789abcdef-1", 1000))
    result = await rebalance_once(app.ctx, "BTC", dry_run=True)
    assert result.status is RebalanceStatus.SKIPPED
    assert "ledger 89abcdef" in result.reason
    assert app.ledger.get_trading_state().state is TradingState.ACTIVE


async def test_our_own_order_lost_from_the_ledger_is_recovered_at_start_and_in_a_cycle(
    tmp_path: Path,
) -> None:
    before = stack(tmp_path, clock=FakeClock(NOW), **TIGHT)  # the process that sent them
    labels = before.ctx.executor.labels
    lost = [labels.make("0123456789abcdef", 1), labels.make("fedcba9876543210", 1)]
    await before.venue.place_order(ioc(lost[0], 1000))
    before.clock.advance(200)
    await before.venue.place_order(ioc(lost[1], 500))
    before.clock.advance(60)
    app = build_app(before.settings, paper=True, clock=before.clock, venue=before.venue)
    result = await reconcile(app.ctx, "BTC")
    assert result.fills_added == 2
    app.clock.advance(60)
    later = await rebalance_once(app.ctx, "BTC")
    assert "another hedgebot" not in later.reason
    assert app.ledger.get_trading_state().state is TradingState.ACTIVE, later.reason
    assert {f.label for f in app.ledger.fills()} >= set(lost)


async def test_an_order_with_our_ledgers_id_made_since_we_started_is_a_copy_of_the_ledger_and_halts(
    tmp_path: Path,
) -> None:
    app = stack(tmp_path, clock=FakeClock(NOW), wrap=CountingVenue, **TIGHT)
    await reconcile(app.ctx, "BTC")
    app.clock.advance(60)
    copy = app.ctx.executor.labels.make("0123456789abcdef", 1)  # the copy's cycle, not ours
    await app.venue.inner.place_order(ioc(copy, 1000))  # type: ignore[attr-defined]
    app.clock.advance(60)
    result = await rebalance_once(app.ctx, "BTC")
    assert "a copy of this ledger" in result.reason
    assert app.ledger.get_trading_state().state is TradingState.HALTED
    assert placed(app) == 0


async def test_a_restarted_process_keeps_its_ledgers_id_and_so_recovers_its_own_orders(
    tmp_path: Path,
) -> None:
    app = stack(tmp_path, clock=FakeClock(NOW), **TIGHT)
    again = build_app(app.settings, paper=True, clock=app.clock, venue=app.venue)
    assert again.ctx.executor.labels == app.ctx.executor.labels
    await rebalance_once(app.ctx, "BTC")
    assert (await reconcile(again.ctx, "BTC")).unresolved_orders == ()
    assert again.ledger.get_trading_state().state is TradingState.ACTIVE


async def test_a_label_from_before_ledger_ids_that_the_ledger_recorded_is_ours(
    tmp_path: Path,
) -> None:
    app = stack(tmp_path, clock=FakeClock(NOW), **TIGHT)
    old = ioc("hb-0123456789abcdef-1", 1000)
    app.ledger.record_order(old, cycle_id="old", rebalance_id=None, decision_mid=None, ts=NOW)
    await app.venue.place_order(old)
    await reconcile(app.ctx, "BTC")
    assert app.ledger.get_trading_state().state is TradingState.ACTIVE
    assert [f.label for f in app.ledger.fills()] == [old.label]


def test_a_label_with_the_longest_prefix_fits_deribits_64_characters() -> None:
    labels = Labels("p" * 16, "0123abcd")
    label = labels.make("f" * 16, 999)
    assert len(label) <= MAX_LABEL_LENGTH
    assert labels.ours(label)
    assert Labels("hb", "89abcdef").hedgebots(label)  # another prefix, the shape is hedgebot's
    assert not Labels("hb", "89abcdef").ours(label)
    assert Labels("hb", "89abcdef").ledger_of(label) == "0123abcd"
    assert not labels.hedgebots("manual-click")


async def test_once_the_other_is_stopped_a_rebaseline_and_resume_let_the_ledger_start_again(
    tmp_path: Path,
) -> None:
    first = stack(tmp_path, clock=FakeClock(NOW), wrap=CountingVenue, **TIGHT)
    await reconcile(first.ctx, "BTC")
    await rebalance_once(first.ctx, "BTC")
    other = second_ledger(first, tmp_path)
    with pytest.raises(ReconciliationFailed, match="rebaseline"):
        await reconcile(other.ctx, "BTC")
    first.clock.advance(600)  # the first hedgebot was stopped
    held = sum(p.size for p in await other.venue.positions("BTC") if p.instrument.name == PERP)
    rebaseline(other.ledger, PERP, held, other.clock.now())
    other.ledger.set_trading_state(TradingState.ACTIVE, "resumed", other.clock.now())
    assert (await reconcile(other.ctx, "BTC")).fills_added == 0


def test_a_reading_command_never_names_the_ledger_and_a_trading_one_names_it_once(
    tmp_path: Path,
) -> None:
    first = stack(tmp_path, clock=FakeClock(NOW), **TIGHT)
    named = first.ctx.executor.labels.ledger_id
    fresh = open_ledger(f"sqlite:///{tmp_path}/fresh.db", create=True)
    build_app(first.settings, paper=True, clock=first.clock, ledger=fresh, mode="status")
    assert ledger_id(fresh.engine, "ffffffff", NOW, record=False) == "ffffffff"  # still unnamed
    daemon = build_app(first.settings, paper=True, clock=first.clock, ledger=fresh)
    again = build_app(first.settings, paper=True, clock=first.clock, ledger=fresh, mode="status")
    assert daemon.ctx.executor.labels.ledger_id == again.ctx.executor.labels.ledger_id
    assert daemon.ctx.executor.labels.ledger_id != named


async def test_a_copy_of_the_ledgers_resting_order_is_left_alone_when_trading_halts(
    tmp_path: Path,
) -> None:
    app = stack(tmp_path, clock=FakeClock(NOW), wrap=CountingVenue, **TIGHT)
    await reconcile(app.ctx, "BTC")
    app.clock.advance(60)
    quote = await app.venue.quote(PERP)
    resting = OrderRequest(
        label=app.ctx.executor.labels.make("0123456789abcdef", 1),
        instrument_name=PERP,
        side=Side.SELL,
        amount=100,
        price=round(quote.ask * 1.2),
        post_only=True,
    )
    await app.venue.inner.place_order(resting)  # type: ignore[attr-defined]
    result = await rebalance_once(app.ctx, "BTC")
    assert "a copy of this ledger" in result.reason
    assert await app.ctx.executor.cancel_resting("BTC", "halted") == []
    assert [o.label for o in await app.venue.open_orders("BTC")] == [resting.label]
