"""Alerts: one message per event at a local webhook, none lost to a receiver that is down."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from structlog.testing import capture_logs

from bot.clock import FakeClock
from bot.config import AlertSettings
from bot.domain import HedgeDecision, OrderRequest, OrderStatus, Side, TradingState
from bot.monitor.alerts import Alert, AlertGate, AlertSender
from tests.monitor.kit import (
    closed_port,
    monitored,
    receiver,
    sample_greeks,
    snapshot,
)
from tests.support.books import NOW

SECRET = "s3cr3t-api-secret-value"
ALERTS = {"stale_cycles": 2, "error_cycles": 2, "daily_summary": True}


def _decision(delta: float = 0.01, trade: float = 0.0) -> HedgeDecision:
    return HedgeDecision(trade, trade / 90_000, delta, 0.0, -0.05, 0.05, "band", "delta_band")


async def test_each_event_sends_exactly_one_message_with_what_happened_numbers_and_advice(
    tmp_path: Path,
) -> None:
    clock = FakeClock(NOW)
    with receiver() as r:
        _, app, mon = monitored(
            tmp_path,
            clock,
            environ={"HEDGEBOT_ALERT_URLS": r.url},
            secrets=(SECRET,),
            monitor={"metrics": False, "alerts": ALERTS},
        )
        ledger = app.ledger

        def good(status: str = "no_trade", decision: HedgeDecision | None = None) -> None:
            ledger.record_greeks(snapshot(clock))
            mon.cycle("BTC", status, "ok", sample_greeks(), decision or _decision(), None)
            clock.advance(60)

        def state(s: TradingState, why: str) -> None:
            ledger.set_trading_state(s, why, clock.now())
            good("denied")
            good("denied")  # seen twice, sent once

        try:
            mon.starting(("BTC",), 60.0)
            mon.refused(f"BTC: venue did not answer: bad key {SECRET}")
            mon.reconciled()
            good()
            state(TradingState.HALTED, "operator: venue maintenance")
            state(TradingState.REDUCING, "operator: wind down")
            state(TradingState.ACTIVE, "operator: all clear")
            ledger.set_trading_state(TradingState.HALTED, "ops: BTC only", clock.now(), "BTC")
            good("denied")
            good("denied")
            ledger.set_trading_state(TradingState.ACTIVE, "ops: BTC back", clock.now(), "BTC")
            good()

            req = OrderRequest("hb-c1-1", "BTC-PERPETUAL", Side.BUY, 1000.0, price=90_000.0)
            ledger.record_order(
                req, cycle_id="c1", rebalance_id=None, decision_mid=90_000.0, ts=clock.now()
            )
            ledger.update_order("hb-c1-1", OrderStatus.UNKNOWN, clock.now(), "timeout")
            clock.advance(301)
            good("skipped")  # one skip: no error streak yet
            good()  # the order is still unknown: deduplicated

            for _ in range(4):  # stale data and failing cycles: each streak alerts once
                mon.cycle("BTC", "skipped", "DataError: marks 120 s old", None, None, None)
                clock.advance(60)
            mon.clock_offset(5.0)
            good()
            good()
            good()
            good("traded", _decision(delta=0.3, trade=-9000.0))  # nothing filled: 6 bands out
            good("traded", _decision(delta=0.3, trade=-9000.0))  # twice in a row: the alert
            mon.clock_offset(0.0)
            ledger.update_order("hb-c1-1", OrderStatus.CANCELLED, clock.now(), "venue: none")
            clock.advance(86_400)  # the next UTC day: yesterday's summary
            good()
            mon.stopped(True, "asked to stop", 17)
        finally:
            await app.close()
        messages = r.wait_for(13)
        time.sleep(0.2)  # nothing more arrives
        messages = list(r.messages)

    titles = [m["title"] for m in messages]
    expected = [
        ("failure", "hedgebot refused to start: reconciliation failed"),
        ("failure", "hedgebot trading halted"),
        ("warning", "hedgebot trading reducing"),
        ("success", "hedgebot trading active"),
        ("failure", "hedgebot BTC trading halted"),
        ("success", "hedgebot BTC trading active"),
        ("failure", "hedgebot: order hb-c1-1 of unknown outcome for 301 s"),
        ("warning", "hedgebot BTC: market data stale for 2 cycles"),
        ("failure", "hedgebot BTC: 2 cycles in a row did not hedge"),
        ("warning", "hedgebot BTC: venue clock offset +5.00 s"),
        ("warning", "hedgebot BTC: delta 6.0 bands from target"),
        ("info", "hedgebot daily summary 2026-01-05"),
        ("info", "hedgebot stopped"),
    ]
    assert sorted(titles) == sorted(t for _, t in expected), titles
    by_title = {m["title"]: m for m in messages}
    for severity, title in expected:
        m = by_title[title]
        assert m["type"] == severity
        assert "What to do: " in m["message"]
        assert "Numbers: " in m["message"]
        assert SECRET not in m["message"]
        assert SECRET not in m["title"]
        assert r.url.split("//")[1] not in m["message"]
    assert "bad key ***" in by_title[expected[0][1]]["message"]
    assert "reason operator: venue maintenance" in by_title["hedgebot trading halted"]["message"]
    assert by_title["hedgebot BTC trading halted"]["message"].startswith(
        "Trading state BTC active -> halted"
    )
    assert "delta +0.3000 BTC" in by_title["hedgebot BTC: delta 6.0 bands from target"]["message"]
    assert (
        "offset +5.000 s; limit 2 s"
        in by_title["hedgebot BTC: venue clock offset +5.00 s"]["message"]
    )


async def test_a_receiver_that_is_down_or_hangs_costs_the_daemon_nothing(tmp_path: Path) -> None:
    hang = socket.socket()  # accepts connections into its backlog, never answers
    hang.bind(("127.0.0.1", 0))
    hang.listen(8)
    urls = f"json://127.0.0.1:{closed_port()}/x json://127.0.0.1:{hang.getsockname()[1]}/y"
    clock = FakeClock(NOW)
    try:
        daemon, app, _mon = monitored(
            tmp_path,
            clock,
            environ={"HEDGEBOT_ALERT_URLS": urls},
            monitor={"metrics": False, "alerts": {"send_timeout_seconds": 1, "error_cycles": 1}},
        )
        app.ledger.set_trading_state(TradingState.HALTED, "test", clock.now())
        t0 = time.monotonic()
        stats = await daemon.run(asyncio.Event(), max_cycles=30)
        ran = time.monotonic() - t0
        t1 = time.monotonic()
        await app.close()
        closed = time.monotonic() - t1
    finally:
        hang.close()
    assert stats.cycles == 30
    assert stats.by_status == {"denied": 30}
    assert ran < 10  # thirty cycles on a fake clock; the sends happen elsewhere
    assert closed < 1 + 1 + 1  # the send timeout, the join margin, slack


def test_the_same_alert_is_sent_once_per_dedupe_window_and_all_alerts_are_rate_limited() -> None:
    clock = FakeClock(NOW)
    gate = AlertGate(clock.now, dedupe_seconds=600, max_per_hour=3)
    a = Alert("k", "k:1", "info", "t", "w")
    assert gate.admit(a) == "send"
    assert gate.admit(a) == "duplicate"
    clock.advance(601)
    assert gate.admit(a) == "send"
    assert gate.admit(Alert("k", "k:2", "info", "t", "w")) == "send"
    assert gate.admit(Alert("k", "k:3", "info", "t", "w")) == "rate_limited"
    assert gate.suppressed == 1
    clock.advance(3600)
    assert gate.admit(Alert("k", "k:3", "info", "t", "w")) == "send"


def test_a_full_queue_drops_alerts_without_blocking_the_caller() -> None:
    release = threading.Event()
    got: list[str] = []

    def slow(alert: Alert, body: str) -> bool:
        release.wait(5)
        got.append(alert.key)
        return True

    sender = AlertSender((), timeout_seconds=1, queue_size=2, transport=slow)
    t0 = time.monotonic()
    accepted = [sender.send(Alert("k", f"k:{i}", "info", "t", "w"), "b") for i in range(6)]
    assert time.monotonic() - t0 < 0.5
    assert accepted.count(False) == sender.dropped >= 3
    release.set()
    sender.close(wait_seconds=5)
    assert len(got) == accepted.count(True)


async def test_alert_urls_and_their_tokens_never_reach_the_log(tmp_path: Path) -> None:
    token = "T0KEN-abcdef123456"
    clock = FakeClock(NOW)
    with receiver() as r:
        url = f"{r.url}/{token}"
        _, app, mon = monitored(
            tmp_path,
            clock,
            environ={"HEDGEBOT_ALERT_URLS": url},
            monitor={"metrics": False},
        )
        with capture_logs() as logs:
            mon.starting(("BTC",), 60.0)
            mon.refused(f"could not reach {url}")
            await app.close()
        messages = r.wait_for(1)
    assert messages
    assert all(token not in m["message"] for m in messages)
    assert all(token not in str(e) for e in logs)


def test_alert_settings_reject_nonsense() -> None:
    with pytest.raises(ValidationError):
        AlertSettings(stale_cycles=0)
    assert timedelta(seconds=AlertSettings().dedupe_seconds) == timedelta(hours=1)


def test_an_alerts_text_loses_url_passwords_and_auth_parameters_it_was_not_told_of() -> None:
    from bot.monitor.alerts import redactor

    redact = redactor(["KEY-told-of"])
    text = redact(
        "KEY-told-of failed: postgresql://hb:pw-not-told@db/hb and "
        "https://x/api/v2/public/auth?client_id=OTHERKEY&signature=abcdef0123"
    )
    for secret in ("KEY-told-of", "pw-not-told", "OTHERKEY", "abcdef0123"):
        assert secret not in text
