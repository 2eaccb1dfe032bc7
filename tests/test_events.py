"""The event trigger: when a price move is worth a cycle, debounced and capped; and its settings."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import pytest

from bot.app import build_events, cancel_on_disconnect
from bot.clock import FakeClock
from bot.config import ConfigError, EventSettings, load_settings
from bot.domain import HedgeDecision, PortfolioGreeks
from bot.events import Anchor, EventTrigger, Verdict, anchor_of
from tests.support.books import NOW
from tests.support.harness import stack

# delta 0 in a band of +-0.1 coin, gamma -0.001 coin/USD: a 100 USD move spends the whole room
ANCHOR = Anchor(price=90_000.0, gamma=-0.001, delta=0.0, low=-0.1, high=0.1)


def trigger(clock: FakeClock, **changes: object) -> EventTrigger:
    settings = EventSettings.model_validate({"enabled": True, **changes})
    t = EventTrigger(settings, clock)
    t.anchor("BTC", ANCHOR)
    return t


def test_a_move_whose_gamma_estimate_reaches_the_band_edge_asks_for_a_cycle() -> None:
    t = trigger(FakeClock(NOW))
    assert t.on_price("BTC", 90_100.0) is Verdict.FIRE
    assert t.wake.is_set()
    assert t.due() == ("BTC",)
    assert not t.wake.is_set()


def test_a_move_inside_the_room_to_the_band_edge_stays_quiet() -> None:
    t = trigger(FakeClock(NOW))
    assert t.on_price("BTC", 90_050.0) is Verdict.QUIET  # 0.05 coin of a 0.1 room
    assert t.on_price("BTC", 89_950.0) is Verdict.QUIET
    assert not t.wake.is_set()
    assert t.due() == ()


def test_band_fraction_fires_before_the_edge_is_reached() -> None:
    t = trigger(FakeClock(NOW), band_fraction=0.5)
    assert t.on_price("BTC", 90_050.0) is Verdict.FIRE


def test_a_burst_of_ticks_asks_once_until_the_next_cycle_anchors_again() -> None:
    clock = FakeClock(NOW)
    t = trigger(clock)
    verdicts = [t.on_price("BTC", 90_100.0 + i) for i in range(20)]
    assert verdicts[0] is Verdict.FIRE
    assert set(verdicts[1:]) == {Verdict.UNANCHORED}
    assert t.due() == ("BTC",)
    clock.advance(5)
    t.anchor("BTC", Anchor(90_120.0, -0.001, 0.0, -0.1, 0.1))
    assert t.on_price("BTC", 90_300.0) is Verdict.FIRE


def test_a_move_inside_the_debounce_gap_waits_for_the_gap_to_end() -> None:
    clock = FakeClock(NOW)
    t = trigger(clock, min_gap_seconds=2.0)
    assert t.on_price("BTC", 90_100.0) is Verdict.FIRE
    t.due()
    t.anchor("BTC", ANCHOR)
    clock.advance(0.5)
    assert t.on_price("BTC", 90_200.0) is Verdict.DEFER
    assert t.next_deferred() == NOW + timedelta(seconds=2)
    assert t.due() == ()
    clock.advance(1.5)
    assert t.due() == ("BTC",)
    assert t.next_deferred() is None


def test_a_deferred_move_that_comes_back_inside_the_room_is_dropped() -> None:
    clock = FakeClock(NOW)
    t = trigger(clock, min_gap_seconds=2.0)
    t.on_price("BTC", 90_100.0)
    t.due()
    t.anchor("BTC", ANCHOR)
    assert t.on_price("BTC", 90_200.0) is Verdict.DEFER
    assert t.on_price("BTC", 90_010.0) is Verdict.QUIET
    clock.advance(3)
    assert t.due() == ()


def test_event_cycles_beyond_the_per_minute_cap_are_left_to_the_schedule() -> None:
    clock = FakeClock(NOW)
    t = trigger(clock, min_gap_seconds=0.01, max_per_minute=3)
    for _ in range(3):
        assert t.on_price("BTC", 90_500.0) is Verdict.FIRE
        t.due()
        t.anchor("BTC", ANCHOR)
        clock.advance(1)
    assert t.on_price("BTC", 90_500.0) is Verdict.CAPPED
    clock.advance(60)
    assert t.on_price("BTC", 90_500.0) is Verdict.FIRE


@pytest.mark.parametrize("price", [math.nan, math.inf, -1.0, 0.0])
def test_a_price_that_is_not_finite_and_positive_is_ignored(price: float) -> None:
    t = trigger(FakeClock(NOW))
    assert t.on_price("BTC", price) is Verdict.BAD_PRICE
    assert not t.wake.is_set()


def test_a_book_without_gamma_never_fires() -> None:
    t = trigger(FakeClock(NOW))
    t.anchor("BTC", Anchor(90_000.0, 0.0, 0.1, -0.1, 0.1))  # at the edge, but no gamma
    assert t.on_price("BTC", 99_000.0) is Verdict.QUIET


def greeks(gamma: float = -0.001) -> PortfolioGreeks:
    return PortfolioGreeks(
        currency="BTC",
        index_price=90_000.0,
        delta_coin=0.05,
        delta_usd_target=0.05,
        options_delta_net=0.05,
        options_delta_bs=0.05,
        futures_delta=0.0,
        gamma=gamma,
        dollar_gamma=0.0,
        vega=0.0,
        theta=0.0,
        equity=10.0,
    )


def decision(before: float, trade_delta: float) -> HedgeDecision:
    return HedgeDecision(
        trade_amount=trade_delta * 90_000,
        trade_delta=trade_delta,
        delta_before=before,
        target=0.0,
        band_low=-0.1,
        band_high=0.1,
        reason="",
        policy="delta_band",
    )


def test_a_filled_trade_anchors_where_the_trade_left_delta() -> None:
    a = anchor_of(greeks(), decision(0.3, -0.3), traded=True, filled_in_full=True, time_band=False)
    assert a == Anchor(90_000.0, -0.001, pytest.approx(0.0), -0.1, 0.1)


def test_no_anchor_after_a_time_band_cycle_a_partial_fill_or_delta_left_outside_the_band() -> None:
    g = greeks()
    assert (
        anchor_of(g, decision(0.05, 0), traded=False, filled_in_full=False, time_band=True) is None
    )
    assert (
        anchor_of(g, decision(0.3, -0.3), traded=True, filled_in_full=False, time_band=False)
        is None
    )
    assert (
        anchor_of(g, decision(0.3, 0), traded=False, filled_in_full=False, time_band=False) is None
    )
    assert (
        anchor_of(None, decision(0.0, 0), traded=False, filled_in_full=False, time_band=False)
        is None
    )
    assert anchor_of(g, decision(0.05, 0), traded=False, filled_in_full=False, time_band=False)


@pytest.mark.parametrize(
    ("events", "field"),
    [
        ({"band_fraction": 0}, "band_fraction"),
        ({"band_fraction": 1.5}, "band_fraction"),
        ({"min_gap_seconds": 0}, "min_gap_seconds"),
        ({"min_gap_seconds": float("inf")}, "min_gap_seconds"),
        ({"max_per_minute": 0}, "max_per_minute"),
        ({"max_per_minute": 10_000}, "max_per_minute"),
        ({"silence_seconds": 0.1}, "silence_seconds"),
        ({"reconnect_min_seconds": 10, "reconnect_max_seconds": 1}, "reconnect_min_seconds"),
        ({"enabled": "sometimes"}, "enabled"),
    ],
)
def test_event_settings_out_of_bounds_are_refused_naming_the_field(
    tmp_path: Path, events: dict[str, object], field: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, daemon={"events": events})
    assert field in str(caught.value)


def test_cancel_on_disconnect_takes_only_auto_on_or_off() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, daemon={"cancel_on_disconnect": "yes please"})
    assert "cancel_on_disconnect" in str(caught.value)


def test_events_are_refused_on_lockstep_time_whose_replay_they_would_break() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, market={"clock": "lockstep"}, daemon={"events": {"enabled": True}})
    assert "lockstep" in str(caught.value)


def test_events_are_off_by_default() -> None:
    assert load_settings(None).daemon.events.enabled is False


@pytest.mark.parametrize(
    ("kind", "mode", "expected"),
    [
        ("deribit", "auto", True),
        ("sim", "auto", False),
        ("sim", "on", True),
        ("deribit", "off", False),
    ],
)
def test_cancel_on_disconnect_is_on_for_a_real_deribit_unless_switched(
    kind: str, mode: str, expected: bool
) -> None:
    settings = load_settings(None, venue={"kind": kind}, daemon={"cancel_on_disconnect": mode})
    assert cancel_on_disconnect(settings) is expected


def test_a_paper_daemon_holds_no_stream_session_even_with_events_on(tmp_path: Path) -> None:
    app = stack(tmp_path, daemon={"events": {"enabled": True}})
    assert build_events(app) is None
    assert app.pushes is None


def test_a_move_heard_while_a_cycle_of_that_currency_runs_asks_for_no_second_cycle_after_it() -> (
    None
):
    clock = FakeClock(NOW)
    t = trigger(clock)
    t.anchor("ETH", Anchor(3_000.0, -0.01, 0.0, -0.1, 0.1))
    assert t.on_price("BTC", 90_100.0) is Verdict.FIRE  # judged against the last cycle's anchor
    assert t.on_price("ETH", 3_020.0) is Verdict.FIRE
    clock.advance(1)
    t.anchor("BTC", Anchor(90_100.0, -0.001, 0.0, -0.1, 0.1))  # BTC's cycle ends: it saw that
    assert t.due() == ("ETH",)  # only the currency no cycle has looked at since


def test_a_deferred_move_is_dropped_when_a_cycle_of_that_currency_anchors_again() -> None:
    clock = FakeClock(NOW)
    t = trigger(clock, min_gap_seconds=10)
    assert t.on_price("BTC", 90_100.0) is Verdict.FIRE
    assert t.due() == ("BTC",)
    t.anchor("BTC", ANCHOR)
    assert t.on_price("BTC", 90_100.0) is Verdict.DEFER
    t.anchor("BTC", Anchor(90_100.0, -0.001, 0.0, -0.1, 0.1))  # a scheduled cycle saw it
    assert t.next_deferred() is None
    clock.advance(11)
    assert t.due() == ()


def test_a_flood_of_moves_past_the_per_minute_cap_runs_no_more_cycles_and_warns_once() -> None:
    from structlog.testing import capture_logs

    clock = FakeClock(NOW)
    t = trigger(clock, max_per_minute=2, min_gap_seconds=0.01)
    fired = 0
    with capture_logs() as logs:
        for i in range(1_000):
            t.anchor("BTC", ANCHOR)  # as if a cycle ran after every push
            if t.on_price("BTC", 95_000.0 + i) is Verdict.FIRE:
                fired += 1
            clock.advance(0.01)  # 1,000 pushes in 10 s
    assert fired == 2
    capped = [e for e in logs if e["event"] == "event_cycles_capped"]
    assert len(capped) == 1
