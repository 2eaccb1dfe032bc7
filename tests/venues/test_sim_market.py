"""The simulated market: a deterministic seeded path, a Deribit-like listing, smile marks."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from bot.clock import FakeClock
from bot.config import DEFAULT_FACTS, BookLeg, MarketSettings
from bot.domain import DataError, OptionType
from bot.venues.paper.instruments import (
    is_expiry_instant,
    listed_expiries,
    listing_time,
    option_name,
    parse_option_name,
)
from bot.venues.paper.market import SimMarket
from bot.venues.paper.matching import is_multiple

START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # a Monday


def make(settings: MarketSettings | None = None, clock: FakeClock | None = None) -> SimMarket:
    return SimMarket(
        settings or MarketSettings(), ("BTC", "ETH"), clock or FakeClock(START), DEFAULT_FACTS
    )


def test_same_seed_gives_same_index_whatever_the_order_it_is_asked_in() -> None:
    times = [START + timedelta(minutes=37 * i) for i in range(400)]
    forward = make()
    in_order = [forward.index_at("BTC", t) for t in times]
    shuffled = make()
    order = np.random.default_rng(3).permutation(len(times))
    far_first = {int(i): shuffled.index_at("BTC", times[i]) for i in order}
    assert [far_first[i] for i in range(len(times))] == in_order
    clock = FakeClock(START)
    again = make(clock=clock)
    stepped = []
    for t in times:
        clock.advance((t - clock.now()).total_seconds())
        stepped.append(again.index("BTC"))
    assert stepped == in_order


def test_index_is_constant_within_a_step_and_starts_at_spot() -> None:
    market = make()
    assert market.index_at("BTC", START) == 90_000.0
    assert market.index_at("ETH", START) == 3_000.0
    inside = market.index_at("BTC", START + timedelta(seconds=61))
    assert market.index_at("BTC", START + timedelta(seconds=119.9)) == inside
    assert market.index_at("BTC", START + timedelta(seconds=120)) != inside


def test_different_seeds_give_different_paths() -> None:
    a = make(MarketSettings(seed=1)).index_steps("BTC", 0, 1000)
    b = make(MarketSettings(seed=2)).index_steps("BTC", 0, 1000)
    assert a[0] == b[0]
    assert not np.allclose(a[1:], b[1:])


def test_currencies_follow_different_paths() -> None:
    market = make()
    btc = np.diff(np.log(market.index_steps("BTC", 0, 5000)))
    eth = np.diff(np.log(market.index_steps("ETH", 0, 5000)))
    assert abs(np.corrcoef(btc, eth)[0, 1]) < 0.1


def test_log_return_std_matches_the_volatility_without_jumps() -> None:
    settings = MarketSettings(volatility=0.8, jump_intensity=0, step_seconds=60)
    levels = make(settings).index_steps("BTC", 0, 200_000)
    returns = np.diff(np.log(levels))
    dt = 60 / (365 * 86400)
    assert np.std(returns) == pytest.approx(0.8 * math.sqrt(dt), rel=0.01)


def test_jumps_arrive_at_the_configured_intensity() -> None:
    settings = MarketSettings(
        volatility=1e-4, jump_intensity=1000, jump_mean=0.05, jump_std=0.0, step_seconds=3600
    )
    steps = 20_000
    returns = np.diff(np.log(make(settings).index_steps("BTC", 0, steps + 1)))
    rate = 1000 * 3600 / (365 * 86400)
    compensation = -1000 * (math.exp(0.05) - 1) * 3600 / (365 * 86400)
    jumps = np.round((returns - compensation) / 0.05)
    expected = steps * rate
    assert abs(jumps.sum() - expected) < 4 * math.sqrt(expected)
    assert np.all(jumps >= 0)


def test_listing_has_dailies_weeklies_and_monthlies_at_eight_utc() -> None:
    expiries = listed_expiries(START)
    assert all(is_expiry_instant(e) for e in expiries)
    assert expiries[:3] == [datetime(2026, 1, d, 8, tzinfo=UTC) for d in (6, 7, 8)]
    fridays = [e for e in expiries if e.weekday() == 4 and e <= START + timedelta(days=28)]
    assert [f.day for f in fridays] == [9, 16, 23, 30]
    assert expiries[-2:] == [
        datetime(2026, 2, 27, 8, tzinfo=UTC),
        datetime(2026, 3, 27, 8, tzinfo=UTC),
    ]
    assert all(listing_time(e) <= START < e for e in expiries)


def test_option_names_parse_back_to_their_instruments() -> None:
    market = make()
    options = [i for i in market.instruments("BTC") if i.is_option]
    assert len(options) > 100
    for option in options:
        parsed = parse_option_name(option.name)
        assert (parsed.currency, parsed.expiry, parsed.strike, parsed.option_type) == (
            option.currency,
            option.expiry,
            option.strike,
            option.option_type,
        )
        assert market.instrument(option.name) == option
    assert option_name("BTC", datetime(2026, 3, 27, 8, tzinfo=UTC), 90_000, OptionType.CALL) == (
        "BTC-27MAR26-90000-C"
    )
    assert parse_option_name("XRP-6JAN26-0d625-P").strike == 0.625


@pytest.mark.parametrize(
    "name", ["BTC-PERP", "BTC-27MAR26-90001-C", "DOGE-27MAR26-1-C", "BTC-27MAR27-90000-C"]
)
def test_unknown_instruments_raise_data_error(name: str) -> None:
    with pytest.raises(DataError):
        make().instrument(name)


def test_strikes_sit_on_a_nice_grid_around_spot() -> None:
    market = make()
    daily = market.strikes("BTC", datetime(2026, 1, 6, 8, tzinfo=UTC))
    assert np.all(np.diff(daily) == 1000.0)
    assert min(daily) < 90_000 < max(daily)
    monthly = market.strikes("ETH", datetime(2026, 3, 27, 8, tzinfo=UTC))
    assert min(monthly) <= 1_500
    assert max(monthly) >= 5_000


def test_marks_are_positive_finite_and_follow_the_smile() -> None:
    settings = MarketSettings(volatility=0.5, smile_skew=-0.1, smile_curvature=0.3)
    clock = FakeClock(START)
    market = make(settings, clock)
    clock.advance(3 * 3600)
    for currency in ("BTC", "ETH"):
        marks = market.marks(currency)
        assert len(marks) == len(market.instruments(currency))
        for mark in marks:
            assert math.isfinite(mark.mark_price)
            assert mark.mark_price > 0
            if mark.mark_iv is None:
                continue
            strike = parse_option_name(mark.instrument_name).strike
            k = math.log(strike / mark.underlying_price)
            assert mark.mark_iv == pytest.approx(max(0.05, 0.5 - 0.1 * k + 0.3 * k * k))
            assert mark.bid is None or mark.bid < mark.mark_price < (mark.ask or 0)


def test_downside_strikes_carry_higher_vol_than_upside_with_negative_skew() -> None:
    market = make(MarketSettings(smile_skew=-0.2, smile_curvature=0.0))
    by_strike = {
        parse_option_name(m.instrument_name).strike: m.mark_iv
        for m in market.marks("BTC")
        if m.instrument_name.startswith("BTC-27MAR26")
        and m.instrument_name.endswith("-P")
        and m.mark_iv is not None
    }
    assert by_strike[70_000] > by_strike[90_000] > by_strike[110_000]


def test_call_minus_put_is_the_discounted_forward_less_strike_in_coin() -> None:
    market = make()
    marks = {m.instrument_name: m for m in market.marks("BTC")}
    call, put = marks["BTC-27MAR26-100000-C"], marks["BTC-27MAR26-100000-P"]
    forward = call.underlying_price
    assert call.mark_price - put.mark_price == pytest.approx((forward - 100_000) / forward)


def test_order_books_have_ten_levels_on_the_tick_each_side() -> None:
    market = make()
    bids, asks = market.order_book("BTC-PERPETUAL")
    assert len(bids) == len(asks) == 10
    assert bids[0][0] < market.perp_mark("BTC") < asks[0][0]
    assert [p for p, _ in bids] == sorted((p for p, _ in bids), reverse=True)
    assert all(is_multiple(p, 0.5) and a == 250_000 for p, a in bids + asks)
    option_bids, option_asks = market.order_book("BTC-27MAR26-90000-C")
    assert option_bids[0][0] < option_asks[0][0]
    assert all(is_multiple(p, 0.0005) and is_multiple(a, 0.1) for p, a in option_asks)


def test_expired_options_leave_the_listing_and_settle_on_the_index_twap() -> None:
    clock = FakeClock(START)
    market = make(MarketSettings(step_seconds=300), clock)
    expiry = datetime(2026, 1, 6, 8, tzinfo=UTC)
    name = next(i.name for i in market.instruments("BTC") if i.expiry == expiry)
    clock.advance((expiry - START).total_seconds() - 1)
    assert name in {i.name for i in market.instruments("BTC")}
    assert market.quote(name).mark > 0
    with pytest.raises(DataError):
        market.settlement_price("BTC", expiry)
    clock.advance(1)
    listed = market.instruments("BTC")
    assert all(i.expiry != expiry for i in listed)
    assert all(not m.instrument_name.startswith("BTC-6JAN26") for m in market.marks("BTC"))
    with pytest.raises(DataError):
        market.quote(name)
    assert market.instrument(name).expiry == expiry
    window = [
        market.index_at("BTC", expiry - timedelta(minutes=m)) for m in (30, 25, 20, 15, 10, 5)
    ]
    assert market.settlement_price("BTC", expiry) == pytest.approx(sum(window) / 6)


def test_a_new_daily_is_listed_as_time_passes() -> None:
    clock = FakeClock(START)
    market = make(clock=clock)
    new_daily = datetime(2026, 1, 10, 8, tzinfo=UTC)
    assert all(i.expiry != new_daily for i in market.instruments("BTC"))
    clock.advance((new_daily - timedelta(days=3) - START).total_seconds())
    listed = [i for i in market.instruments("BTC") if i.expiry == new_daily]
    assert listed
    index_then = market.index("BTC")
    strikes = sorted({i.strike for i in listed if i.strike})
    assert strikes[0] < index_then < strikes[-1]


def test_starting_book_maps_legs_to_the_nearest_listed_option_and_scales_eth() -> None:
    settings = MarketSettings(
        book=(
            BookLeg(option_type="call", expiry_days=30, moneyness=1.0, size=-2),
            BookLeg(option_type="put", expiry_days=4.2, moneyness=0.9, size=1.04),
        )
    )
    market = make(settings)
    btc = {i.name: size for i, size in market.starting_book("BTC")}
    assert btc == {"BTC-30JAN26-90000-C": -2.0, "BTC-9JAN26-81000-P": 1.0}
    eth = {i.name: size for i, size in market.starting_book("ETH")}
    assert eth == {"ETH-30JAN26-3000-C": -60.0, "ETH-9JAN26-2700-P": 31.0}


def test_the_market_refuses_times_before_its_start() -> None:
    market = make()
    with pytest.raises(DataError):
        market.index_at("BTC", START - timedelta(seconds=1))
    with pytest.raises(DataError):
        market.index("DOGE")
