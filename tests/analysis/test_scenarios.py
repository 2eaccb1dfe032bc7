"""The risk grid: the book repriced under price and vol moves, its hedge and gamma flips."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from bot.analysis.scenarios import MIN_SIGMA, plot_gamma_profile, render_risk, scenario_grid
from bot.domain import Book, DataError, Instrument, OptionType, TargetMode
from bot.greeks import portfolio_greeks, year_fraction
from tests.support.books import NOW, book, option

CALL = option(90_000, OptionType.CALL)
PUT = option(90_000, OptionType.PUT)
FINE = [round(m / 100, 2) for m in range(-30, 31)]


def hedged(options: tuple[tuple[Instrument, float, float], ...], mode: TargetMode) -> Book:
    """A book whose perpetual (to the nearest 10 USD) flattens ``mode``'s delta."""
    bare = book(options=options)
    g = portfolio_greeks(bare, NOW)
    amount = round(-g.delta(mode) * 90_000 / 10) * 10
    return book(options=options, hedge=amount)


def short_straddle(mode: TargetMode = TargetMode.COIN) -> Book:
    return hedged(((CALL, -5.0, 0.55), (PUT, -5.0, 0.55)), mode)


def test_short_straddle_coin_pnl_is_concave_with_its_maximum_at_the_money() -> None:
    grid = scenario_grid(short_straddle(TargetMode.COIN), NOW, FINE, [0.0])
    pnl = grid.pnl_coin[0]
    assert np.all(np.diff(pnl, 2)[20:40] < 0)  # concave around the money
    assert abs(grid.price_moves[int(np.argmax(pnl))]) <= 0.01
    assert np.all(grid.gamma < 0)


def test_usd_hedged_short_straddle_usd_pnl_peaks_at_the_money_and_gamma_is_negative() -> None:
    grid = scenario_grid(short_straddle(TargetMode.USD), NOW, target_mode=TargetMode.USD)
    pnl = grid.pnl_usd[grid.vol_moves.index(0.0)]
    assert grid.price_moves[int(np.argmax(pnl))] == 0.0
    assert np.all(np.diff(pnl, 2) < 0)
    assert np.all(grid.gamma < 0)
    assert grid.gamma_flips == ()


def test_long_call_short_put_book_flips_gamma_between_the_strikes_where_theory_says() -> None:
    low, high, sigma = 80_000.0, 100_000.0, 0.5
    b = book(
        options=(
            (option(high, OptionType.CALL), 1.0, sigma),
            (option(low, OptionType.PUT), -1.0, sigma),
        )
    )
    grid = scenario_grid(b, NOW, FINE, [0.0])
    assert len(grid.gamma_flips) == 1
    flip = grid.gamma_flips[0]
    assert CALL.expiry is not None
    tau = year_fraction(NOW, CALL.expiry)
    # Equal Black-76 gammas: d1(K_low) = -d1(K_high), so F = sqrt(K_low K_high) e^(-sigma² tau/2)
    expected = math.sqrt(low * high) * math.exp(-(sigma**2) * tau / 2)
    assert flip.index_price == pytest.approx(expected, rel=3e-3)
    assert flip.direction == "negative_to_positive"
    assert flip.price_move == pytest.approx(expected / 90_000 - 1, abs=3e-3)


def test_zero_move_point_is_the_books_current_greeks_and_no_pnl() -> None:
    b = short_straddle()
    grid = scenario_grid(b, NOW)
    now = portfolio_greeks(b, NOW)
    at = grid.point(0.0, 0.0)
    assert at["pnl_coin"] == 0.0
    assert at["pnl_usd"] == 0.0
    assert at["delta_coin"] == pytest.approx(now.delta_coin, abs=1e-12)
    assert at["delta_usd_target"] == pytest.approx(now.delta_usd_target, abs=1e-12)
    assert at["gamma"] == pytest.approx(now.gamma, rel=1e-12)
    assert grid.base == now


def test_pnl_at_a_small_move_matches_delta_and_gamma_taylor_terms() -> None:
    b = short_straddle()
    g = portfolio_greeks(b, NOW)
    s = 90_000.0
    grid = scenario_grid(b, NOW, [-0.002, 0.0, 0.002], [0.0])
    for j, m in enumerate(grid.price_moves):
        ds = s * m
        usd = g.delta_usd_target * ds + 0.5 * g.gamma * ds * ds
        coin = g.delta_coin * ds / s + 0.5 * (g.gamma / s - 2 * g.delta_coin / s**2) * ds * ds
        assert grid.pnl_usd[0, j] == pytest.approx(usd, abs=0.02 * abs(0.5 * g.gamma * ds * ds))
        assert grid.pnl_coin[0, j] == pytest.approx(
            coin, abs=0.02 * abs(0.5 * g.gamma * ds * ds) / s
        )


def test_pnl_at_a_small_vol_move_is_vega_times_the_points() -> None:
    b = short_straddle()
    g = portfolio_greeks(b, NOW)
    grid = scenario_grid(b, NOW, [0.0], [-0.5, 0.0, 0.5])
    assert grid.pnl_usd[0, 0] == pytest.approx(-0.5 * g.vega, rel=1e-3)
    assert grid.pnl_usd[2, 0] == pytest.approx(0.5 * g.vega, rel=1e-3)


def test_perpetual_pnl_is_inverse_in_coin() -> None:
    b = book(hedge=100_000.0)
    grid = scenario_grid(b, NOW, [-0.1, 0.0, 0.1], [0.0])
    for j, m in enumerate(grid.price_moves):
        expected = 100_000.0 * (1 / 90_000 - 1 / (90_000 * (1 + m)))
        assert grid.pnl_coin[0, j] == pytest.approx(expected, rel=1e-12)
        assert grid.gamma[0, j] == 0.0


def test_hedge_at_each_point_brings_the_target_delta_within_half_a_lot() -> None:
    grid = scenario_grid(short_straddle(), NOW)
    after = grid.delta_coin + grid.hedge_amount / (90_000.0 * (1 + np.asarray(grid.price_moves)))
    assert np.all(np.abs(after) <= 0.5 * 10 / (90_000 * 0.7) + 1e-12)
    assert np.all(grid.hedge_amount % 10 == 0)
    # Down moves make a short straddle long delta: the hedge sells there.
    assert grid.point(-0.1, 0.0)["hedge_amount"] < 0 < grid.point(0.1, 0.0)["hedge_amount"]


def test_usd_target_hedge_differs_from_coin_target_by_the_equity() -> None:
    b = short_straddle()
    coin = scenario_grid(b, NOW, [0.0], [0.0])
    usd = scenario_grid(b, NOW, [0.0], [0.0], target_mode=TargetMode.USD)
    diff = coin.hedge_amount[0, 0] - usd.hedge_amount[0, 0]
    assert diff == pytest.approx(10.0 * 90_000, abs=10)


def test_a_vol_move_below_zero_is_floored_and_warned() -> None:
    b = book(options=((CALL, -1.0, 0.15),))
    grid = scenario_grid(b, NOW, [0.0], [-20.0, 0.0])
    assert any(str(MIN_SIGMA) in w for w in grid.warnings)
    assert np.isfinite(grid.pnl_usd).all()


def test_result_is_json_able_and_renders_as_tables() -> None:
    grid = scenario_grid(short_straddle(), NOW)
    data = json.loads(json.dumps(grid.to_dict()))
    assert len(data["pnl_usd"]) == len(grid.vol_moves)
    assert len(data["pnl_usd"][0]) == len(grid.price_moves)
    assert data["target_mode"] == "coin"
    assert data["base"]["delta_coin"] == pytest.approx(grid.base.delta_coin)
    text = render_risk(grid)
    assert "P&L in USD" in text
    assert "-30%" in text
    assert "+30%" in text
    assert "does not change sign" in text


def test_gamma_profile_plot_is_written_as_png(tmp_path: Path) -> None:
    grid = scenario_grid(short_straddle(), NOW)
    out = plot_gamma_profile(grid, tmp_path / "risk" / "gamma.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("price_moves", "vol_moves"),
    [([], [0.0]), ([-1.0, 0.0], [0.0]), ([0.1, 0.0], [0.0]), ([0.0], [float("nan")])],
)
def test_a_bad_grid_is_refused(price_moves: list[float], vol_moves: list[float]) -> None:
    with pytest.raises(ValueError, match="moves"):
        scenario_grid(short_straddle(), NOW, price_moves, vol_moves)


def test_an_option_with_a_nan_iv_is_a_data_error() -> None:
    with pytest.raises(DataError, match="mark_iv"):
        scenario_grid(book(options=((CALL, -1.0, float("nan")),)), NOW)


def test_expired_options_are_left_out_of_pnl_and_greeks() -> None:
    b = book(options=((CALL, -1.0, 0.5),))
    later = CALL.expiry
    assert later is not None
    grid = scenario_grid(b, later, [-0.1, 0.0, 0.1], [0.0])
    assert np.all(grid.pnl_coin == 0.0)
    assert grid.base.expired_skipped == (CALL.name,)
