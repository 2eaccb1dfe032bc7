"""``make demo``: short-gamma BTC and ETH books hedged for a simulated day, through ccxt.

The demo lives in its own world, ``demo/`` under the current directory: its settings
(``demo/config.yaml``, written afresh each run), its ledgers and the simulated venue's account.
It never touches ``hedgebot.db`` or ``hedgebot-paper.db``.

It starts ``hedgebot sim`` (the Deribit-compatible simulated venue) on 127.0.0.1 in another
process and runs the real ``hedgebot run`` against it through ccxt, on lockstep time: the venue
owns the clock and it moves only when the daemon sleeps, so the same seed gives the same day,
to the fill, on any machine however busy. ``--paper`` runs the same day in paper mode (no venue
process). ``--pace N`` (simulated seconds per wall second) slows the day down for a watcher
without changing what happens; ``--hours`` shortens it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import yaml

from bot.analysis.summary import render_summary
from bot.cli.main import main as hedgebot
from bot.config import load_settings
from bot.store.db import open_ledger
from bot.units import SECONDS_PER_HOUR

DEMO_DIR = Path("demo")
CONFIG = DEMO_DIR / "config.yaml"
LIVE_DB = f"sqlite:///{DEMO_DIR}/live.db"
PAPER_DB = f"sqlite:///{DEMO_DIR}/paper.db"
SIM_DB = f"sqlite:///{DEMO_DIR}/sim.db"
START = datetime(2026, 1, 5, tzinfo=UTC)  # a fixed day: the same seed gives the same ledger
DEFAULT_PORT = 8642


def demo_settings(sim_url: str, pace: float | None) -> dict[str, object]:
    """The demo's settings file: everything it needs, nothing from the user's config."""
    market: dict[str, object] = {"clock": "lockstep", "start": START.isoformat(), "seed": 7}
    if pace is not None:
        market["pace"] = pace
    return {
        "venue": {"kind": "sim", "sim_url": sim_url, "currencies": ["BTC", "ETH"]},
        "market": market,
        "policy": {"check_seconds": 300},
        # The default band is 0.1 coin: about $9,000 of BTC but only $300 of ETH.
        "policy_by_currency": {"ETH": {"delta_band": {"band": 3.0}}},
        "database": {"url": LIVE_DB, "paper_url": PAPER_DB},
        "daemon": {"heartbeat_seconds": 7200},
    }


def _write_config(sim_url: str, pace: float | None) -> None:
    header = (
        "# The demo's own settings, written by `make demo` (python -m bot.cli.demo) on every\n"
        "# run. Use them with `hedgebot --config demo/config.yaml ...` from this directory.\n"
    )
    CONFIG.write_text(header + yaml.safe_dump(demo_settings(sim_url, pace), sort_keys=False))


def _fresh_world() -> None:
    """Remove the previous demo's ledgers, venue account and lock: every demo starts from the
    same book. Only files the demo itself writes are removed."""
    DEMO_DIR.mkdir(exist_ok=True)
    for name in ("live.db", "paper.db", "sim.db"):
        for suffix in ("", "-wal", "-shm", "-journal"):
            (DEMO_DIR / f"{name}{suffix}").unlink(missing_ok=True)


def _free_port(preferred: int) -> int:
    """``preferred`` when free (so the printed `hedgebot sim` serves the same URL), else 0."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            return 0
    return preferred


def sim_command(port: int) -> list[str]:
    return ["--config", str(CONFIG), "sim", "--port", str(port), "--db", SIM_DB]


def _start_sim(port: int) -> tuple[subprocess.Popen[str], int]:
    """Start ``hedgebot sim`` on ``port`` (0: any); the port it bound, or 0 when it did not."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli.main", *sim_command(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    while line := proc.stdout.readline():
        if "Deribit API on http://127.0.0.1:" in line:
            return proc, int(line.split("http://127.0.0.1:")[1].split()[0])
    proc.wait()
    return proc, 0


@contextmanager
def _sim_venue(port: int) -> Iterator[int]:
    """``hedgebot sim`` on 127.0.0.1 for as long as the demo needs it; yields its port.

    The preferred port can be taken between the check and the sim's bind (another program
    starting at the same moment); the sim then exits, and a second start takes any free port."""
    proc, bound = _start_sim(port)
    if not bound and port:
        proc, bound = _start_sim(0)
    try:
        if not bound:
            raise RuntimeError("hedgebot sim did not start")
        print(f"demo: simulated Deribit venue at http://127.0.0.1:{bound} (pid {proc.pid})")
        yield bound
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _run(*argv: str) -> int:
    code = hedgebot(["--config", str(CONFIG), *argv])
    if code != 0:
        print(f"demo: `hedgebot {' '.join(argv)}` exited {code}", file=sys.stderr)
    return code


def _own_environment() -> None:
    """The demo's settings are its file's: settings from the environment would move it out of
    its world (into hedgebot.db, say), so they are set aside for this process."""
    ours = sorted(k for k in os.environ if k.upper().startswith("HEDGEBOT__"))
    for key in ours:
        del os.environ[key]
    if ours:
        print(f"demo: ignoring {', '.join(ours)}: the demo's settings are in {CONFIG}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bot.cli.demo", description=__doc__)
    p.add_argument("--paper", action="store_true", help="paper mode: no venue process")
    p.add_argument("--hours", type=float, default=24.0, help="simulated hours (default 24)")
    p.add_argument(
        "--pace", type=float, default=None, help="simulated seconds per wall second (watching)"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not 0 < args.hours <= 24 * 14 or (args.pace is not None and args.pace <= 0):
        print("demo: --hours must be in (0, 336] and --pace positive", file=sys.stderr)
        return 2
    _own_environment()
    _fresh_world()
    paper = bool(args.paper)
    mode = ["--paper"] if paper else []
    print(
        f"demo: {'paper mode' if paper else 'live through ccxt'}, BTC and ETH short-gamma "
        f"books, {args.hours:g} simulated hours on lockstep time, in {DEMO_DIR}/"
    )
    wall0 = time.monotonic()
    port = 0
    if paper:
        _write_config(f"http://127.0.0.1:{DEFAULT_PORT}", args.pace)
        code = _day(mode, args.hours)
    else:
        _write_config("http://127.0.0.1:0", args.pace)
        with _sim_venue(_free_port(DEFAULT_PORT)) as port:
            _write_config(f"http://127.0.0.1:{port}", args.pace)
            code = _day(mode, args.hours)
    if code != 0:
        return code
    wall = time.monotonic() - wall0
    settings = load_settings(CONFIG)
    print()
    print(render_summary(open_ledger(PAPER_DB if paper else LIVE_DB), settings, since=START))
    print(f"\nwall time {wall:.1f} s")
    print(next_steps(paper, port))
    return 0


def _day(mode: list[str], hours: float) -> int:
    for argv in (
        ["db", "upgrade", *mode],
        ["run", *mode, "--duration", f"{hours * SECONDS_PER_HOUR:g}"],
        ["status", *mode],
    ):
        code = _run(*argv)
        if code != 0:
            return code
    return 0


def hedgebot_command() -> str:
    """``hedgebot`` as this shell can run it: the virtual environment's script (``make demo``
    does not activate it), relative to this directory when it is inside it."""
    script = Path(sys.executable).parent / "hedgebot"
    if not script.exists():
        return "hedgebot"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def next_steps(paper: bool, port: int) -> str:
    """Commands to type next, from this directory, each exactly as it runs."""
    exe = hedgebot_command()
    base = shlex.join([exe, "--config", str(CONFIG)])
    flag = " --paper" if paper else ""
    steps: list[tuple[str, str]] = []
    if not paper:
        sim = shlex.join([exe, *sim_command(port)])
        steps.append((f"{sim} &", "the venue again, where the day ended"))
    steps += [
        (f"{base} status{flag}", "the book, greeks, last rebalances"),
        (f"{base} report{flag}", "cost of hedging: fees, slippage, attribution"),
        (f"{base} risk{flag}", "P&L of the book on a grid of price and vol moves"),
        (f"{base} rebalance{flag} --yes", "one more rebalance, at the day's end"),
    ]
    if not paper:
        steps.append(("kill %1", "stop the venue"))
        steps.append(("make demo-paper", "the same day in paper mode"))
    width = max(len(cmd) for cmd, _ in steps) + 3
    return "next (from this directory):\n" + "\n".join(
        f"  {cmd:<{width}}{what}" for cmd, what in steps
    )


if __name__ == "__main__":
    raise SystemExit(main())
