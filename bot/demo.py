"""``make demo``: a short-gamma BTC book hedged by the daemon for a simulated day, in paper mode.

It runs the real ``hedgebot run --paper`` path (reconciliation, policy, risk gate, executor,
ledger) against the embedded simulated market on an accelerated clock, then prints what the
ledger holds. The paper database is left in place for ``hedgebot status --paper``.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bot.cli import main as hedgebot
from bot.config import load_settings
from bot.store.db import open_ledger
from bot.summary import render_summary

SIM_DAY_SECONDS = 86_400.0
WALL_SECONDS = 60.0

# Demo settings, applied only where the user set nothing: a day in about a minute of wall time.
DEMO_ENV = {
    "HEDGEBOT__MARKET__SPEED": str(SIM_DAY_SECONDS / WALL_SECONDS),
    "HEDGEBOT__POLICY__CHECK_SECONDS": "120",
    "HEDGEBOT__DAEMON__HEARTBEAT_SECONDS": "7200",
    # Data age is in simulated seconds: at 1,440x one wall second is 24 simulated minutes.
    "HEDGEBOT__RISK__MAX_DATA_AGE_SECONDS": "1800",
    "HEDGEBOT__EXECUTION__ORDER_TIMEOUT_SECONDS": "600",
}


def _sqlite_file(url: str) -> Path | None:
    prefix = "sqlite:///"
    return (
        Path(url[len(prefix) :]) if url.startswith(prefix) and url != prefix + ":memory:" else None
    )


def main() -> int:
    for key, value in DEMO_ENV.items():
        os.environ.setdefault(key, value)
    config = os.environ.get("HEDGEBOT_CONFIG", "config.yaml")
    settings = load_settings(config)
    url = settings.database.paper_url
    db_file = _sqlite_file(url)
    if db_file is not None and db_file.exists():
        backup = db_file.with_name(f"{db_file.name}.before-demo-{int(time.time())}")
        db_file.rename(backup)
        print(f"demo: moved the previous paper ledger to {backup}")
    print(
        f"demo: paper mode, simulated market, {', '.join(settings.venue.currencies)} books, "
        f"policy {settings.policy.kind}, one simulated day in about {WALL_SECONDS:.0f} s"
    )
    started = datetime.now(UTC)
    wall0 = time.monotonic()
    for argv in (
        ["--config", config, "db", "upgrade", "--paper"],
        ["--config", config, "run", "--paper", "--duration", str(SIM_DAY_SECONDS)],
    ):
        code = hedgebot(argv)
        if code != 0:
            print(f"demo: `hedgebot {' '.join(argv)}` exited {code}", file=sys.stderr)
            return code
    wall = time.monotonic() - wall0
    ledger = open_ledger(url)
    print()
    print(render_summary(ledger, settings, since=started))
    print(f"\nwall time {wall:.1f} s. The ledger is {url}: try `hedgebot status --paper`.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
