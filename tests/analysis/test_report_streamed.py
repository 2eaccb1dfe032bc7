"""The streamed report (columns read in chunks, attribution on arrays) gives exactly the
numbers the row-by-row report gave, on a realistic ledger: trades, skipped cycles without
figures, greeks without a stored IV, two currencies, ``since`` and ``currency`` filters."""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from bench.ledger_gen import START, build_ledger
from bot.analysis.attribution import ConstantFunding, Funding, SeriesFunding
from bot.analysis.costs import build_report
from bot.analysis.report import render_report, report_data
from bot.backtest.history import FundingSeries, LoadReport
from bot.config import DEFAULT_FACTS, hedge_instruments
from bot.store import open_ledger
from tests.analysis import reference_costs

INSTRUMENTS = hedge_instruments(DEFAULT_FACTS)


@pytest.fixture(scope="module")
def ledger_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = build_ledger(tmp_path_factory.mktemp("ledger") / "year.sqlite", 1_500)
    return f"sqlite:///{path}"


def same(a: Any, b: Any) -> bool:
    """Equal values, NaN equal to NaN, floats compared exactly."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(type(a) is type(b) and a == b)


def assert_same_report(new: Any, old: Any) -> None:
    assert new.message == old.message
    assert new.funding == old.funding
    assert [b.currency for b in new.books] == [b.currency for b in old.books]
    for nb, ob in zip(new.books, old.books, strict=True):
        assert (nb.first_ts, nb.last_ts, nb.notes) == (ob.first_ts, ob.last_ts, ob.notes)
        assert dataclasses.asdict(nb.totals) == dataclasses.asdict(ob.totals)
        assert [dataclasses.astuple(f) for f in nb.fills] == [
            dataclasses.astuple(f) for f in ob.fills
        ]
        assert len(nb.rebalances) == len(ob.rebalances)
        for nr, orow in zip(nb.rebalances, ob.rebalances, strict=True):
            for f in dataclasses.fields(orow):
                x, y = getattr(nr, f.name), getattr(orow, f.name)
                assert same(x, y), (nr.cycle_id, f.name, x, y)
        assert nb.cumulative_cost_usd() == ob.cumulative_cost_usd()
        na, oa = nb.attribution, ob.attribution
        for f in dataclasses.fields(oa):
            x, y = getattr(na, f.name), getattr(oa, f.name)
            if isinstance(y, np.ndarray):
                np.testing.assert_array_equal(x, y, err_msg=f.name)
            else:
                assert x == y, f.name
        assert nb.cost_per_variance == ob.cost_per_variance


@pytest.mark.parametrize(
    "funding",
    [
        ConstantFunding(0.0001),
        SeriesFunding(
            FundingSeries(
                times=np.arange(-1, 400, dtype=np.int64) * 8 * 3600 + int(START.timestamp()),
                rate_8h=np.linspace(-0.0002, 0.0003, 401),
                report=LoadReport(source="test", rows_read=401, rows_kept=401),
            )
        ),
    ],
    ids=["constant", "series"],
)
def test_the_streamed_report_equals_the_row_by_row_report_on_a_realistic_ledger(
    ledger_url: str, funding: Funding
) -> None:
    ledger = open_ledger(ledger_url)
    new = build_report(ledger, INSTRUMENTS, funding=funding)
    old = reference_costs.build_report(ledger, INSTRUMENTS, funding=funding)
    assert sum(len(b.rebalances) for b in new.books) == 3_000
    assert any("have no IV stored" in n for n in new.books[0].notes), new.books[0].notes
    assert_same_report(new, old)


def test_the_streamed_report_from_a_date_for_one_currency_equals_the_row_by_row_one(
    ledger_url: str,
) -> None:
    ledger = open_ledger(ledger_url)
    since = START + timedelta(hours=20)
    new = build_report(ledger, INSTRUMENTS, currency="ETH", since=since)
    old = reference_costs.build_report(ledger, INSTRUMENTS, currency="ETH", since=since)
    assert [b.currency for b in new.books] == ["ETH"]
    assert new.books[0].first_ts >= since
    assert_same_report(new, old)


def test_the_streamed_report_exports_the_same_data_as_the_row_by_row_one(ledger_url: str) -> None:
    ledger = open_ledger(ledger_url)
    new = build_report(ledger, INSTRUMENTS)
    old = reference_costs.build_report(ledger, INSTRUMENTS)
    assert report_data(new) == report_data(old)  # type: ignore[arg-type]
    text = render_report(new, max_rows=5)
    traded = sum(1 for r in old.books[0].rebalances if r.status == "traded" or r.filled_amount)
    assert f"rebalances that traded (5 of {traded} shown" in text
