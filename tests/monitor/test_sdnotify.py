"""systemd's notify protocol over a local datagram socket: READY, WATCHDOG, STOPPING."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bot.clock import FakeClock
from bot.monitor import Monitor
from bot.monitor.sdnotify import SystemdNotifier
from tests.monitor.kit import monitored
from tests.support.books import NOW


@contextmanager
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(5)
    try:
        yield sock
    finally:
        sock.close()


def received(sock: socket.socket) -> list[str]:
    sock.setblocking(False)
    out = []
    try:
        while True:
            out.append(sock.recv(4096).decode())
    except BlockingIOError:
        return out


async def test_the_daemon_says_ready_after_reconciling_pings_each_loop_and_says_stopping(
    tmp_path: Path,
) -> None:
    with notify_socket(tmp_path) as sock:
        env = {"NOTIFY_SOCKET": str(tmp_path / "notify.sock")}
        daemon, app, _ = monitored(
            tmp_path, FakeClock(NOW), environ=env, monitor={"metrics": False}
        )
        try:
            await daemon.run(asyncio.Event(), max_cycles=3)
        finally:
            await app.close()
        got = received(sock)
    assert got == [
        "READY=1\nSTATUS=reconciled, hedging",
        "WATCHDOG=1",
        "WATCHDOG=1",
        "WATCHDOG=1",
        "STOPPING=1",
    ]


async def test_the_watchdog_is_pinged_between_loops_and_stops_when_the_loop_stalls(
    tmp_path: Path,
) -> None:
    clock = FakeClock(NOW)
    naps: list[float] = []
    nap_taken = asyncio.Event()

    async def wall_sleep(seconds: float) -> None:
        naps.append(seconds)
        nap_taken.set()
        await asyncio.sleep(0)

    with notify_socket(tmp_path) as sock:
        env = {"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "30000000"}
        _, app, _ = monitored(tmp_path, clock, environ=env, monitor={"metrics": False})
        mon = Monitor(app.settings, app.ledger, clock, environ=env, wall_sleep=wall_sleep)
        try:
            mon.starting(("BTC",), 60.0)
            for _ in range(3):
                await asyncio.sleep(0)
            alive_pings = received(sock)
            clock.advance(60 + 300 + 1)  # the loop has not turned: stalled
            for _ in range(3):
                await asyncio.sleep(0)
            stalled_pings = received(sock)
        finally:
            mon.close()
            await app.close()
    assert naps[0] == 15.0  # half of WATCHDOG_USEC
    assert alive_pings
    assert set(alive_pings) == {"WATCHDOG=1"}
    assert stalled_pings == []


def test_an_abstract_socket_name_and_a_foreign_watchdog_pid_are_understood(tmp_path: Path) -> None:
    name = f"hedgebot-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        n = SystemdNotifier(
            {"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}
        )
        assert n.notify("READY=1")
        assert sock.recv(64) == b"READY=1"
    assert n.watchdog_seconds is None  # the watchdog is meant for another process


def test_without_notify_socket_every_call_is_a_no_op() -> None:
    n = SystemdNotifier({})
    assert not n.enabled
    assert n.notify("READY=1") is False
    assert n.watchdog_seconds is None


def test_a_socket_that_went_away_is_reported_once_and_never_raises(tmp_path: Path) -> None:
    n = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert n.notify("WATCHDOG=1") is False
    assert n.notify("WATCHDOG=1") is False
