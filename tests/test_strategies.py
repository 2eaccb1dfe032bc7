"""The hedging policies: decisions, sizes, lots, bands, ping-pong, vectorisation, bad data."""

from __future__ import annotations

import math
import typing
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from bot.config import PolicySettings
from bot.domain import DataError
from bot.policy import decision_of
from strategies import (
    POLICIES,
    DeltaBandParams,
    GammaScaledParams,
    HedgeOrders,
    HedgeState,
    LotSpec,
    PolicyParams,
    Reason,
    TimeBandParams,
    decide,
    delta_band,
    gamma_scaled,
    make_params,
    round_half_away,
    round_to_lots,
    time_band,
    whalley_wilmott_band,
)
from strategies.common import reason_codes

BTC_PERP = LotSpec(step=10.0, min_amount=10.0, inverse=True)
LINEAR = LotSpec(step=0.001, min_amount=0.01, inverse=False)
HOUR = 3600.0


def arr(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64)


def book(
    delta: float | np.ndarray,
    *,
    target: float | np.ndarray = 0.0,
    gamma: float | np.ndarray = 0.0,
    price: float | np.ndarray = 90_000.0,
    now: float | np.ndarray = 10 * HOUR,
    last_rebalance: float | np.ndarray = -math.inf,
    sigma: float | np.ndarray = 0.6,
    tau: float | np.ndarray = 7 / 365,
) -> HedgeState:
    """A HedgeState whose fields are 1-D arrays (scalars become one-book arrays)."""
    fields = (delta, target, gamma, price, now, last_rebalance, sigma, tau)
    a = [np.atleast_1d(np.asarray(f, dtype=np.float64)) for f in fields]
    return HedgeState(*np.broadcast_arrays(*a))


def after(state: HedgeState, orders: HedgeOrders) -> np.ndarray:
    return np.asarray(state.delta) + orders.delta_change


# --- rounding to lots -------------------------------------------------------------------------


def test_0_0123_btc_at_90000_rounds_to_1110_usd_and_reports_the_rounded_delta() -> None:
    rounded = round_to_lots(arr(0.0123, -0.0123), arr(90_000.0, 90_000.0), BTC_PERP)

    # 0.0123 · 90,000 = 1,107 USD = 110.7 lots of $10 → 111 lots = $1,110
    assert rounded.amount.tolist() == [1110.0, -1110.0]
    assert rounded.delta_change.tolist() == [1110.0 / 90_000.0, -1110.0 / 90_000.0]
    assert not rounded.below_min.any()


def test_rounding_takes_halves_away_from_zero_and_leaves_just_below_half_down() -> None:
    halves = round_half_away(arr(2.5, -2.5, 0.5, -0.5, 0.49999999999999994, 1.4999999999999998))
    assert halves.tolist() == [3.0, -3.0, 1.0, -1.0, 0.0, 1.0]

    # 25/1024 coin at 1,024 USD is exactly 25 USD: 2.5 lots of $10 → $30, the sign kept
    rounded = round_to_lots(arr(25 / 1024, -25 / 1024), arr(1024.0, 1024.0), BTC_PERP)
    assert rounded.amount.tolist() == [30.0, -30.0]


def test_round_half_away_gives_the_bits_of_truncating_then_stepping_off_halves() -> None:
    """The rint-based rounding against the plain definition, bit for bit, zeros' signs too."""

    def by_definition(x: np.ndarray) -> np.ndarray:
        whole = np.trunc(x)
        frac = x - whole
        return (whole + (frac >= 0.5)) - (frac <= -0.5)

    rng = np.random.default_rng(21)
    edges = arr(0.49999999999999994, -0.49999999999999994, 2**52 + 1, -(2**52) - 1.0, 2.0**53)
    x = np.concatenate(
        [
            rng.normal(0.0, 3.0, 20_000),
            rng.normal(0.0, 1e9, 1_000),
            np.arange(-40, 41) / 4,  # exact halves and quarters, both signs
            edges,
            arr(4503599627370495.5, -4503599627370495.5, 1e300, -1e300, -0.0, 0.0, 5e-324),
        ]
    )
    assert round_half_away(x).tobytes() == by_definition(x).tobytes()
    assert np.signbit(round_half_away(arr(-0.3, -0.0))).tolist() == [False, False]


def test_linear_instrument_rounds_in_coin_steps_without_float_noise() -> None:
    lot = LotSpec(step=0.001, min_amount=0.001, inverse=False)
    rounded = round_to_lots(arr(0.0123, 0.57, -0.0075), arr(90_000.0, 3_000.0, 50.0), lot)

    assert rounded.amount.tolist() == [0.012, 0.57, -0.008]
    assert rounded.delta_change.tolist() == rounded.amount.tolist()


def test_amount_below_the_minimum_becomes_zero_and_is_flagged_but_no_wanted_trade_is_not() -> None:
    rounded = round_to_lots(arr(0.006, 0.0, 0.0004, 0.012), arr(1.0, 1.0, 1.0, 1.0), LINEAR)

    assert rounded.amount.tolist() == [0.0, 0.0, 0.0, 0.012]
    assert rounded.delta_change.tolist() == [0.0, 0.0, 0.0, 0.012]
    assert rounded.below_min.tolist() == [True, False, True, False]


def test_outward_rounding_lands_on_or_inside_the_aim_never_short_of_it() -> None:
    rng = np.random.default_rng(7)
    wanted = rng.normal(0.0, 0.05, 10_000)
    price = rng.uniform(20_000.0, 120_000.0, 10_000)
    rounded = round_to_lots(wanted, price, BTC_PERP, outward=True)

    traded = rounded.amount != 0
    assert np.all(np.sign(rounded.amount[traded]) == np.sign(wanted[traded]))
    assert np.all(np.abs(rounded.delta_change) >= np.abs(wanted) * (1 - 1e-12) - 1e-15)
    assert np.all(np.abs(rounded.delta_change) - np.abs(wanted) < 10.0 / price)


# --- time band --------------------------------------------------------------------------------


def test_time_band_trades_to_target_when_the_interval_has_elapsed() -> None:
    state = book(-0.0123, target=0.0, now=5 * HOUR, last_rebalance=4 * HOUR)
    orders = time_band(state, TimeBandParams(interval_seconds=HOUR), BTC_PERP)

    assert orders.reason.tolist() == [Reason.SCHEDULED]
    assert orders.amount.tolist() == [1110.0]
    assert abs(after(state, orders)[0]) <= 0.5 * 10 / 90_000


def test_time_band_does_not_trade_before_the_interval_however_far_delta_is() -> None:
    state = book(5.0, now=5 * HOUR - 1, last_rebalance=4 * HOUR)
    orders = time_band(state, TimeBandParams(interval_seconds=HOUR), BTC_PERP)

    assert orders.reason.tolist() == [Reason.NOT_DUE]
    assert orders.amount.tolist() == [0.0]


def test_time_band_book_never_rebalanced_is_due_at_once() -> None:
    orders = time_band(book(0.2, last_rebalance=-math.inf), TimeBandParams(HOUR), BTC_PERP)
    assert orders.reason.tolist() == [Reason.SCHEDULED]
    assert orders.amount.tolist() == [-18_000.0]


def test_time_band_due_book_within_half_a_lot_of_target_does_not_trade() -> None:
    lot_coin = 10 / 90_000
    state = book(arr(0.4 * lot_coin, 0.5 * lot_coin, -0.5 * lot_coin, 0.6 * lot_coin))
    orders = time_band(state, TimeBandParams(HOUR), BTC_PERP)

    assert orders.reason.tolist() == [Reason.IN_BAND] * 3 + [Reason.SCHEDULED]
    assert orders.amount.tolist() == [0.0, 0.0, 0.0, -10.0]


def test_time_band_suppresses_a_scheduled_trade_below_the_instrument_minimum() -> None:
    orders = time_band(book(0.004, price=1.0), TimeBandParams(HOUR), LINEAR)
    assert orders.reason.tolist() == [Reason.BELOW_MIN_LOT]
    assert orders.amount.tolist() == [0.0]


def test_time_band_off_schedule_on_every_book_answers_each_as_it_would_beside_a_due_one() -> None:
    deltas, last = arr(5.0, -3.0, 0.2, 0.0), arr(4 * HOUR, 4 * HOUR, 4.5 * HOUR, 4 * HOUR)
    now = 5 * HOUR - 1
    idle = time_band(
        book(deltas[:3], now=now, last_rebalance=last[:3]), TimeBandParams(HOUR), LINEAR
    )
    beside = time_band(
        book(deltas, now=now, last_rebalance=np.append(last[:3], -math.inf)),
        TimeBandParams(HOUR),
        LINEAR,
    )

    assert idle.reason.tolist() == [Reason.NOT_DUE] * 3
    assert beside.reason.tolist() == [Reason.NOT_DUE] * 3 + [Reason.IN_BAND]
    for field in ("amount", "delta_change", "band_low", "band_high", "reason"):
        mine, theirs = getattr(idle, field), getattr(beside, field)[:3]
        assert mine.dtype == theirs.dtype, field
        assert mine.tobytes() == theirs.tobytes(), field


def test_reason_codes_of_nested_masks_are_those_of_nested_where() -> None:
    rng = np.random.default_rng(8)
    due = rng.random(5_000) < 0.7
    wants = due & (rng.random(5_000) < 0.6)
    below = wants & (rng.random(5_000) < 0.2)
    nested = np.where(
        due,
        np.where(wants, np.where(below, Reason.BELOW_MIN_LOT, Reason.SCHEDULED), Reason.IN_BAND),
        Reason.NOT_DUE,
    ).astype(np.int8)
    levels = ((due, Reason.IN_BAND), (wants, Reason.SCHEDULED), (below, Reason.BELOW_MIN_LOT))
    codes = reason_codes(Reason.NOT_DUE, levels)
    assert codes.dtype == np.int8
    assert np.array_equal(codes, nested)
    assert set(codes.tolist()) == {0, 2, 3, 4}  # every level occurs


def test_time_band_params_refuse_a_non_positive_or_nan_interval() -> None:
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="interval_seconds"):
            TimeBandParams(interval_seconds=bad)


# --- delta band -------------------------------------------------------------------------------


def test_delta_band_does_not_trade_inside_or_on_the_band() -> None:
    state = book(arr(0.0, 0.05, -0.099, 0.1, -0.1), target=0.0)
    orders = delta_band(state, DeltaBandParams(band=0.1), BTC_PERP)

    assert orders.reason.tolist() == [Reason.IN_BAND] * 5
    assert not orders.amount.any()
    assert orders.band_low.tolist() == [-0.1] * 5
    assert orders.band_high.tolist() == [0.1] * 5


def test_delta_band_to_target_trades_the_whole_gap_rounded_to_lots() -> None:
    state = book(arr(0.25, -0.1234), target=arr(0.1, 0.0))
    orders = delta_band(state, DeltaBandParams(band=0.1, rebalance_to="target"), BTC_PERP)

    assert orders.reason.tolist() == [Reason.OUTSIDE_BAND] * 2
    # -0.15 · 90,000 = -13,500 USD; 0.1234 · 90,000 = 11,106 → 11,110 USD
    assert orders.amount.tolist() == [-13_500.0, 11_110.0]
    assert np.all(np.abs(after(state, orders) - arr(0.1, 0.0)) <= 0.5 * 10 / 90_000)


def test_delta_band_to_edge_trades_only_back_to_the_nearest_edge() -> None:
    state = book(arr(0.25, -0.12302), target=arr(0.1, 0.0))
    orders = delta_band(state, DeltaBandParams(band=0.1, rebalance_to="edge"), BTC_PERP)

    # 0.25 → edge 0.2: -0.05 · 90,000 = -4,500 USD. -0.12302 → edge -0.1: 2,071.8 USD, which
    # the nearest lot (2,070) would leave outside the band: rounded up to 2,080 USD instead
    assert orders.amount.tolist() == [-4_500.0, 2_080.0]
    delta_after = after(state, orders)
    assert delta_after[0] == pytest.approx(0.2, abs=1e-12)
    assert -0.1 < delta_after[1] < -0.1 + 10 / 90_000


def test_book_whole_lots_beyond_the_edge_trades_exactly_those_lots_then_rests_in_band() -> None:
    rng = np.random.default_rng(3)
    n, band = 20_000, 0.01
    price = rng.uniform(20_000.0, 120_000.0, n)
    lots = rng.integers(1, 500, n)
    side = rng.choice([-1.0, 1.0], n)
    target = rng.normal(0.0, 0.05, n)
    state = book(target + side * (band + lots * 10 / price), target=target, price=price)
    params = DeltaBandParams(band, "edge")
    orders = delta_band(state, params, BTC_PERP)

    assert np.array_equal(orders.amount, -side * lots * 10.0)
    rested = delta_band(replace(state, delta=after(state, orders)), params, BTC_PERP)
    assert np.all(rested.reason == Reason.IN_BAND)


def test_edge_and_target_modes_trade_the_same_direction_but_edge_trades_less() -> None:
    rng = np.random.default_rng(11)
    state = book(rng.normal(0.0, 0.5, 5_000), target=rng.normal(0.0, 0.1, 5_000))
    to_target = delta_band(state, DeltaBandParams(0.05, "target"), BTC_PERP)
    to_edge = delta_band(state, DeltaBandParams(0.05, "edge"), BTC_PERP)

    assert np.array_equal(to_target.reason, to_edge.reason)
    traded = to_target.amount != 0
    assert np.all(np.sign(to_edge.amount[traded]) == np.sign(to_target.amount[traded]))
    assert np.all(np.abs(to_edge.amount) <= np.abs(to_target.amount))
    assert np.all(np.abs(to_edge.amount[traded]) < np.abs(to_target.amount[traded]))


def test_delta_band_to_edge_suppresses_a_trade_below_the_instrument_minimum() -> None:
    # the book is 0.003 coin outside a 0.002 band; the linear minimum is 0.01 coin
    orders = delta_band(book(0.005, price=1.0), DeltaBandParams(0.002, "edge"), LINEAR)
    assert orders.reason.tolist() == [Reason.BELOW_MIN_LOT]
    assert orders.amount.tolist() == [0.0]
    assert orders.delta_change.tolist() == [0.0]


def test_delta_band_narrower_than_one_lot_is_widened_to_it_and_warned() -> None:
    lot_coin = 10 / 90_000  # 0.000111 BTC per $10 at 90,000
    state = book(arr(0.0001, 0.0002))
    orders = delta_band(state, DeltaBandParams(band=0.00005), BTC_PERP)

    assert orders.band_high.tolist() == pytest.approx([lot_coin, lot_coin])
    assert orders.reason.tolist() == [Reason.IN_BAND, Reason.OUTSIDE_BAND]
    assert len(orders.warnings) == 1
    warning = orders.warnings[0]
    for part in ("delta_band", "band 5e-05 coin", "one lot", "10 USD", "0.000111111 coin"):
        assert part in warning
    assert "on 2 of 2 books" in warning


def test_single_book_widening_warning_names_no_book_count() -> None:
    orders = delta_band(book(0.0), DeltaBandParams(band=0.00005), BTC_PERP)
    assert len(orders.warnings) == 1
    assert "books" not in orders.warnings[0]
    assert "90,000.00 USD" in orders.warnings[0]


def test_band_of_at_least_one_lot_is_kept_and_not_warned() -> None:
    orders = delta_band(book(arr(0.0, 0.3)), DeltaBandParams(band=0.001), BTC_PERP)
    assert orders.warnings == ()
    assert orders.band_high.tolist() == [0.001, 0.001]


def test_delta_band_params_refuse_a_bad_band_or_destination() -> None:
    with pytest.raises(ValueError, match="band"):
        DeltaBandParams(band=0.0)
    with pytest.raises(ValueError, match="band"):
        DeltaBandParams(band=math.nan)
    with pytest.raises(ValueError, match="rebalance_to"):
        DeltaBandParams(band=0.1, rebalance_to="middle")  # type: ignore[arg-type]


# --- gamma scaled (Whalley–Wilmott) -----------------------------------------------------------

WW = GammaScaledParams(risk_aversion=1.0, cost=0.0005, min_band=0.0)


def test_gamma_scaled_band_is_the_whalley_wilmott_formula() -> None:
    gamma, price = 5e-4, 90_000.0
    state = book(0.0, gamma=gamma, price=price)
    orders = gamma_scaled(state, WW, BTC_PERP)

    expected = (1.5 * 0.0005 * price * gamma**2 / 1.0) ** (1 / 3)
    assert orders.band_high[0] == pytest.approx(expected, rel=1e-12)
    assert orders.band_low[0] == pytest.approx(-expected, rel=1e-12)
    assert orders.warnings == ()


def test_whalley_wilmott_band_grows_as_gamma_to_two_thirds_and_cost_to_one_third() -> None:
    gamma = arr(1e-5, 8e-5, -8e-5)
    price, tau = np.full(3, 60_000.0), np.full(3, 0.1)
    base = whalley_wilmott_band(gamma, price, tau, WW)
    assert base[1] / base[0] == pytest.approx(4.0, rel=1e-12)  # 8^(2/3)
    assert base[2] == base[1]  # only Γ² enters

    dearer = whalley_wilmott_band(gamma, price, tau, replace(WW, cost=8 * WW.cost))
    assert dearer / base == pytest.approx([2.0] * 3, rel=1e-12)  # 8^(1/3)

    timid = whalley_wilmott_band(gamma, price, tau, replace(WW, risk_aversion=8.0))
    assert timid / base == pytest.approx([0.5] * 3, rel=1e-12)

    discounted = whalley_wilmott_band(gamma, price, tau, replace(WW, rate=0.3))
    assert discounted / base == pytest.approx([math.exp(-0.03) ** (1 / 3)] * 3, rel=1e-12)


def test_gamma_scaled_trades_to_the_nearest_edge_not_the_target() -> None:
    gamma, price = 5e-4, 90_000.0
    band = (1.5 * 0.0005 * price * gamma**2) ** (1 / 3)  # about 0.0266 BTC
    state = book(arr(0.5, -0.5, 0.01), gamma=gamma, price=price)
    orders = gamma_scaled(state, WW, BTC_PERP)

    assert orders.reason.tolist() == [Reason.OUTSIDE_BAND, Reason.OUTSIDE_BAND, Reason.IN_BAND]
    delta_after = after(state, orders)
    lot_coin = 10 / price
    assert band - lot_coin < delta_after[0] <= band
    assert -band <= delta_after[1] < -band + lot_coin


def test_gamma_scaled_band_is_floored_at_min_band_then_at_one_lot() -> None:
    floored = gamma_scaled(book(0.0, gamma=1e-7), replace(WW, min_band=0.01), BTC_PERP)
    assert floored.band_high.tolist() == [0.01]
    assert floored.warnings == ()

    flat = gamma_scaled(book(0.0, gamma=0.0), WW, BTC_PERP)
    assert flat.band_high.tolist() == pytest.approx([10 / 90_000])
    assert len(flat.warnings) == 1
    assert flat.warnings[0].startswith("gamma_scaled: band 0 coin is narrower than one lot")


def test_gamma_scaled_params_refuse_non_positive_risk_aversion_and_negative_cost() -> None:
    with pytest.raises(ValueError, match="risk_aversion"):
        GammaScaledParams(risk_aversion=0.0, cost=0.0005, min_band=0.01)
    with pytest.raises(ValueError, match="cost"):
        GammaScaledParams(risk_aversion=1.0, cost=-0.1, min_band=0.01)
    with pytest.raises(ValueError, match="min_band"):
        GammaScaledParams(risk_aversion=1.0, cost=0.0005, min_band=math.nan)


# --- no ping-pong -----------------------------------------------------------------------------

PolicyCase = tuple[Callable[[HedgeState, Any, LotSpec], HedgeOrders], Any, LotSpec]
PING_PONG_CASES: dict[str, PolicyCase] = {
    "time band on BTC": (time_band, TimeBandParams(HOUR), BTC_PERP),
    "time band linear with big minimum": (time_band, TimeBandParams(HOUR), LINEAR),
    "delta band to target": (delta_band, DeltaBandParams(0.002, "target"), BTC_PERP),
    "delta band to edge": (delta_band, DeltaBandParams(0.002, "edge"), BTC_PERP),
    "delta band under a lot, to target": (delta_band, DeltaBandParams(1e-5), BTC_PERP),
    "delta band under a lot, to edge": (delta_band, DeltaBandParams(1e-5, "edge"), BTC_PERP),
    "delta band linear to edge": (delta_band, DeltaBandParams(0.0005, "edge"), LINEAR),
    "gamma scaled": (gamma_scaled, WW, BTC_PERP),
    "gamma scaled with a floor": (gamma_scaled, replace(WW, min_band=0.003), BTC_PERP),
}


@pytest.mark.parametrize("case", list(PING_PONG_CASES))
def test_policy_never_trades_again_after_a_trade_while_delta_stands_still(case: str) -> None:
    policy, params, lot = PING_PONG_CASES[case]
    rng = np.random.default_rng(20240501)
    paths, steps = 400, 150
    price = rng.uniform(2_000.0, 120_000.0, paths)
    lot_coin = lot.coin_per_step(price)
    target = np.where(rng.random(paths) < 0.5, 0.0, rng.normal(0.0, 0.01, paths))
    gamma = rng.normal(0.0, 3e-5, paths)
    scale = lot_coin * rng.choice([0.3, 1.0, 5.0, 50.0], paths)  # moves of a few lots
    delta = target + rng.normal(0.0, 1.0, paths) * scale
    traded_before = np.zeros(paths, dtype=bool)
    last_sign = np.zeros(paths)
    trades = 0
    for step in range(steps):
        moves = rng.random(paths) < 0.5
        delta = delta + np.where(moves, rng.normal(0.0, 1.0, paths) * scale, 0.0)
        now = (step + 1) * HOUR
        state = book(
            delta, target=target, gamma=gamma, price=price, now=now, last_rebalance=now - HOUR
        )
        orders = policy(state, params, lot)
        traded = orders.amount != 0
        still = ~moves
        assert not np.any(traded & traded_before & still), "traded twice with delta unchanged"
        flipped = traded & still & (np.sign(orders.amount) == -last_sign)
        assert not np.any(flipped), "traded back across the target with delta unchanged"
        assert np.all((orders.amount == 0) | (np.abs(orders.amount) >= lot.min_amount))
        delta = delta + orders.delta_change
        if policy is not time_band:
            inside = np.abs(delta - target) <= (orders.band_high - target) * (1 + 1e-9)
            assert np.all(inside | ~traded), "a trade left the book outside its band"
        traded_before = traded
        last_sign = np.where(traded, np.sign(orders.amount), np.where(moves, 0.0, last_sign))
        trades += int(traded.sum())
    assert trades > paths  # the walk really exercised trading


# --- vectorised equals per row ----------------------------------------------------------------

ROWS = 100_000
VECTOR_LOT = LotSpec(step=10.0, min_amount=30.0)  # a minimum above the step: BELOW_MIN_LOT rows


def random_books(rng: np.random.Generator, n: int) -> HedgeState:
    """Books with every kind of row: in and out of band, due and not, narrow and wide bands."""
    price = rng.uniform(1_000.0, 120_000.0, n)
    return book(
        rng.normal(0.0, 0.05, n) * rng.choice([0.001, 0.1, 1.0, 10.0], n),
        target=np.where(rng.random(n) < 0.5, 0.0, rng.normal(0.0, 0.02, n)),
        gamma=rng.normal(0.0, 1e-4, n) * rng.choice([0.0, 0.01, 1.0], n),
        price=price,
        now=rng.uniform(0.0, 10 * HOUR, n),
        last_rebalance=np.where(rng.random(n) < 0.1, -math.inf, rng.uniform(0.0, 10 * HOUR, n)),
        sigma=rng.uniform(0.2, 1.5, n),
        tau=rng.uniform(0.0, 1.0, n),
    )


FIELDS = ("delta", "target", "gamma", "price", "now", "last_rebalance", "sigma", "tau")


def rows(state: HedgeState, start: int, stop: int) -> HedgeState:
    return HedgeState(*(np.asarray(getattr(state, f))[start:stop] for f in FIELDS))


OUTPUTS = ("amount", "delta_change", "band_low", "band_high", "reason")
VECTOR_CASES: dict[str, tuple[str, Any]] = {
    "time_band": ("time_band", TimeBandParams(HOUR)),
    "delta_band": ("delta_band", DeltaBandParams(2e-4, "target")),
    "delta_band_edge": ("delta_band", DeltaBandParams(2e-4, "edge")),
    "gamma_scaled": ("gamma_scaled", replace(WW, rate=0.05)),
}


@pytest.mark.parametrize("case", list(VECTOR_CASES))
def test_policy_on_100k_books_at_once_equals_each_book_decided_alone(case: str) -> None:
    name, params = VECTOR_CASES[case]
    rng = np.random.default_rng(12345)
    state = random_books(rng, ROWS)
    whole = decide(name, state, params, VECTOR_LOT)

    assert len(set(whole.reason.tolist())) >= 3  # the rows really differ in outcome
    for field in OUTPUTS:
        assert getattr(whole, field).shape == (ROWS,)
    price = np.asarray(state.price)
    assert np.all((whole.amount == 0) | (np.abs(whole.amount) >= VECTOR_LOT.min_amount))
    assert np.array_equal(whole.amount % VECTOR_LOT.step, np.zeros(ROWS))
    assert np.array_equal(whole.delta_change, whole.amount / price)

    # Each book alone, for a seeded sample (100k single-book calls would take ~15 s) ...
    for i in rng.choice(ROWS, 3_000, replace=False).tolist():
        alone = decide(name, rows(state, i, i + 1), params, VECTOR_LOT)
        for field in OUTPUTS:
            assert getattr(alone, field)[0] == getattr(whole, field)[i], (field, i)
    # ... and every book in small chunks of 1-17, which run numpy's short-array code paths.
    start = 0
    while start < ROWS:
        stop = min(ROWS, start + int(rng.integers(1, 18)))
        part = decide(name, rows(state, start, stop), params, VECTOR_LOT)
        for field in OUTPUTS:
            assert np.array_equal(getattr(part, field), getattr(whole, field)[start:stop]), field
        start = stop


# --- bad data ---------------------------------------------------------------------------------

BAD_FIELDS: list[tuple[str, str, float]] = [
    ("time_band", "delta", math.nan),
    ("time_band", "price", 0.0),
    ("time_band", "now", math.nan),
    ("time_band", "last_rebalance", math.nan),
    ("time_band", "target", math.inf),
    ("delta_band", "delta", math.nan),
    ("delta_band", "target", math.nan),
    ("delta_band", "price", -90_000.0),
    ("delta_band", "price", math.nan),
    ("gamma_scaled", "gamma", math.nan),
    ("gamma_scaled", "tau", -0.01),
    ("gamma_scaled", "delta", -math.inf),
    ("gamma_scaled", "price", math.nan),
]
PARAMS: dict[str, PolicyParams] = {
    "time_band": TimeBandParams(HOUR),
    "delta_band": DeltaBandParams(0.01),
    "gamma_scaled": WW,
}


@pytest.mark.parametrize(("name", "field", "value"), BAD_FIELDS)
def test_bad_value_in_the_state_raises_a_data_error_naming_field_and_row(
    name: str, field: str, value: float
) -> None:
    values = {f: np.asarray(getattr(book(arr(0.3, 0.3, 0.3)), f)).copy() for f in FIELDS}
    values[field][2] = value
    with pytest.raises(DataError, match=rf"HedgeState\.{field} must be .*row 2 is"):
        decide(name, HedgeState(**values), PARAMS[name], BTC_PERP)


def test_field_a_policy_does_not_read_may_be_missing_data() -> None:
    state = book(0.3, sigma=math.nan, tau=-1.0, gamma=math.nan)
    orders = delta_band(state, DeltaBandParams(0.01), BTC_PERP)
    assert orders.reason.tolist() == [Reason.OUTSIDE_BAND]


def test_fields_of_different_lengths_are_refused() -> None:
    state = replace(book(arr(0.1, 0.2, 0.3)), price=arr(90_000.0, 91_000.0))
    with pytest.raises(ValueError, match="do not broadcast"):
        delta_band(state, DeltaBandParams(0.01), BTC_PERP)


def test_scalar_fields_broadcast_against_per_book_arrays() -> None:
    state = HedgeState(
        delta=arr(0.0, 0.5),
        target=np.array(0.0),
        gamma=np.array(0.0),
        price=np.array(90_000.0),
        now=np.array(0.0),
        last_rebalance=np.array(-math.inf),
        sigma=np.array(0.6),
        tau=np.array(0.1),
    )
    orders = delta_band(state, DeltaBandParams(0.1), BTC_PERP)
    assert orders.amount.tolist() == [0.0, -45_000.0]


def test_empty_state_gives_empty_orders() -> None:
    orders = gamma_scaled(book(np.empty(0)), WW, BTC_PERP)
    assert orders.amount.shape == (0,)
    assert orders.warnings == ()


# --- registry ---------------------------------------------------------------------------------


def test_registry_names_exactly_the_policy_kinds_settings_accept() -> None:
    kinds = typing.get_args(PolicySettings.model_fields["kind"].annotation)
    assert set(POLICIES) == set(kinds)


def test_every_policy_builds_its_params_from_its_settings_section() -> None:
    sections = PolicySettings().model_dump()
    for name, (_, params_type) in POLICIES.items():
        params = make_params(name, sections[name])
        assert isinstance(params, params_type)


def test_decide_runs_the_named_policy() -> None:
    state = book(0.3)
    for name, (policy, _) in POLICIES.items():
        by_name = decide(name, state, PARAMS[name], BTC_PERP)
        direct = policy(state, PARAMS[name], BTC_PERP)
        assert by_name.amount.tolist() == direct.amount.tolist()
        assert by_name.reason.tolist() == direct.reason.tolist()


def test_decide_refuses_an_unknown_policy_and_the_wrong_params() -> None:
    with pytest.raises(ValueError, match="unknown hedging policy 'martingale'"):
        decide("martingale", book(0.3), PARAMS["delta_band"], BTC_PERP)
    with pytest.raises(TypeError, match="takes DeltaBandParams, got TimeBandParams"):
        decide("delta_band", book(0.3), PARAMS["time_band"], BTC_PERP)


def test_decision_of_a_row_carries_trade_band_reason_and_warnings() -> None:
    state = book(arr(0.0, -0.0123))
    orders = delta_band(state, DeltaBandParams(band=0.00005), BTC_PERP)
    decision = decision_of("delta_band", state, orders, row=1)

    assert decision.trade_amount == 1110.0
    assert decision.trade_delta == pytest.approx(1110.0 / 90_000.0)
    assert decision.delta_before == -0.0123
    assert decision.expected_delta_after == pytest.approx(-0.0123 + 1110.0 / 90_000.0)
    assert decision.band_high == pytest.approx(10 / 90_000)
    assert decision.reason == "outside_band"
    assert decision.policy == "delta_band"
    assert decision.trades
    assert decision.warnings == orders.warnings


def test_zakamouline_band_matches_the_reference_formula_and_reads_sigma() -> None:
    from strategies.gamma_scaled import GammaScaledParams, gamma_scaled, zakamouline_band

    params = GammaScaledParams(risk_aversion=1e-3, cost=0.0005, min_band=0.0, method="zakamouline")
    gamma, price, sigma, tau = 6e-4, 90_000.0, 0.6, 7 / 365
    h0 = 0.0005 / (1e-3 * price * sigma**2 * tau)
    hw = 1.12 * 0.0005**0.31 * tau**0.05 * (1 / sigma) ** 0.25 * (gamma / 1e-3) ** 0.5
    width = zakamouline_band(
        np.array([gamma]), np.array([price]), np.array([sigma]), np.array([tau]), params
    )
    assert width[0] == pytest.approx(h0 + hw, rel=1e-12)
    calm = zakamouline_band(
        np.array([gamma]), np.array([price]), np.array([0.3]), np.array([tau]), params
    )
    assert calm[0] > width[0]  # lower vol: the cost term H0 widens the band

    def state(s: float) -> HedgeState:
        return HedgeState(
            delta=np.array([0.3]),
            target=np.array([0.0]),
            gamma=np.array([gamma]),
            price=np.array([price]),
            now=np.array([0.0]),
            last_rebalance=np.array([0.0]),
            sigma=np.array([s]),
            tau=np.array([tau]),
        )

    lot = LotSpec(step=10, min_amount=10)
    assert gamma_scaled(state(0.6), params, lot).band_high[0] == pytest.approx(h0 + hw)
    with pytest.raises(DataError, match="sigma"):
        gamma_scaled(state(float("nan")), params, lot)


def test_an_unknown_gamma_scaled_method_is_refused() -> None:
    from strategies.gamma_scaled import GammaScaledParams

    with pytest.raises(ValueError, match="method"):
        GammaScaledParams(risk_aversion=1.0, cost=0.0005, min_band=0.0, method="astrology")
