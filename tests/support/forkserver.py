"""A fork server for end-to-end tests that start hedgebot processes by the dozen.

Starting a Python process that imports ccxt, SQLAlchemy and numpy costs seconds on a busy
machine; the kill storm starts the daemon sixty times. This process imports them once, then for
each request forks a child that runs a hedgebot command (``bot.cli.main.main``) or the daemon
with an injected lease clock. A child is a separate process with its own pid, files and event
loop: killing it with SIGKILL is a real crash. Run as ``python -m tests.support.forkserver``.

Protocol, one JSON object a line: the request on stdin ``{"argv": [...], "env": {...}, "cwd":
..., "out": path, "err": path, "code": path, "lease_offset_s": float | null}``, the answer on
stdout ``{"pid": N}``. ``lease_offset_s`` set: the child runs the daemon (``argv`` are the
``hedgebot run`` options ``--duration``/``--max-cycles``) with the lease on a wall clock that
stands that far ahead, as if that much time had passed since the last holder died. A child
writes its exit code to ``code`` (a killed one writes nothing). Children are reaped by the
kernel (SIGCHLD ignored). The server exits when stdin closes.
"""

from __future__ import annotations

import faulthandler
import gc
import importlib
import json
import os
import signal
import sys
import traceback
from typing import Any

# What a daemon and the simulated venue import, loaded once before any fork.
PRELOAD = (
    "bot.app",
    "bot.cli.main",
    "bot.cli.run",
    "bot.daemon",
    "bot.sentry",
    "bot.sim.serve",
    "bot.store.identity",
    "ccxt.async_support",
)


def _preload() -> None:
    """Import :data:`PRELOAD`, then freeze: a child's collector never walks (nor writes to,
    so never copies) what the server imported."""
    gc.disable()
    for name in PRELOAD:
        importlib.import_module(name)
    from sqlalchemy.orm import configure_mappers

    configure_mappers()  # once here, not in every child's first query
    gc.freeze()


def _daemon(argv: list[str], lease_offset_s: float) -> int:
    """``hedgebot run`` with its lease on a shifted wall clock (settings from the env)."""
    import asyncio

    import bot.cli.run
    from bot.cli.main import _known
    from bot.clock import OffsetClock, SystemClock
    from bot.config import load_settings
    from bot.logs import configure_logging

    options = dict(zip(argv[::2], argv[1::2], strict=True))
    settings = load_settings(os.devnull, required=True)
    configure_logging(settings.logging.format, settings.logging.level)
    duration = options.get("--duration")
    cycles = options.get("--max-cycles")
    try:
        return asyncio.run(
            bot.cli.run.run_daemon(
                settings,
                duration=float(duration) if duration else None,
                max_cycles=int(cycles) if cycles else None,
                lease_clock=OffsetClock(SystemClock(), lease_offset_s),
            )
        )
    except Exception as exc:
        known = _known(exc)
        print(f"hedgebot: {exc}", file=sys.stderr)
        if known is None:
            traceback.print_exc()
        return known[0] if known is not None else 1


def _child(request: dict[str, Any]) -> None:
    """In the forked child: become the command, never return."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        gc.enable()
        os.setpgid(0, 0)
        for fd, path in ((1, request["out"]), (2, request["err"])):
            target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(target, fd)
            os.close(target)
        # A child that dies of a signal of its own (a fault in a C extension after the fork)
        # leaves its Python stack in its stderr instead of vanishing without a word.
        faulthandler.enable(all_threads=True)
        sys.stdin.close()
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        offset = request.get("lease_offset_s")
        if offset is None:
            from bot.cli.main import main as hedgebot

            code = hedgebot(request["argv"])
        else:
            code = _daemon(request["argv"], float(offset))
    except BaseException:  # the child must never fall back into the server's loop
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            with open(request["code"], "w") as done:
                done.write(str(code))
        finally:
            os._exit(code)


def main() -> int:
    _preload()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps our children
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            _child(request)
        print(json.dumps({"pid": pid}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
