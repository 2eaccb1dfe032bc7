"""Kits for the monitor's tests: a webhook receiver on 127.0.0.1, a scrape, a monitored daemon."""

from __future__ import annotations

import json
import socket
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from bot.app import App
from bot.clock import FakeClock
from bot.daemon import Daemon
from bot.domain import PortfolioGreeks
from bot.monitor import Monitor
from bot.monitor.alerts import Transport
from bot.store.records import GreeksSnapshot
from tests.support.harness import stack


class Receiver:
    """Collects the JSON bodies posted to it (apprise's ``json://`` format)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.arrived = threading.Condition()
        received = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with received.arrived:
                    received.messages.append(json.loads(body))
                    received.arrived.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"json://127.0.0.1:{self.port}/hooks/hedgebot"

    def wait_for(self, n: int, seconds: float = 10.0) -> list[dict[str, Any]]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.messages) >= n, timeout=seconds)
            return list(self.messages)


@contextmanager
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    thread = threading.Thread(target=r.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``/metrics`` as {(sample name, sorted labels): value}."""
    status, text = get(port, "/metrics")
    assert status == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def monitored(
    tmp_path: Path,
    clock: FakeClock,
    *,
    environ: dict[str, str] | None = None,
    transport: Transport | None = None,
    secrets: tuple[str, ...] = (),
    monitor: dict[str, Any] | None = None,
    every: float = 60.0,
    **overrides: Any,
) -> tuple[Daemon, App, Monitor]:
    """A paper stack on a fake clock whose daemon reports to a monitor serving on port 0."""
    settings_monitor = {"metrics": True, "port": 0, **(monitor or {})}
    app = stack(
        tmp_path,
        clock=clock,
        policy={"delta_band": {"band": 0.05}},
        hedge={"target_delta": 0.3},
        monitor=settings_monitor,
        **overrides,
    )
    mon = Monitor(
        app.settings,
        app.ledger,
        clock,
        environ=environ or {},
        transport=transport,
        secrets=secrets,
    )
    app.monitor = mon  # closed with the app
    daemon = Daemon(
        app.ctx, ("BTC",), every, heartbeat_seconds=600, stop_grace_seconds=1, monitor=mon
    )
    return daemon, app, mon


def sample_greeks(currency: str = "BTC", delta: float = 0.01) -> PortfolioGreeks:
    """A small book's greeks at a 90,000 index."""
    return PortfolioGreeks(
        currency=currency,
        index_price=90_000.0,
        delta_coin=delta,
        delta_usd_target=delta,
        options_delta_net=delta,
        options_delta_bs=delta,
        futures_delta=0.0,
        gamma=-2e-5,
        dollar_gamma=-1620.0,
        vega=-900.0,
        theta=450.0,
        equity=10.0,
    )


def snapshot(clock: FakeClock, currency: str = "BTC", hedge: float = 0.0) -> GreeksSnapshot:
    """What a cycle records when it reads the book: marks the read's time."""
    return GreeksSnapshot.of(
        sample_greeks(currency),
        cycle_id=f"c{clock.now().timestamp()}",
        ts=clock.now(),
        hedge_position=hedge,
    )
