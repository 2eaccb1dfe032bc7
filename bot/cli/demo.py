"""``make demo``: short-gamma BTC and ETH books hedged for a simulated day, through ccxt.

It starts ``hedgebot sim`` (the Deribit-compatible simulated venue) on 127.0.0.1 in another
process, runs the real ``hedgebot run`` against it through ccxt on an accelerated clock the
two processes share, shows ``hedgebot status``, and prints what the ledger holds.
``--paper`` runs the same day in paper mode instead (no venue process; the paper ledger then
answers ``hedgebot status --paper`` afterwards).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from bot.analysis.summary import render_summary
from bot.cli.main import main as hedgebot
from bot.config import load_settings
from bot.store.db import open_ledger
from bot.units import SECONDS_PER_DAY

SIM_DAY_SECONDS = SECONDS_PER_DAY
WALL_SECONDS = 60.0

# Demo settings, applied only where the user set nothing: a day in about a minute of wall time.
DEMO_ENV = {
    "HEDGEBOT__MARKET__SPEED": str(SIM_DAY_SECONDS / WALL_SECONDS),
    "HEDGEBOT__POLICY__CHECK_SECONDS": "120",
    "HEDGEBOT__DAEMON__HEARTBEAT_SECONDS": "7200",
    # Ages and waits are simulated seconds: at 1,440x one wall second is 24 simulated minutes.
    "HEDGEBOT__RISK__MAX_DATA_AGE_SECONDS": "1800",
    # Reads of one cycle are seconds of simulated time apart, so the venue's delta_total moves.
    "HEDGEBOT__RISK__DELTA_TOLERANCE_COIN": '{"BTC": 0.6, "ETH": 17}',
    "HEDGEBOT__EXECUTION__ORDER_TIMEOUT_SECONDS": "600",
    "HEDGEBOT__VENUE__CURRENCIES": '["BTC","ETH"]',
    # The default band is 0.1 coin: about $9,000 of BTC but only $300 of ETH.
    "HEDGEBOT__POLICY_BY_CURRENCY": '{"ETH": {"delta_band": {"band": 3.0}}}',
}


def _sqlite_file(url: str) -> Path | None:
    prefix = "sqlite:///"
    return Path(url[len(prefix) :]) if url.startswith(prefix) and ":memory:" not in url else None


def _fresh(url: str) -> None:
    """Move an earlier run's database aside so every demo starts from the same book."""
    db_file = _sqlite_file(url)
    if db_file is not None and db_file.exists():
        backup = db_file.with_name(f"{db_file.name}.before-demo-{int(time.time())}")
        db_file.rename(backup)
        print(f"demo: moved the previous {db_file} to {backup}")


def _port(sim_url: str) -> int:
    """The configured port when it is free (so a later `hedgebot sim` serves the same URL),
    else 0: any free port."""
    port = int(sim_url.rsplit(":", 1)[1].split("/")[0]) if sim_url.count(":") == 2 else 8642
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return 0
    return port


@contextmanager
def _sim_venue(config: str, db_url: str, sim_url: str) -> Iterator[str]:
    """``hedgebot sim`` on 127.0.0.1, for as long as the demo needs it."""
    port = str(_port(sim_url))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot.cli.main",
            "--config",
            config,
            "sim",
            "--port",
            port,
            "--db",
            db_url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = ""
        deadline = time.monotonic() + 60
        while not url and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if "Deribit API on " in line:
                url = line.split("Deribit API on ")[1].split()[0]
        if not url:
            raise RuntimeError("hedgebot sim did not start")
        print(f"demo: simulated Deribit venue at {url} (pid {proc.pid})")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def _run(config: str, *argv: str) -> int:
    code = hedgebot(["--config", config, *argv])
    if code != 0:
        print(f"demo: `hedgebot {' '.join(argv)}` exited {code}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    paper = "--paper" in (argv if argv is not None else sys.argv[1:])
    os.environ.setdefault("HEDGEBOT__MARKET__CLOCK_ANCHOR", datetime.now(UTC).isoformat())
    for key, value in DEMO_ENV.items():
        os.environ.setdefault(key, value)
    config = os.environ.get("HEDGEBOT_CONFIG", "config.yaml")
    settings = load_settings(config)
    ledger_url = settings.database.paper_url if paper else settings.database.url
    _fresh(ledger_url)
    mode = ["--paper"] if paper else []
    print(
        f"demo: {'paper mode' if paper else 'live through ccxt'}, "
        f"{' and '.join(settings.venue.currencies)} short-gamma books, policy "
        f"{settings.policy.kind}, one simulated day in about {WALL_SECONDS:.0f} s of wall time"
    )
    started = datetime.now(UTC)
    wall0 = time.monotonic()
    if paper:
        code = _day(config, mode)
    else:
        sim_db = "sqlite:///hedgebot-sim.db"
        _fresh(sim_db)
        if settings.venue.kind != "sim":
            print("demo: venue.kind must be sim: the demo never trades a real venue")
            return 2
        with _sim_venue(config, sim_db, settings.venue.sim_url) as url:
            os.environ["HEDGEBOT__VENUE__SIM_URL"] = url
            code = _day(config, mode)
    if code != 0:
        return code
    wall = time.monotonic() - wall0
    print()
    print(render_summary(open_ledger(ledger_url), settings, since=started))
    print(f"\nwall time {wall:.1f} s. The ledger is {ledger_url}.")
    print(_next_steps(paper))
    return 0


def _day(config: str, mode: list[str]) -> int:
    for argv in (
        ["db", "upgrade", *mode],
        ["run", *mode, "--duration", str(SIM_DAY_SECONDS)],
        ["status", *mode],
    ):
        code = _run(config, *argv)
        if code != 0:
            return code
    return 0


def _next_steps(paper: bool) -> str:
    flag = " --paper" if paper else ""
    steps = [
        (f"hedgebot report{flag}", "cost of hedging: fees, slippage, attribution"),
        (f"hedgebot report{flag} --plots out/", "the same with PNG plots"),
    ]
    if paper:
        steps.append(("hedgebot status --paper", "the book, greeks, last rebalances"))
    else:
        steps.append(
            (
                "hedgebot sim & hedgebot status",
                "the venue again (its account is in hedgebot-sim.db), then the book",
            )
        )
        steps.append(("make demo-paper", "the same day in paper mode"))
    width = max(len(cmd) for cmd, _ in steps) + 3
    return "next:\n" + "\n".join(f"  {cmd:<{width}}{what}" for cmd, what in steps)


if __name__ == "__main__":
    raise SystemExit(main())
