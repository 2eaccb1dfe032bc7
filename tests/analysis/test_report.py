"""The cost-of-hedging report, built from a small ledger written through the Ledger API."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from bot.analysis.attribution import ConstantFunding, SeriesFunding, break_even_vol
from bot.analysis.report import (
    build_report,
    funding_from,
    plot_report,
    render_report,
    report_data,
    to_csv,
    to_json,
)
from bot.backtest.datafiles import shared_data
from bot.backtest.history import FundingSeries, LoadReport
from bot.config import DEFAULT_FACTS, hedge_instruments
from bot.domain import DataError, Fill, Liquidity, OrderRequest, PortfolioGreeks, Side
from bot.store import GreeksSnapshot, Ledger, RebalanceRecord, open_ledger, upgrade

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
PERP = "BTC-PERPETUAL"
INSTRUMENTS = hedge_instruments(DEFAULT_FACTS)
GAMMA = -5e-4  # coin per USD: a short straddle
VEGA = -500.0  # USD per vol point
SIGMA = 0.6  # every cycle's theta is set so the break-even vol stays at 60%
FUNDING_CSV = shared_data() / "prices" / "btc_usdt_perp_funding_8h_binance_2019_2026.csv"


def theta_for(index: float, sigma: float = SIGMA, gamma: float = GAMMA) -> float:
    """Θ (USD/day) at which ``sigma`` is the book's break-even vol."""
    return -(sigma**2) * gamma * index * index / (2 * 365)


@dataclass
class Cycle:
    minutes: float
    index: float
    equity: float
    delta: float
    hedge: float  # perp position read at the cycle, before its fills
    trade: float | None = None
    fills: list[tuple[Side, float, float, float]] = field(
        default_factory=list
    )  # side, amt, px, fee
    status: str = "no_trade"
    sigma: float = SIGMA
    mid: float | None = None
    iv: float | None = None  # mean IV stored with the greeks

    @property
    def ts(self) -> datetime:
        return T0 + timedelta(minutes=self.minutes)


def record(ledger: Ledger, c: Cycle, n: int, currency: str = "BTC") -> None:
    cid = f"cycle-{currency}-{n}"
    mid = c.mid or c.index
    theta = theta_for(c.index, c.sigma)
    greeks = PortfolioGreeks(
        currency=currency,
        index_price=c.index,
        delta_coin=c.delta,
        delta_usd_target=c.delta + c.equity,
        options_delta_net=c.delta,
        options_delta_bs=c.delta,
        futures_delta=0.0,
        gamma=GAMMA,
        dollar_gamma=GAMMA * c.index**2 / 100,
        vega=VEGA,
        theta=theta,
        equity=c.equity,
        iv=c.iv,
    )
    ledger.record_greeks(
        GreeksSnapshot(
            cycle_id=cid,
            ts=c.ts,
            currency=currency,
            index_price=c.index,
            delta_coin=c.delta,
            delta_usd_target=c.delta + c.equity,
            gamma=GAMMA,
            dollar_gamma=GAMMA * c.index**2 / 100,
            vega=VEGA,
            theta=theta,
            equity=c.equity,
            hedge_position=c.hedge,
        )
    )
    rid = ledger.record_rebalance(
        RebalanceRecord(
            cycle_id=cid,
            ts=c.ts,
            currency=currency,
            mode="daemon",
            policy="delta_band",
            target_mode="coin",
            status=c.status,
            instrument=f"{currency}-PERPETUAL",
            index_price=c.index,
            hedge_bid=mid - 0.5,
            hedge_ask=mid + 0.5,
            hedge_mid=mid,
            delta_before=c.delta,
            target=0.0,
            band_low=-0.1,
            band_high=0.1,
            gamma=GAMMA,
            vega=VEGA,
            theta=theta,
            equity=c.equity,
            trade_amount=c.trade,
            trade_delta=None if c.trade is None else c.trade / mid,
            greeks=greeks,
        )
    )
    for k, (side, amount, price, fee) in enumerate(c.fills):
        label = f"hb-{cid}-{k}"
        ledger.record_order(
            OrderRequest(label, f"{currency}-PERPETUAL", side, amount, price=price),
            cycle_id=cid,
            rebalance_id=rid,
            decision_mid=mid,
            ts=c.ts,
        )
        ledger.record_fill(
            Fill(
                trade_id=f"T-{cid}-{k}",
                venue_order_id=f"V-{cid}-{k}",
                label=label,
                instrument_name=f"{currency}-PERPETUAL",
                side=side,
                amount=amount,
                price=price,
                fee=fee,
                fee_currency=currency,
                liquidity=Liquidity.TAKER,
                timestamp=c.ts + timedelta(seconds=1),
                index_price=c.index,
            )
        )


def slip_coin(side: Side, amount: float, price: float, mid: float) -> float:
    return side.sign * amount * (1 / mid - 1 / price)


# Four cycles an hour apart. Equity is chosen so the book's P&L before costs is, in USD at the
# interval's start price: -150, +40, +10.
S = (90_000.0, 91_000.0, 90_000.0, 89_000.0)
SELL = (Side.SELL, 27_000.0, 89_995.0, 0.00015)  # 5 USD below the mid
BUY = (Side.BUY, 9_000.0, 90_005.0, 0.00002)  # 5 USD above the mid
COSTS_1 = SELL[3] + slip_coin(SELL[0], SELL[1], SELL[2], S[0])
COSTS_3 = BUY[3] + slip_coin(BUY[0], BUY[1], BUY[2], S[2])
E1 = 10.0
E2 = E1 - COSTS_1 - 150.0 / S[0]
E3 = E2 + 40.0 / S[1]
E4 = E3 - COSTS_3 + 10.0 / S[2]
CYCLES = (
    Cycle(0, S[0], E1, 0.30, 0.0, trade=-27_000.0, fills=[SELL], status="traded"),
    Cycle(60, S[1], E2, 0.05, -27_000.0),
    Cycle(120, S[2], E3, -0.10, -27_000.0, trade=9_000.0, fills=[BUY], status="traded"),
    Cycle(180, S[3], E4, 0.02, -18_000.0),
)


@pytest.fixture
def url(tmp_path: Path) -> str:
    u = f"sqlite:///{tmp_path / 'ledger.db'}"
    upgrade(u)
    return u


@pytest.fixture
def ledger(url: str) -> Ledger:
    led = open_ledger(url)
    for n, c in enumerate(CYCLES):
        record(led, c, n)
    return led


def test_slippage_of_a_buy_5_usd_above_a_90000_mid_is_plus_0_56_bps(ledger: Ledger) -> None:
    book = build_report(ledger, INSTRUMENTS).books[0]
    buy = next(f for f in book.fills if f.side == "buy")
    assert buy.slippage_bps == pytest.approx(0.5556, abs=1e-4)
    coin = 9_000 * (1 / 90_000 - 1 / 90_005)
    assert buy.slippage_coin == pytest.approx(coin, rel=1e-9)
    assert buy.slippage_usd == pytest.approx(coin * 90_000, rel=1e-9)


def test_a_sell_below_the_mid_is_a_positive_cost_too(ledger: Ledger) -> None:
    book = build_report(ledger, INSTRUMENTS).books[0]
    sell = next(f for f in book.fills if f.side == "sell")
    assert sell.slippage_bps == pytest.approx(5 / 90_000 * 1e4, rel=1e-9)
    assert sell.slippage_coin is not None
    assert sell.slippage_coin > 0
    assert book.totals.slippage_bps == pytest.approx(5 / 90_000 * 1e4, rel=1e-6)


def test_fees_are_summed_in_coin_and_valued_in_usd_at_the_index(ledger: Ledger) -> None:
    t = build_report(ledger, INSTRUMENTS).books[0].totals
    assert t.fees_coin == pytest.approx(0.00017, rel=1e-9)
    assert t.fees_usd == pytest.approx(0.00015 * 90_000 + 0.00002 * 90_000, rel=1e-9)
    assert t.fills == 2
    assert t.traded == 2
    assert t.rebalances == 4
    assert t.traded_notional == {PERP: 36_000.0}


def test_per_rebalance_costs_follow_their_own_fills(ledger: Ledger) -> None:
    rebs = build_report(ledger, INSTRUMENTS).books[0].rebalances
    assert [r.filled_amount for r in rebs] == [-27_000.0, 0.0, 9_000.0, 0.0]
    assert rebs[0].fees_coin == pytest.approx(0.00015)
    assert rebs[1].fees_coin == 0.0
    assert rebs[2].slippage_bps == pytest.approx(0.5556, abs=1e-4)
    assert [r.hedge_held for r in rebs] == [-27_000.0, -27_000.0, -18_000.0, -18_000.0]
    assert rebs[0].delta_held == pytest.approx(0.0, abs=1e-12)
    assert rebs[2].delta_held == pytest.approx(0.0, abs=1e-12)


def test_constant_funding_is_paid_on_the_hedge_held_between_rebalances(ledger: Ledger) -> None:
    book = build_report(ledger, INSTRUMENTS, funding=0.0001).books[0]
    per_hour = 0.0001 / 8
    expected = [-27_000 * per_hour, -27_000 * per_hour, -18_000 * per_hour, 0.0]
    assert [r.funding_usd for r in book.rebalances] == pytest.approx(expected, rel=1e-9)
    assert book.totals.funding_usd == pytest.approx(sum(expected), rel=1e-9)
    assert book.rebalances[0].funding_coin == pytest.approx(expected[0] / 90_000, rel=1e-9)


def test_funding_from_a_series_integrates_the_rate_in_force(ledger: Ledger) -> None:
    times = np.array([T0.timestamp() - 8 * 3600, T0.timestamp() + 1.5 * 3600], dtype=np.int64)
    series = FundingSeries(
        times=times,
        rate_8h=np.array([0.0008, -0.0008]),
        report=LoadReport(source="test", rows_read=2, rows_kept=2),
    )
    book = build_report(ledger, INSTRUMENTS, funding=SeriesFunding(series)).books[0]
    hour = 0.0008 / 8
    # First hour at +rate; second half at +rate, half at -rate (nets to 0); third at -rate.
    expected = [-27_000 * hour, 0.0, -18_000 * -hour, 0.0]
    assert [r.funding_usd for r in book.rebalances] == pytest.approx(expected, abs=1e-9)


def test_funding_outside_the_series_is_a_data_error_not_an_extrapolation(ledger: Ledger) -> None:
    times = np.array([T0.timestamp() + 3600], dtype=np.int64)
    series = FundingSeries(times, np.array([0.0001]), LoadReport("test", 1, 1))
    with pytest.raises(DataError, match="funding series covers"):
        build_report(ledger, INSTRUMENTS, funding=SeriesFunding(series))


def test_pnl_attribution_splits_each_interval_by_greek_and_the_parts_add_up(
    ledger: Ledger,
) -> None:
    a = build_report(ledger, INSTRUMENTS).books[0].attribution
    assert a.n == 3
    assert a.actual == pytest.approx([-150.0, 40.0, 10.0], abs=1e-6)
    ds = np.diff(S)
    assert a.gamma == pytest.approx(0.5 * GAMMA * ds**2, rel=1e-9)
    thetas = [theta_for(s) / 24 for s in S[:3]]
    assert a.theta == pytest.approx(thetas, rel=1e-9)
    # Delta held after each cycle's fills: 0, 0.05 (no trade), 0; coin target's inverse form.
    assert a.delta == pytest.approx([0.0, 0.05 * ds[1] * S[1] / S[2], 0.0], abs=1e-9)
    assert a.vega == pytest.approx([0.0, 0.0, 0.0], abs=1e-6)  # break-even vol constant
    assert a.delta + a.gamma + a.theta + a.vega + a.residual == pytest.approx(a.actual, abs=1e-9)


def test_vega_part_is_vega_times_the_change_of_the_stored_mean_iv(url: str) -> None:
    ledger = open_ledger(url)
    record(ledger, Cycle(0, 90_000.0, 10.0, 0.0, 0.0, iv=0.55), 0)
    record(ledger, Cycle(60, 90_000.0, 10.0, 0.0, 0.0, iv=0.57), 1)
    book = build_report(ledger, INSTRUMENTS).books[0]
    assert book.attribution.vega[0] == pytest.approx(VEGA * 2.0, rel=1e-9)
    assert book.attribution.implied_vol[0] == pytest.approx(0.55, rel=1e-12)
    assert book.attribution.vega_intervals == 1
    assert not any("no IV stored" in n for n in book.notes)


def test_without_a_stored_iv_vega_pnl_stays_in_the_residual_and_a_note_says_so(url: str) -> None:
    ledger = open_ledger(url)
    record(ledger, Cycle(0, 90_000.0, 10.0, 0.0, 0.0, sigma=0.60), 0)
    record(ledger, Cycle(60, 90_000.0, 10.0 - 1000 / 90_000, 0.0, 0.0, sigma=0.62), 1)
    book = build_report(ledger, INSTRUMENTS).books[0]
    a = book.attribution
    assert a.vega[0] == 0.0
    assert a.implied_vol[0] == pytest.approx(0.60, rel=1e-9)  # break-even vol from theta/gamma
    assert a.residual[0] == pytest.approx(-1000.0 - a.theta[0], rel=1e-9)
    assert any("1 of 1 intervals have no IV stored" in n for n in book.notes)


def test_realised_vol_is_compared_with_break_even_implied(ledger: Ledger) -> None:
    a = build_report(ledger, INSTRUMENTS).books[0].attribution
    r = np.diff(np.log(S))
    years = 3 / (365 * 24)
    assert a.realised_vol == pytest.approx(math.sqrt(float(np.sum(r * r)) / years), rel=1e-9)
    assert a.implied_vol_mean == pytest.approx(SIGMA, rel=1e-9)
    assert break_even_vol(theta_for(90_000), GAMMA, 90_000) == pytest.approx(SIGMA)
    assert break_even_vol(-100.0, GAMMA, 90_000) is None  # Θ and Γ of one sign: undefined


def test_cost_per_unit_of_variance_removed_divides_total_cost_by_the_reduction(
    ledger: Ledger,
) -> None:
    book = build_report(ledger, INSTRUMENTS).books[0]
    a = book.attribution
    hedge = np.array(
        [
            -27_000 * (1 / S[0] - 1 / S[1]) * S[0],
            -27_000 * (1 / S[1] - 1 / S[2]) * S[1],
            -18_000 * (1 / S[2] - 1 / S[3]) * S[2],
        ]
    )
    assert a.hedge_pnl == pytest.approx(hedge, rel=1e-9)
    unhedged = np.array([-150.0, 40.0, 10.0]) - hedge
    assert a.variance_unhedged == pytest.approx(np.var(unhedged, ddof=1), rel=1e-6)
    assert a.variance_hedged == pytest.approx(np.var([-150.0, 40.0, 10.0], ddof=1), rel=1e-6)
    assert a.variance_removed is not None
    assert a.variance_removed > 0
    assert book.cost_per_variance == pytest.approx(
        book.totals.cost_usd / a.variance_removed, rel=1e-12
    )


def test_a_skipped_cycle_without_greeks_is_listed_but_not_attributed(url: str) -> None:
    ledger = open_ledger(url)
    record(ledger, CYCLES[0], 0)
    ledger.record_rebalance(
        RebalanceRecord(
            cycle_id="skipped",
            ts=T0 + timedelta(minutes=30),
            currency="BTC",
            mode="daemon",
            policy="delta_band",
            target_mode="coin",
            status="skipped",
            reason="stale data",
        )
    )
    record(ledger, CYCLES[1], 1)
    book = build_report(ledger, INSTRUMENTS).books[0]
    assert len(book.rebalances) == 3
    assert book.attribution.n == 1
    assert book.attribution.actual[0] == pytest.approx(-150.0, abs=1e-6)


def test_csv_json_and_png_files_are_written(ledger: Ledger, tmp_path: Path) -> None:
    report = build_report(ledger, INSTRUMENTS)
    out = tmp_path / "report"
    csvs = to_csv(report, out)
    assert sorted(p.name for p in csvs) == [
        "fills.csv",
        "intervals.csv",
        "rebalances.csv",
        "summary.csv",
    ]
    rebalances = (out / "rebalances.csv").read_text().splitlines()
    assert len(rebalances) == 5
    assert rebalances[0].startswith("currency,id,cycle_id")
    data = json.loads(to_json(report))
    summary = data["books"][0]["summary"]
    assert summary["fees_coin"] == pytest.approx(0.00017)
    assert len(data["books"][0]["intervals"]) == 3
    pngs = plot_report(report, out)
    assert sorted(p.name for p in pngs) == ["btc_attribution.png", "btc_cost.png", "btc_delta.png"]
    for p in pngs:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_render_report_shows_costs_attribution_and_the_trades(ledger: Ledger) -> None:
    text = render_report(build_report(ledger, INSTRUMENTS))
    assert "+0.56 bps" in text
    assert "funding on the hedge" in text
    assert "gamma" in text
    assert "realised" in text
    assert "rebalances that traded (2 of 2 shown" in text


def test_an_empty_ledger_says_no_rebalances_recorded(url: str, tmp_path: Path) -> None:
    report = build_report(open_ledger(url), INSTRUMENTS)
    assert report.empty
    assert report.message == "no rebalances recorded"
    assert "no rebalances recorded" in render_report(report)
    assert plot_report(report, tmp_path) == []
    assert json.loads(to_json(report))["books"] == []
    written = to_csv(report, tmp_path / "csv")
    assert all(len(p.read_text().splitlines()) == 1 for p in written)  # headers only


def test_a_currency_with_no_rebalances_is_named_in_the_message(ledger: Ledger) -> None:
    assert (
        build_report(ledger, INSTRUMENTS, currency="ETH").message
        == "no rebalances recorded for ETH"
    )
    assert [b.currency for b in build_report(ledger, INSTRUMENTS, currency="BTC").books] == ["BTC"]


def test_each_currency_gets_its_own_book(ledger: Ledger) -> None:
    record(ledger, Cycle(0, 3_000.0, 150.0, 0.0, 0.0), 0, currency="ETH")
    record(ledger, Cycle(60, 3_010.0, 150.0, 0.0, 0.0), 1, currency="ETH")
    report = build_report(ledger, INSTRUMENTS)
    assert [b.currency for b in report.books] == ["BTC", "ETH"]
    assert report.books[1].totals.fills == 0
    assert report_data(report)["books"][1]["summary"]["intervals"] == 1


def test_a_fee_in_an_unknown_currency_is_a_data_error(url: str) -> None:
    ledger = open_ledger(url)
    record(ledger, CYCLES[0], 0)
    ledger.record_fill(
        Fill("T-x", "V-x", "hb-x", PERP, Side.BUY, 10.0, 90_000.0, 1.0, "ETH", Liquidity.TAKER, T0)
    )
    with pytest.raises(DataError, match="fee in 'ETH'"):
        build_report(ledger, INSTRUMENTS)


def test_funding_from_reads_a_rate_or_a_csv_and_refuses_anything_else() -> None:
    assert funding_from(None) == ConstantFunding(0.0001)
    assert funding_from("0.0002") == ConstantFunding(0.0002)
    with pytest.raises(DataError, match="neither a rate"):
        funding_from("no-such-file.csv")
    if not FUNDING_CSV.is_file():
        pytest.skip("shared market data not mounted")
    series = funding_from(str(FUNDING_CSV))
    start = datetime(2024, 1, 1, tzinfo=UTC)
    assert isinstance(series, SeriesFunding)
    assert -0.01 < series.accrued(start, start + timedelta(days=30)) < 0.1


def _unlinked_fill(instrument: str) -> Fill:
    return Fill(
        "T-u", "V-u", "hb-u", instrument, Side.BUY, 10.0, 90_000.0, 0.0, "BTC", Liquidity.TAKER, T0
    )


def test_a_fill_outside_any_rebalance_is_booked_in_its_instruments_currency_not_its_names(
    ledger: Ledger,
) -> None:
    hedge = INSTRUMENTS[PERP]
    renamed = {**INSTRUMENTS, "HEDGE-A": replace(hedge, name="HEDGE-A")}
    ledger.record_fill(_unlinked_fill("HEDGE-A"))
    (book,) = build_report(ledger, renamed).books
    assert book.currency == "BTC"
    assert book.totals.traded_notional["HEDGE-A"] == 10.0


def test_a_fill_in_an_instrument_the_venue_facts_do_not_know_is_a_data_error(
    ledger: Ledger,
) -> None:
    ledger.record_fill(_unlinked_fill("BTC_USDC-PERPETUAL"))
    with pytest.raises(DataError, match=r"BTC_USDC-PERPETUAL.*venue\.facts"):
        build_report(ledger, INSTRUMENTS)
