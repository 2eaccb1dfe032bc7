"""The ledger: orders recorded before sending, fills idempotent, money exact, state persisted."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from bot.domain import (
    DataError,
    Fill,
    Liquidity,
    OrderRequest,
    OrderState,
    OrderStatus,
    OrderType,
    PortfolioGreeks,
    Side,
    TimeInForce,
)
from bot.store import (
    DuplicateRecord,
    GreeksSnapshot,
    Ledger,
    LedgerError,
    RebalanceRecord,
    RebalanceStatus,
    TerminalOrder,
    TradingState,
    UnknownOrder,
    open_ledger,
)
from bot.store.models import Number

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
PERP = "BTC-PERPETUAL"


@pytest.fixture
def url(db_url: str) -> str:
    """Every ledger test runs on SQLite and on PostgreSQL."""
    return db_url


@pytest.fixture
def ledger(url: str) -> Ledger:
    return open_ledger(url, create=True)


def rebalance(cycle_id: str = "c-1", **kw: object) -> RebalanceRecord:
    fields: dict[str, object] = {
        "cycle_id": cycle_id,
        "ts": T0,
        "currency": "BTC",
        "mode": "daemon",
        "policy": "delta_band",
        "target_mode": "coin",
        "status": RebalanceStatus.TRADED,
        "reason": "delta outside band",
    }
    fields.update(kw)
    return RebalanceRecord(**fields)  # type: ignore[arg-type]


def request(label: str = "hb-c1-1", **kw: object) -> OrderRequest:
    fields: dict[str, object] = {
        "label": label,
        "instrument_name": PERP,
        "side": Side.BUY,
        "amount": 1000.0,
        "order_type": OrderType.LIMIT,
        "price": 90_000.5,
        "time_in_force": TimeInForce.IOC,
    }
    fields.update(kw)
    return OrderRequest(**fields)  # type: ignore[arg-type]


def venue_state(label: str, status: OrderStatus, filled: float, **kw: object) -> OrderState:
    fields: dict[str, object] = {
        "label": label,
        "venue_order_id": "BTC-123",
        "instrument_name": PERP,
        "side": Side.BUY,
        "amount": 1000.0,
        "filled_amount": filled,
        "status": status,
        "price": 90_000.5,
        "average_price": 90_000.0 if filled else None,
        "order_type": OrderType.LIMIT,
        "timestamp": T0,
    }
    fields.update(kw)
    return OrderState(**fields)  # type: ignore[arg-type]


def fill(trade_id: str = "T-1", **kw: object) -> Fill:
    fields: dict[str, object] = {
        "trade_id": trade_id,
        "venue_order_id": "BTC-123",
        "label": "hb-c1-1",
        "instrument_name": PERP,
        "side": Side.BUY,
        "amount": 1000.0,
        "price": 90_000.0,
        "fee": 0.00000123,
        "fee_currency": "BTC",
        "liquidity": Liquidity.TAKER,
        "timestamp": T0 + timedelta(seconds=1),
        "index_price": 89_990.0,
    }
    fields.update(kw)
    return Fill(**fields)  # type: ignore[arg-type]


def placed(ledger: Ledger, label: str = "hb-c1-1", mid: float | None = 90_000.0) -> None:
    ledger.record_order(request(label), cycle_id="c-1", rebalance_id=None, decision_mid=mid, ts=T0)


# -- fills -------------------------------------------------------------------------------------


def test_record_fill_twice_then_second_is_a_no_op_and_one_row_is_stored(ledger: Ledger) -> None:
    assert ledger.record_fill(fill("T-1")) is True
    assert ledger.record_fill(fill("T-1")) is False
    assert [f.trade_id for f in ledger.fills()] == ["T-1"]
    assert ledger.summary().fills == 1


def test_record_fill_already_stored_through_another_engine_then_false(url: str) -> None:
    first, second = open_ledger(url, create=True), open_ledger(url)
    assert first.record_fill(fill("T-9"))
    assert second.record_fill(fill("T-9")) is False
    assert len(second.fills()) == 1


def test_fill_read_back_equals_the_fill_given(ledger: Ledger) -> None:
    given = fill("T-2", side=Side.SELL, liquidity=Liquidity.MAKER, fee=-0.0000025, index_price=None)
    ledger.record_fill(given)
    assert ledger.fills() == [given]


def test_fill_with_nan_or_negative_price_is_refused_and_nothing_is_stored(ledger: Ledger) -> None:
    with pytest.raises(DataError, match="price"):
        ledger.record_fill(fill("T-3", price=math.nan))
    with pytest.raises(DataError, match="amount"):
        ledger.record_fill(fill("T-4", amount=-5.0))
    assert ledger.fills() == []


def test_fill_with_nan_fee_is_refused_as_data_error(ledger: Ledger) -> None:
    with pytest.raises(DataError, match="non-finite"):
        ledger.record_fill(fill("T-5", fee=math.nan))
    assert ledger.fills() == []


def test_fills_since_is_inclusive_and_last_fill_time_is_the_latest(ledger: Ledger) -> None:
    for i in range(3):
        ledger.record_fill(fill(f"T-{i}", timestamp=T0 + timedelta(minutes=i)))
    ledger.record_fill(fill("E-1", instrument_name="ETH-PERPETUAL", timestamp=T0))
    since = T0 + timedelta(minutes=1)
    assert [f.trade_id for f in ledger.fills(since)] == ["T-1", "T-2"]
    assert ledger.last_fill_time() == T0 + timedelta(minutes=2)
    assert ledger.last_fill_time("ETH-PERPETUAL") == T0
    assert [f.trade_id for f in ledger.fills(instrument="ETH-PERPETUAL")] == ["E-1"]


def test_last_fill_time_of_an_empty_ledger_is_none(ledger: Ledger) -> None:
    assert ledger.last_fill_time() is None


def test_hedge_position_from_fills_is_the_signed_sum_of_that_instrument(ledger: Ledger) -> None:
    ledger.record_fill(fill("T-1", side=Side.BUY, amount=1000.0))
    ledger.record_fill(fill("T-2", side=Side.SELL, amount=250.0))
    ledger.record_fill(fill("T-3", side=Side.SELL, amount=30.0, instrument_name="ETH-PERPETUAL"))
    assert ledger.hedge_position_from_fills(PERP) == 750.0
    assert ledger.hedge_position_from_fills("ETH-PERPETUAL") == -30.0
    assert ledger.hedge_position_from_fills("SOL-PERPETUAL") == 0.0


# -- money and time ----------------------------------------------------------------------------


def test_fee_of_0_00000123_btc_round_trips_exactly(ledger: Ledger) -> None:
    ledger.record_fill(fill("T-1", fee=0.00000123, price=91_234.5, amount=1_234_567_890.0))
    got = ledger.fills()[0]
    assert Decimal(str(got.fee)) == Decimal("0.00000123")
    assert Decimal(str(got.price)) == Decimal("91234.5")
    assert Decimal(str(got.amount)) == Decimal("1234567890")
    assert ledger.summary().fees == {"BTC": 0.00000123}


def test_number_binds_a_float_as_its_shortest_exact_decimal(ledger: Ledger) -> None:
    dialect = ledger.engine.dialect
    assert Number().process_bind_param(0.00000123, dialect) == Decimal("0.00000123")
    assert Number().process_bind_param(0.1, dialect) == Decimal("0.1")
    with pytest.raises(DataError):
        Number().process_bind_param(math.inf, dialect)


def test_naive_timestamp_is_refused(ledger: Ledger) -> None:
    with pytest.raises(DataError, match="naive"):
        ledger.record_fill(fill("T-1", timestamp=datetime(2025, 3, 1, 12, 0)))
    assert ledger.fills() == []


def test_timestamp_given_in_another_zone_comes_back_as_the_same_instant_in_utc(
    ledger: Ledger,
) -> None:
    tokyo = timezone(timedelta(hours=9))
    ledger.record_fill(fill("T-1", timestamp=datetime(2025, 3, 1, 21, 0, 0, 250, tzinfo=tokyo)))
    got = ledger.fills()[0].timestamp
    assert got == datetime(2025, 3, 1, 12, 0, 0, 250, tzinfo=UTC)
    assert got.utcoffset() == timedelta(0)


# -- orders ------------------------------------------------------------------------------------


def test_order_is_recorded_pending_with_an_event_before_it_is_sent(ledger: Ledger) -> None:
    rid = ledger.record_rebalance(rebalance())
    row = ledger.record_order(
        request(), cycle_id="c-1", rebalance_id=rid, decision_mid=90_000.0, ts=T0
    )
    assert row.status is OrderStatus.PENDING
    assert row.venue_order_id is None
    assert row.rebalance_id == rid
    assert row.request() == request()
    assert [e.status for e in ledger.order_events(row.label)] == [OrderStatus.PENDING]


def test_order_lifecycle_appends_an_event_for_every_change(ledger: Ledger) -> None:
    placed(ledger)
    t1, t2, t3 = (T0 + timedelta(seconds=s) for s in (1, 2, 3))
    ledger.update_order("hb-c1-1", OrderStatus.UNKNOWN, t1, "timeout after 10s")
    ledger.update_order("hb-c1-1", venue_state("hb-c1-1", OrderStatus.OPEN, 400.0), t2)
    done = ledger.update_order("hb-c1-1", venue_state("hb-c1-1", OrderStatus.FILLED, 1000.0), t3)

    assert done.status is OrderStatus.FILLED
    assert done.venue_order_id == "BTC-123"
    assert (done.filled_amount, done.average_price) == (1000.0, 90_000.0)
    assert (done.created_at, done.updated_at) == (T0, t3)
    events = ledger.order_events("hb-c1-1")
    assert [(e.status, e.filled_amount, e.ts) for e in events] == [
        (OrderStatus.PENDING, 0.0, T0),
        (OrderStatus.UNKNOWN, 0.0, t1),
        (OrderStatus.OPEN, 400.0, t2),
        (OrderStatus.FILLED, 1000.0, t3),
    ]
    assert events[1].detail == "timeout after 10s"
    assert ledger.order_by_venue_id("BTC-123") == done


def test_update_order_when_filled_then_moving_back_to_open_is_refused(ledger: Ledger) -> None:
    placed(ledger)
    ledger.update_order("hb-c1-1", venue_state("hb-c1-1", OrderStatus.FILLED, 1000.0), T0)
    with pytest.raises(TerminalOrder, match="filled"):
        ledger.update_order("hb-c1-1", venue_state("hb-c1-1", OrderStatus.OPEN, 0.0), T0)
    with pytest.raises(TerminalOrder):
        ledger.update_order("hb-c1-1", OrderStatus.UNKNOWN, T0)
    row = ledger.order("hb-c1-1")
    assert row is not None
    assert (row.status, row.filled_amount) == (OrderStatus.FILLED, 1000.0)
    assert len(ledger.order_events("hb-c1-1")) == 2


def test_update_order_of_a_terminal_order_with_terminal_evidence_is_applied(ledger: Ledger) -> None:
    placed(ledger)
    ledger.update_order("hb-c1-1", OrderStatus.REJECTED, T0, "rate limited")
    state = venue_state("hb-c1-1", OrderStatus.CANCELLED, 300.0)
    row = ledger.update_order("hb-c1-1", state, T0 + timedelta(seconds=5))
    assert (row.status, row.filled_amount) == (OrderStatus.CANCELLED, 300.0)


def test_update_order_of_an_unrecorded_label_raises_unknown_order(ledger: Ledger) -> None:
    with pytest.raises(UnknownOrder):
        ledger.update_order("hb-nope", OrderStatus.OPEN, T0)


def test_update_order_with_another_orders_state_is_refused(ledger: Ledger) -> None:
    placed(ledger)
    with pytest.raises(LedgerError, match="hb-other"):
        ledger.update_order("hb-c1-1", venue_state("hb-other", OrderStatus.OPEN, 0.0), T0)


def test_record_order_with_a_label_already_recorded_is_refused(ledger: Ledger) -> None:
    placed(ledger)
    with pytest.raises(DuplicateRecord):
        placed(ledger)
    assert len(ledger.orders()) == 1


def test_record_order_with_a_label_over_64_characters_is_refused(ledger: Ledger) -> None:
    with pytest.raises(DataError, match="64"):
        placed(ledger, label="x" * 65)
    placed(ledger, label="y" * 64)
    assert [o.label for o in ledger.orders()] == ["y" * 64]


def test_record_order_for_an_unknown_rebalance_is_refused(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="rebalance 42"):
        ledger.record_order(request(), cycle_id="c-1", rebalance_id=42, decision_mid=None, ts=T0)
    assert ledger.orders() == []


def test_open_orders_are_those_pending_unknown_or_open(ledger: Ledger) -> None:
    for label in ("a", "b", "c", "d", "e"):
        placed(ledger, label)
    ledger.update_order("b", OrderStatus.UNKNOWN, T0)
    ledger.update_order("c", venue_state("c", OrderStatus.OPEN, 0.0), T0)
    ledger.update_order("d", venue_state("d", OrderStatus.FILLED, 1000.0), T0)
    ledger.update_order("e", OrderStatus.REJECTED, T0)
    assert [o.label for o in ledger.open_orders()] == ["a", "b", "c"]
    assert [o.label for o in ledger.orders({OrderStatus.FILLED, OrderStatus.REJECTED})] == [
        "d",
        "e",
    ]
    assert ledger.order("zz") is None


# -- rebalances and greeks ---------------------------------------------------------------------


def test_rebalance_round_trip_keeps_figures_params_and_greeks(ledger: Ledger) -> None:
    greeks = PortfolioGreeks(
        currency="BTC",
        index_price=90_000.0,
        delta_coin=-0.42,
        delta_usd_target=9.58,
        options_delta_net=-0.4,
        options_delta_bs=-0.41,
        futures_delta=-0.02,
        gamma=0.00012,
        dollar_gamma=9720.0,
        vega=-1500.0,
        theta=800.0,
        equity=10.0,
        expired_skipped=("BTC-1MAR25-90000-C",),
    )
    rec = rebalance(
        params={"band": 0.1, "lots": [1, 2]},
        greeks=greeks,
        instrument=PERP,
        index_price=90_000.0,
        hedge_bid=89_999.5,
        hedge_ask=90_000.5,
        hedge_mid=90_000.0,
        delta_before=-0.42,
        target=0.0,
        band_low=-0.1,
        band_high=0.1,
        trade_amount=37_800.0,
        trade_delta=0.42,
        expected_delta_after=0.0,
        est_cost_usd=1.89,
    )
    rid = ledger.record_rebalance(rec)
    [row] = ledger.rebalances()
    assert row.id == rid
    assert row.greeks == greeks
    assert dict(row.params) == {"band": 0.1, "lots": [1, 2]}
    assert row.status is RebalanceStatus.TRADED
    for name in ("hedge_mid", "delta_before", "band_high", "trade_amount", "est_cost_usd"):
        assert getattr(row, name) == getattr(rec, name)


def test_rebalance_with_a_cycle_id_already_recorded_is_refused(ledger: Ledger) -> None:
    ledger.record_rebalance(rebalance("c-1"))
    with pytest.raises(DuplicateRecord, match="c-1"):
        ledger.record_rebalance(rebalance("c-1"))


def test_rebalance_with_an_unknown_status_or_nan_figure_is_refused(ledger: Ledger) -> None:
    with pytest.raises(DataError, match="status"):
        rebalance(status="exploded")
    with pytest.raises(DataError):
        ledger.record_rebalance(rebalance("c-2", delta_before=math.nan))
    with pytest.raises(DataError, match="params"):
        ledger.record_rebalance(rebalance("c-3", params={"band": math.inf}))
    assert ledger.rebalances() == []


def test_last_rebalances_are_newest_first(ledger: Ledger) -> None:
    for i in range(5):
        ledger.record_rebalance(rebalance(f"c-{i}", ts=T0 + timedelta(minutes=i)))
    assert [r.cycle_id for r in ledger.last_rebalances(3)] == ["c-4", "c-3", "c-2"]
    assert [r.cycle_id for r in ledger.rebalances(T0 + timedelta(minutes=3))] == ["c-3", "c-4"]


def test_greeks_snapshot_round_trips(ledger: Ledger) -> None:
    snap = GreeksSnapshot(
        cycle_id="c-1",
        ts=T0,
        currency="BTC",
        index_price=90_000.0,
        delta_coin=-0.42,
        delta_usd_target=9.58,
        gamma=0.00012,
        dollar_gamma=9720.0,
        vega=-1500.0,
        theta=800.0,
        equity=10.0,
        hedge_position=-12_340.0,
    )
    ledger.record_greeks(snap)
    assert ledger.greeks_snapshots() == [snap]


# -- summary -----------------------------------------------------------------------------------


def test_summary_figures_of_a_small_hand_built_ledger(ledger: Ledger) -> None:
    rid = ledger.record_rebalance(
        rebalance("c-1", delta_before=-0.5, expected_delta_after=0.02, est_cost_usd=2.5)
    )
    ledger.record_rebalance(
        rebalance("c-2", ts=T0 + timedelta(minutes=5), status="no_trade", delta_before=0.05)
    )
    ledger.record_rebalance(
        rebalance(
            "c-3",
            ts=T0 + timedelta(minutes=10),
            status="denied",
            delta_before=0.7,
            expected_delta_after=-0.01,
        )
    )
    ledger.record_order(request("buy"), cycle_id="c-1", rebalance_id=rid, decision_mid=100.0, ts=T0)
    ledger.record_order(
        request("sell", side=Side.SELL), cycle_id="c-1", rebalance_id=rid, decision_mid=100.0, ts=T0
    )
    ledger.update_order("buy", venue_state("buy", OrderStatus.FILLED, 100.0), T0)
    # buy 100 at 100.5 vs mid 100: +50 bps; sell 300 at 99.9: +10 bps; weighted: +20 bps.
    ledger.record_fill(fill("F-1", label="buy", side=Side.BUY, amount=100.0, price=100.5, fee=0.1))
    ledger.record_fill(fill("F-2", label="sell", side=Side.SELL, amount=300.0, price=99.9, fee=0.2))
    # A fill of no recorded order counts as a fill and a fee, not as slippage.
    last = T0 + timedelta(minutes=20)
    ledger.record_fill(
        fill(
            "F-3",
            label="manual",
            instrument_name="ETH-PERPETUAL",
            amount=7.0,
            price=3000.0,
            fee=-0.5,
            fee_currency="ETH",
            timestamp=last,
        )
    )

    s = ledger.summary()
    assert s.rebalances_by_status == {"denied": 1, "no_trade": 1, "traded": 1}
    assert s.rebalances == 3
    assert s.orders_by_status == {"filled": 1, "pending": 1}
    assert s.fills == 3
    assert s.fees == pytest.approx({"BTC": 0.3, "ETH": -0.5})
    assert s.traded_notional == {PERP: 400.0, "ETH-PERPETUAL": 7.0}
    assert s.est_cost_usd == 2.5
    assert (s.delta_before_min, s.delta_before_max) == (-0.5, 0.7)
    assert (s.expected_delta_after_min, s.expected_delta_after_max) == (-0.01, 0.02)
    assert s.slippage_bps == pytest.approx(20.0)
    assert (s.first_ts, s.last_ts) == (T0, last)


def test_summary_of_an_empty_ledger_has_counts_of_zero_and_no_figures(ledger: Ledger) -> None:
    s = ledger.summary()
    assert (s.rebalances, s.orders, s.fills) == (0, 0, 0)
    assert (s.fees, s.traded_notional, s.est_cost_usd) == ({}, {}, 0.0)
    assert (s.delta_before_min, s.expected_delta_after_max, s.slippage_bps) == (None, None, None)
    assert (s.first_ts, s.last_ts) == (None, None)


# -- trading state -----------------------------------------------------------------------------


def test_trading_state_never_set_reads_active(ledger: Ledger) -> None:
    state = ledger.get_trading_state()
    assert (state.state, state.updated_at) == (TradingState.ACTIVE, None)


def test_trading_state_persists_across_a_new_engine(url: str) -> None:
    first = open_ledger(url, create=True)
    first.set_trading_state(TradingState.REDUCING, "position limit", T0)
    first.set_trading_state("halted", "operator stop", T0 + timedelta(hours=1))
    first.close()

    state = open_ledger(url).get_trading_state()
    assert state.state is TradingState.HALTED
    assert state.reason == "operator stop"
    assert state.updated_at == T0 + timedelta(hours=1)


def test_trading_state_scopes_are_independent(ledger: Ledger) -> None:
    ledger.set_trading_state("halted", "eth feed stale", T0, scope="ETH")
    assert ledger.get_trading_state("ETH").state is TradingState.HALTED
    assert ledger.get_trading_state().state is TradingState.ACTIVE


def test_unknown_trading_state_is_refused(ledger: Ledger) -> None:
    with pytest.raises(DataError, match="paused"):
        ledger.set_trading_state("paused", "", T0)
