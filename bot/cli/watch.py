"""``hedgebot watch``: the book at a glance, refreshed in place.

Per currency: delta against its band, the hedge, gamma, the last decisions, working orders,
today's costs, the trading state and the age of the data. It reads the ledger (and the
daemon's ``/readyz`` when the monitor serves it), never the venue and never the
book's lock, so it runs beside a daemon without disturbing it. ``--once`` prints one frame.
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

from bot.cli.common import positive_float

if TYPE_CHECKING:
    from bot.clock import Clock
    from bot.config import Settings


def register(sub: Any) -> None:
    """Imports nothing heavy: `hedgebot --help` stays quick."""
    p = sub.add_parser("watch", help="a live view of the book, beside a running daemon")
    p.add_argument("--paper", action="store_true", help="the paper ledger")
    p.add_argument("--once", action="store_true", help="print one frame and exit")
    p.add_argument(
        "--every",
        type=positive_float,
        default=2.0,
        metavar="SECONDS",
        help="refresh period, wall seconds",
    )
    p.add_argument(
        "--metrics-url",
        type=http_url,
        default=None,
        metavar="URL",
        help="the daemon's monitor (default: from monitor.host/port when monitor.metrics)",
    )
    p.set_defaults(handler=cmd_watch)


def http_url(text: str) -> str:
    """The daemon monitor's base URL: http(s)://host:port."""
    from urllib.parse import urlsplit

    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an http URL; give the monitor's address, e.g. http://127.0.0.1:9464"
        )
    return text


def monitor_url(settings: Settings, override: str | None) -> str | None:
    if override:
        return override.rstrip("/")
    m = settings.monitor
    if not m.metrics or m.port == 0:
        return None
    host = f"[{m.host}]" if ":" in m.host else m.host
    return f"http://{host}:{m.port}"


def cmd_watch(args: argparse.Namespace, settings: Settings, clock: Clock | None = None) -> int:
    """``clock`` (default: the daemon's, from the settings) dates "today" and the data age."""
    from rich.console import Console, RenderableType  # only this command draws
    from rich.live import Live

    from bot.app import database_url, make_clock
    from bot.cli.watch_data import read_frame
    from bot.cli.watch_view import render
    from bot.store.db import open_ledger

    url = database_url(settings, args.paper)
    ledger = open_ledger(url)
    clock = clock or make_clock(settings)
    metrics = monitor_url(settings, args.metrics_url)

    def frame() -> RenderableType:
        return render(read_frame(ledger, settings, clock.now(), url, metrics))

    console = Console()
    if args.once:
        console.print(frame())
        return 0
    try:
        with Live(frame(), console=console, screen=False, auto_refresh=False) as live:
            while True:
                time.sleep(args.every)  # the terminal's pace, wall time by design
                live.update(frame(), refresh=True)
    except KeyboardInterrupt:
        return 0
