"""A simulated day with metrics and alerts on: what an operator would see, captured to files.

    .venv/bin/python deploy/simulated_day.py [--out /tmp/hedgebot-day]

It runs the real ``hedgebot run --paper`` for one simulated day (BTC and ETH, about a minute of
wall time on the demo's accelerated clock) with ``monitor.metrics`` on and
``HEDGEBOT_ALERT_URLS`` pointing at a webhook receiver on 127.0.0.1. Mid-day it plays the
operator: halt for an hour, reduce-only for an hour, resume (written to the ledger, as an
operator command would). Beside the running daemon it scrapes ``/metrics`` and ``/readyz`` and
runs ``hedgebot watch --once`` (which takes no lock). It writes ``metrics.txt``, ``readyz.json``,
``alerts.json``, ``watch.txt`` and ``daemon.log`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

from bot.cli.demo import DEMO_ENV, SIM_DAY_SECONDS, WALL_SECONDS
from bot.clock import AcceleratedClock
from bot.domain import TradingState
from bot.store.db import open_ledger

HOUR_WALL = 3600 / (SIM_DAY_SECONDS / WALL_SECONDS)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class _Receiver(BaseHTTPRequestHandler):
    messages: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.messages.append({"received": datetime.now(UTC).isoformat(), **json.loads(body)})
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return str(r.read().decode())
    except urllib.error.HTTPError as exc:
        return str(exc.read().decode())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="/tmp/hedgebot-day")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.db*"):
        old.unlink()
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    port = _free_port()
    paper_url = f"sqlite:///{out}/paper.db"
    env = {
        **os.environ,
        **DEMO_ENV,
        "HEDGEBOT__MARKET__CLOCK_ANCHOR": datetime.now(UTC).isoformat(),
        "HEDGEBOT__DATABASE__PAPER_URL": paper_url,
        "HEDGEBOT__LOGGING__FORMAT": "json",
        "HEDGEBOT__MONITOR__METRICS": "true",
        "HEDGEBOT__MONITOR__PORT": str(port),
        "HEDGEBOT__MONITOR__ALERTS__DAILY_SUMMARY": "true",
        "HEDGEBOT_ALERT_URLS": f"json://127.0.0.1:{receiver.server_address[1]}/hooks/hedgebot",
    }
    clock = AcceleratedClock(
        datetime.fromisoformat(env["HEDGEBOT__MARKET__CLOCK_ANCHOR"]),
        SIM_DAY_SECONDS / WALL_SECONDS,
    )
    cli = [sys.executable, "-m", "bot.cli.main", "--config", str(out / "none.yaml")]
    subprocess.run([*cli, "db", "upgrade", "--paper"], env=env, check=True, capture_output=True)
    started = time.monotonic()
    with (out / "daemon.log").open("w") as log:
        daemon = subprocess.Popen(
            [*cli, "run", "--paper", "--duration", str(SIM_DAY_SECONDS)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            time.sleep(WALL_SECONDS * 0.3)
            ledger = open_ledger(paper_url)
            for state, why in (
                (TradingState.HALTED, "operator: venue maintenance window"),
                (TradingState.REDUCING, "operator: wind the hedge down after maintenance"),
                (TradingState.ACTIVE, "operator: all clear"),
            ):
                ledger.set_trading_state(state, why, clock.now())
                time.sleep(HOUR_WALL)
            time.sleep(WALL_SECONDS * 0.3)
            (out / "metrics.txt").write_text(_get(f"{base}/metrics"))
            (out / "readyz.json").write_text(_get(f"{base}/readyz"))
            watch = subprocess.run(
                [*cli, "watch", "--paper", "--once"],
                env={**env, "COLUMNS": "100"},
                capture_output=True,
                text=True,
                timeout=60,
            )
            (out / "watch.txt").write_text(watch.stdout + watch.stderr)
            code = daemon.wait(timeout=WALL_SECONDS * 3)
        finally:
            if daemon.poll() is None:
                daemon.terminate()
                daemon.wait(timeout=30)
    time.sleep(2)  # the last alerts (daemon stopped) are on their way
    receiver.shutdown()
    (out / "alerts.json").write_text(json.dumps(_Receiver.messages, indent=2))
    wall = time.monotonic() - started
    print(f"daemon exited {code} after {wall:.1f} s of wall time; files in {out}:")
    for f in sorted(out.iterdir()):
        print(f"  {f.name:<14} {f.stat().st_size:>9,} bytes")
    print(f"{len(_Receiver.messages)} alerts: " + ", ".join(m["title"] for m in _Receiver.messages))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
