"""Loading the real price and funding files with their quirks, and refusing unusable data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.backtest.datafiles import shared_data
from bot.backtest.history import (
    FundingSeries,
    LoadReport,
    epoch_seconds,
    load_binance_hourly,
    load_cryptocompare_hourly,
    load_funding,
    load_prices,
)
from bot.domain import DataError

PRICES = shared_data() / "prices"
BINANCE_BTC = PRICES / "btc_usdt_1h_binance_2017_2021.csv"
BINANCE_ETH = PRICES / "eth_usdt_1h_binance_2017_2021.csv"
CC_BTC = PRICES / "btc_usd_1h_cryptocompare_2022_2026.csv"
CC_ETH = PRICES / "eth_usd_1h_cryptocompare_2022_2026.csv"
FUNDING = PRICES / "btc_usdt_perp_funding_8h_binance_2019_2026.csv"

needs_data = pytest.mark.skipif(not PRICES.is_dir(), reason="shared market data not mounted")


def ts(iso: str) -> int:
    return int(epoch_seconds(iso))


@needs_data
@pytest.mark.parametrize("path", [BINANCE_BTC, BINANCE_ETH], ids=["btc", "eth"])
def test_binance_export_is_sorted_deduplicated_and_its_quirks_counted(path: Path) -> None:
    h = load_binance_hourly(path)
    r = h.report
    assert r.rows_read == 36_062
    assert r.newest_first
    assert r.duplicates_removed == 2_649
    assert r.rows_kept == len(h) == 36_062 - 2_649
    assert r.unix_ms_rows + r.unix_s_rows == 36_062
    assert r.unix_ms_rows > 0
    assert r.unix_s_rows > 0
    assert dict(r.date_formats) == {"%Y-%m-%d %H:%M:%S": 7_478, "%Y-%m-%d %I-%p": 28_584}
    assert np.all(np.diff(h.times) > 0)
    assert h.times[0] == ts("2017-08-17T04:00:00")
    assert h.times[-1] == ts("2021-06-10T00:00:00")
    assert h.step_seconds == 3600
    # 91 rows of late September 2017 carry a date label 4 h off their unix time: unix is kept.
    assert r.date_label_mismatches == 91
    assert r.max_gap_seconds == 5 * 3600
    assert r.gaps > 0
    assert np.all(np.isfinite(h.close))
    assert np.all(h.close > 0)


@needs_data
def test_binance_duplicated_hours_lie_in_autumn_2020_and_the_millisecond_row_wins() -> None:
    h = load_binance_hourly(BINANCE_BTC)
    per_hour = np.diff(h.times)
    assert per_hour.min() == 3600  # no hour left twice
    # The one duplicated hour whose two rows disagree keeps the newer (millisecond) export's close.
    i = int(np.searchsorted(h.times, ts("2020-11-20T07:00:00")))
    assert h.close[i] == pytest.approx(18_212.00)
    assert h.report.duplicate_conflicts == 1
    # Outside the duplicated stretch nothing was removed: the row count there is one per hour.
    inside = (h.times >= ts("2020-08-01T23:00:00")) & (h.times <= ts("2020-11-20T07:00:00"))
    hours = (ts("2020-11-20T07:00:00") - ts("2020-08-01T23:00:00")) // 3600 + 1
    assert inside.sum() <= hours


@needs_data
def test_binance_march_2020_crash_low_is_in_the_loaded_lows() -> None:
    h = load_prices(BINANCE_BTC)
    march = (h.times >= ts("2020-03-12T00:00:00")) & (h.times < ts("2020-03-14T00:00:00"))
    assert h.low[march].min() == pytest.approx(3_782.13, abs=1.0)


@needs_data
def test_cryptocompare_btc_is_hourly_without_gaps_or_repairs() -> None:
    h = load_cryptocompare_hourly(CC_BTC)
    assert len(h) == 36_577
    assert h.report.gaps == 0
    assert h.report.duplicates_removed == 0
    assert h.report.ohlc_repaired == 0
    assert not h.report.newest_first
    assert np.all(np.diff(h.times) == 3600)
    assert h.times[0] == ts("2022-01-01T00:00:00+00:00")


@needs_data
def test_cryptocompare_eth_rows_whose_high_low_miss_open_close_are_widened() -> None:
    h = load_prices(CC_ETH)
    assert h.report.ohlc_repaired == 35
    assert np.all(h.high >= np.maximum(h.open, h.close))
    assert np.all(h.low <= np.minimum(h.open, h.close))


@needs_data
def test_funding_series_is_every_eight_hours_with_jitter_rounded_away() -> None:
    f = load_funding(FUNDING)
    assert f.times.size == 7_028
    assert f.report.timestamp_jitter_rows > 0
    assert np.all(np.diff(f.times) == 8 * 3600)
    assert np.all(np.abs(f.rate_8h) <= 0.003 + 1e-12)
    t0 = int(f.times[0])
    assert f.rate_at([t0, t0 + 3600, t0 + 8 * 3600]).tolist() == [
        f.rate_8h[0],
        f.rate_8h[0],
        f.rate_8h[1],
    ]


def test_funding_outside_the_series_is_a_data_error() -> None:
    f = FundingSeries(
        np.array([0, 28_800]),
        np.array([1e-4, 2e-4]),
        report=LoadReport(source="test", rows_read=2, rows_kept=2),
    )
    with pytest.raises(DataError, match="outside"):
        f.rate_at([-1.0])
    with pytest.raises(DataError, match="outside"):
        f.rate_at([3 * 28_800 + 1.0])


def test_grid_carries_the_last_price_over_a_gap(tmp_path: Path) -> None:
    path = tmp_path / "cc.csv"
    path.write_text(
        "datetime,open,high,low,close,volume\n"
        "2022-01-01 00:00:00+00:00,1,1,1,100,0\n"
        "2022-01-01 01:00:00+00:00,1,1,1,101,0\n"
        "2022-01-01 04:00:00+00:00,1,1,1,104,0\n"
    )
    h = load_prices(path)
    assert h.report.gaps == 1
    assert h.report.max_gap_seconds == 3 * 3600
    _grid, prices, carried = h.on_grid(3600)
    assert prices.tolist() == [100, 101, 101, 101, 104]
    assert carried == 2
    _, two_hourly, _ = h.on_grid(7200)
    assert two_hourly.tolist() == [100, 101, 104]
    with pytest.raises(DataError, match="multiple"):
        h.on_grid(1800)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prices.csv"
    path.write_text(text)
    return path


BINANCE_HEADER = "unix,date,symbol,open,high,low,close,Volume BTC,Volume USDT,tradecount\n"


def test_binance_units_and_date_formats_are_normalised(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        BINANCE_HEADER
        + "1605859200000,2020-11-20 08:00:00,BTC/USDT,2,2,2,2,0,0,1\n"
        + "1605855600000,2020-11-20 07:00:00,BTC/USDT,1,1,1,1,0,0,1\n"
        + "1605855600.0,2020-11-20 07-AM,BTC/USDT,1,1,1,1.5,0,0,NULL\n"
        + "1605852000.0,2020-11-20 06-AM,BTC/USDT,1,1,1,0.5,0,0,NULL\n",
    )
    h = load_prices(path)
    assert h.times.tolist() == [1605852000, 1605855600, 1605859200]
    assert h.close.tolist() == [0.5, 1.0, 2.0]
    assert h.report.duplicates_removed == 1
    assert h.report.duplicate_conflicts == 1
    assert h.report.date_label_mismatches == 0


def test_missing_price_column_is_a_data_error_naming_it(tmp_path: Path) -> None:
    path = _write(tmp_path, "datetime,open,high,low,volume\n2022-01-01 00:00:00+00:00,1,1,1,0\n")
    with pytest.raises(DataError, match=r"missing columns \['close'\]"):
        load_cryptocompare_hourly(path)


@pytest.mark.parametrize("bad", ["", "nan", "-5", "0"])
def test_missing_nan_or_non_positive_close_is_a_data_error(tmp_path: Path, bad: str) -> None:
    path = _write(
        tmp_path,
        "datetime,open,high,low,close,volume\n"
        "2022-01-01 00:00:00+00:00,1,1,1,1,0\n"
        f"2022-01-01 01:00:00+00:00,1,1,1,{bad},0\n",
    )
    with pytest.raises(DataError, match=r"'close'.*row 2"):
        load_prices(path)


def test_unreadable_time_is_a_data_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "datetime,open,high,low,close,volume\nyesterday,1,1,1,1,0\n")
    with pytest.raises(DataError, match="unreadable time"):
        load_prices(path)


def test_a_file_of_neither_format_is_a_data_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "when,price\n2022-01-01,1\n")
    with pytest.raises(DataError, match="neither"):
        load_prices(path)
    with pytest.raises(DataError, match="cannot read"):
        load_prices(tmp_path / "absent.csv")


def test_funding_rate_that_is_not_a_number_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "funding.csv"
    path.write_text(
        "timestamp,funding_rate\n2020-01-01 00:00:00.000,0.0001\n2020-01-01 08:00:00,x\n"
    )
    with pytest.raises(DataError, match="row 2"):
        load_funding(path)
