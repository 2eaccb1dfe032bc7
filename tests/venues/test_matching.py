"""Matching against book levels, Deribit fees and amount/price validation."""

from __future__ import annotations

import numpy as np
import pytest

from bot.config import FeeSettings
from bot.domain import (
    DataError,
    Liquidity,
    OptionType,
    OrderType,
    Side,
    TimeInForce,
)
from bot.venues.errors import OrderRejected
from bot.venues.paper.matching import (
    INVALID_AMOUNT,
    INVALID_ARGUMENTS,
    POST_ONLY_REJECT,
    PRICE_WRONG_TICK,
    QTY_TOO_LOW,
    Level,
    MatchResult,
    check_amount,
    check_price,
    fee_coin,
    match_order,
    resting_fill,
    round_down,
    round_down_all,
    round_up,
    round_up_all,
    snap,
)
from tests.support.books import PERP, option

CALL = option(90_000, OptionType.CALL, days=81)  # BTC-27MAR26-90000-C
BIDS: list[Level] = [(99.5, 100.0), (99.0, 200.0), (98.5, 300.0)]
ASKS: list[Level] = [(100.5, 100.0), (101.0, 200.0), (101.5, 300.0)]


def match(
    side: Side,
    amount: float,
    price: float | None = None,
    *,
    order_type: OrderType = OrderType.LIMIT,
    tif: TimeInForce = TimeInForce.GTC,
    post_only: bool = False,
) -> MatchResult:
    return match_order(
        side=side,
        amount=amount,
        order_type=order_type,
        price=price,
        post_only=post_only,
        time_in_force=tif,
        bids=BIDS,
        asks=ASKS,
        step=10,
    )


def test_market_buy_walks_the_asks_level_by_level() -> None:
    result = match(Side.BUY, 250, order_type=OrderType.MARKET)
    assert [(e.price, e.amount) for e in result.executions] == [(100.5, 100), (101.0, 150)]
    assert result.remaining == 0
    assert result.average_price == pytest.approx((100.5 * 100 + 101 * 150) / 250)


def test_market_sell_beyond_the_depth_fills_partially_and_cancels_the_rest() -> None:
    result = match(Side.SELL, 1000, order_type=OrderType.MARKET)
    assert result.filled == 600
    assert result.remaining == 400
    assert not result.rests


def test_gtc_limit_takes_up_to_its_price_and_rests_the_remainder() -> None:
    result = match(Side.BUY, 500, 101.0)
    assert result.filled == 300
    assert result.remaining == 200
    assert result.rests


def test_ioc_limit_remainder_is_cancelled_not_rested() -> None:
    result = match(Side.SELL, 500, 99.0, tif=TimeInForce.IOC)
    assert [(e.price, e.amount) for e in result.executions] == [(99.5, 100), (99.0, 200)]
    assert result.remaining == 200
    assert not result.rests


def test_fill_or_kill_that_cannot_fill_completely_fills_nothing() -> None:
    result = match(Side.BUY, 700, 101.5, tif=TimeInForce.FOK)
    assert result.executions == ()
    assert result.remaining == 700


def test_post_only_that_would_cross_is_rejected_with_11054_not_repriced() -> None:
    with pytest.raises(OrderRejected) as err:
        match(Side.BUY, 100, 100.5, post_only=True)
    assert err.value.code == POST_ONLY_REJECT


def test_post_only_below_the_ask_rests_untouched() -> None:
    result = match(Side.BUY, 100, 100.0, post_only=True)
    assert result.executions == ()
    assert result.rests


def test_limit_order_without_price_is_rejected_as_invalid_arguments() -> None:
    with pytest.raises(OrderRejected) as err:
        match(Side.BUY, 100)
    assert err.value.code == INVALID_ARGUMENTS


def test_a_book_level_with_a_nan_price_is_a_data_error() -> None:
    with pytest.raises(DataError):
        match_order(
            side=Side.BUY,
            amount=100,
            order_type=OrderType.MARKET,
            price=None,
            post_only=False,
            time_in_force=TimeInForce.IOC,
            bids=BIDS,
            asks=[(float("nan"), 100.0)],
            step=10,
        )


def test_resting_buy_fills_only_from_asks_strictly_below_its_price() -> None:
    asks: list[Level] = [(99.0, 100.0), (99.5, 50.0), (100.0, 500.0)]
    filled = resting_fill(side=Side.BUY, price=100.0, remaining=400, bids=BIDS, asks=asks, step=10)
    assert filled == 150
    assert (
        resting_fill(side=Side.SELL, price=99.5, remaining=400, bids=BIDS, asks=ASKS, step=10) == 0
    )


@pytest.mark.parametrize(
    ("amount", "code"), [(5, QTY_TOO_LOW), (25, INVALID_AMOUNT), (0, INVALID_AMOUNT)]
)
def test_perpetual_amounts_below_minimum_or_off_step_are_rejected(amount: float, code: int) -> None:
    with pytest.raises(OrderRejected) as err:
        check_amount(PERP, amount)
    assert err.value.code == code


def test_option_amounts_on_the_step_pass_despite_float_noise() -> None:
    check_amount(CALL, 0.1 + 0.2)
    check_amount(CALL, 1.7)
    assert snap(0.1 + 0.2, 0.1) == 0.3
    with pytest.raises(OrderRejected) as err:
        check_amount(CALL, 0.15)
    assert err.value.code == INVALID_AMOUNT


def test_limit_price_off_the_tick_is_rejected() -> None:
    check_price(PERP, 90_000.5)
    with pytest.raises(OrderRejected) as err:
        check_price(PERP, 90_000.3)
    assert err.value.code == PRICE_WRONG_TICK


def test_inverse_perp_taker_fee_is_rate_times_usd_over_price_in_coin() -> None:
    fees = FeeSettings()
    assert fee_coin(PERP, 10_000, 50_000, Liquidity.TAKER, fees) == pytest.approx(0.0001)
    assert fee_coin(PERP, 10_000, 50_000, Liquidity.MAKER, fees) == 0.0
    rebate = FeeSettings(perp_maker=-0.0001)
    assert fee_coin(PERP, 10_000, 50_000, Liquidity.MAKER, rebate) == pytest.approx(-0.00002)


def test_option_fee_is_three_bp_of_underlying_capped_at_an_eighth_of_the_price() -> None:
    fees = FeeSettings()
    assert fee_coin(CALL, 2.0, 0.05, Liquidity.TAKER, fees) == pytest.approx(0.0006)
    assert fee_coin(CALL, 2.0, 0.001, Liquidity.TAKER, fees) == pytest.approx(0.125 * 0.002)


@pytest.mark.parametrize("step", [0.0001, 0.0005, 0.5, 2.5])
def test_rounding_arrays_gives_exactly_the_floats_of_rounding_each_value(step: float) -> None:
    values = np.exp(np.random.default_rng(7).uniform(np.log(1e-5), np.log(2.0), 2_000)) / 1e-3
    values = np.concatenate([values * step, np.round(values) * step])  # on and off the grid
    steps = np.full(values.shape, step)
    assert round_down_all(values, steps) == [round_down(v, step) for v in values.tolist()]
    assert round_up_all(values, steps) == [round_up(v, step) for v in values.tolist()]
