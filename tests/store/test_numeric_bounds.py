"""The ledger refuses absurd numbers on every backend: SQLite would store a fill of 1e18 in a
NUMERIC(36, 18) column that PostgreSQL refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.domain import DataError, Fill, Liquidity, Side
from bot.store.db import open_ledger
from tests.support.books import NOW


@pytest.mark.parametrize("amount", [1e18, 1e30, -1e18])
def test_a_fill_beyond_numeric_36_18_is_refused_and_nothing_is_stored(
    tmp_path: Path, amount: float
) -> None:
    ledger = open_ledger(f"sqlite:///{tmp_path}/l.db", create=True)
    fill = Fill(
        "t1", "v1", "hb-x-1", "BTC-PERPETUAL", Side.BUY, 5_340.0, 90_000.0, amount, "BTC",
        Liquidity.TAKER, NOW,
    )  # fmt: skip
    with pytest.raises(DataError, match="NUMERIC"):
        ledger.record_fill(fill)
    assert ledger.fills() == []


def test_a_large_but_real_figure_is_stored_exactly(tmp_path: Path) -> None:
    ledger = open_ledger(f"sqlite:///{tmp_path}/l.db", create=True)
    fill = Fill(
        "t1", "v1", "hb-x-1", "BTC-PERPETUAL", Side.BUY, 999_999_990.0, 90_000.5, 0.0, "BTC",
        Liquidity.TAKER, NOW,
    )  # fmt: skip
    assert ledger.record_fill(fill)
    assert ledger.fills()[0].amount == 999_999_990.0
