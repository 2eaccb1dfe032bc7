"""The engine checks the book once per step, so policies may skip their own checks safely."""

from __future__ import annotations

import numpy as np
import pytest

from bot.backtest.book import BookAt, BookMarks
from bot.backtest.engine import CONTINUOUS_LOT, PolicyRun, hedge_book
from bot.domain import DataError
from strategies.common import HedgeState
from strategies.delta_band import DeltaBandParams
from strategies.lots import round_to_lots
from strategies.registry import decide
from strategies.time_band import TimeBandParams
from strategies.validate import CheckedState

N_STEPS, N_PATHS = 4, 3
PRICES = np.full((N_STEPS + 1, N_PATHS), 100.0)
TIMES = 900.0 * np.arange(N_STEPS + 1, dtype=np.float64)
RUNS = (PolicyRun("delta_band", DeltaBandParams(0.05)),)


def _book(bad_step: int) -> BookAt:
    def at(k: int) -> BookMarks:
        delta = np.full(N_PATHS, -0.5)
        if k == bad_step:
            delta[1] = np.nan
        return BookMarks(np.zeros(N_PATHS), delta, np.full(N_PATHS, np.nan), 0.6, 0.01)

    return at


def test_a_nan_book_delta_mid_run_raises_the_policies_own_error_naming_row_and_field() -> None:
    with pytest.raises(DataError, match=r"HedgeState.delta must be a finite number; row 1"):
        hedge_book(PRICES, TIMES, _book(2), RUNS, lot=CONTINUOUS_LOT)


def test_a_non_finite_initial_hedge_is_refused_before_any_step() -> None:
    with pytest.raises(DataError, match="initial_hedge"):
        hedge_book(
            PRICES,
            TIMES,
            _book(-1),
            RUNS,
            lot=CONTINUOUS_LOT,
            initial_hedge=float("nan"),
        )


def _state(cls: type[HedgeState], delta: float) -> HedgeState:
    one = np.ones(1)
    return cls(np.array([delta]), 0 * one, 0 * one, 100 * one, 0 * one, -np.inf * one, one, one)


def test_a_plain_state_is_still_checked_while_a_checked_state_decides_the_same_orders() -> None:
    with pytest.raises(DataError, match="delta"):
        decide("time_band", _state(HedgeState, np.nan), TimeBandParams(900.0), CONTINUOUS_LOT)
    plain = decide("time_band", _state(HedgeState, 0.37), TimeBandParams(900.0), CONTINUOUS_LOT)
    trusted = decide("time_band", _state(CheckedState, 0.37), TimeBandParams(900.0), CONTINUOUS_LOT)
    assert np.array_equal(plain.amount, trusted.amount)
    assert np.array_equal(plain.reason, trusted.reason)
    assert plain.amount[0] == pytest.approx(-0.37)


def test_sparse_lot_rounding_gives_the_dense_rounding_on_the_rows_that_trade() -> None:
    rng = np.random.default_rng(3)
    wanted = np.where(rng.random(1000) < 0.1, rng.normal(0, 0.01, 1000), 0.0)
    price = rng.uniform(50_000, 120_000, 1000)
    sparse = round_to_lots(wanted, price, CONTINUOUS_LOT)
    dense = round_to_lots(wanted[wanted != 0], price[wanted != 0], CONTINUOUS_LOT)
    assert np.array_equal(sparse.amount[wanted != 0], dense.amount)
    assert not sparse.amount[wanted == 0].any()
    assert not sparse.below_min[wanted == 0].any()
