"""``hedgebot sim``: a Deribit-compatible simulated venue on 127.0.0.1."""

from __future__ import annotations

import argparse
import errno
import json
import socket
from typing import TYPE_CHECKING, Any

from bot.cli.common import EXIT_OK, UsageError, port

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.sim.faults import WireFaultPlan

HOST = "127.0.0.1"


def register(sub: Any) -> None:
    sim = sub.add_parser("sim", help="a Deribit-compatible simulated venue on 127.0.0.1")
    sim.add_argument(
        "--port", type=port, default=8642, metavar="PORT", help="TCP port (default 8642; 0: any)"
    )
    sim.add_argument(
        "--db",
        default="sqlite:///hedgebot-sim.db",
        metavar="URL",
        help="the venue's own account ('' keeps it in memory)",
    )
    sim.add_argument(
        "--faults",
        default=None,
        metavar="JSON",
        help='a fault plan, e.g. \'{"seed": 1, "accept_then_drop": [1], "drop_mode": "hold"}\'',
    )
    sim.set_defaults(handler=cmd_sim)


def fault_plan(text: str) -> WireFaultPlan:
    """``--faults`` JSON as a :class:`WireFaultPlan`; a one-line UsageError otherwise."""
    from bot.sim.faults import WireFaultPlan

    try:
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise TypeError("not a JSON object")
        if isinstance(raw.get("latency_ms"), list):
            raw["latency_ms"] = tuple(raw["latency_ms"])
        return WireFaultPlan(**raw)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"--faults: {exc}; give a JSON object of WireFaultPlan fields") from None


def check_port_free(number: int) -> None:
    """Refuse a port something already listens on, before anything is built."""
    if number == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the server binds (aiohttp sets SO_REUSEADDR): a port whose last connections wait
        # in TIME_WAIT is free to listen on, one with a listener is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, number))
            probe.listen(1)
        except OSError as exc:
            taken = exc.errno in (errno.EADDRINUSE, errno.EACCES)
            why = "is in use" if taken else f"cannot be used ({exc.strerror})"
            raise UsageError(
                f"--port {number}: {HOST}:{number} {why}; choose another (--port 0 picks a free "
                "one) or stop the process holding it"
            ) from None


def cmd_sim(args: argparse.Namespace, settings: Settings) -> int:
    plan = fault_plan(args.faults) if args.faults else None
    if args.db:
        from bot.cli.common import database_url_arg

        try:
            database_url_arg(args.db)
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"--db: {exc}") from None
    check_port_free(args.port)
    import asyncio  # not at module top: `hedgebot --help` stays quick

    from bot.sim.serve import serve

    asyncio.run(serve(settings, HOST, args.port, database_url=args.db or None, fault_plan=plan))
    return EXIT_OK
