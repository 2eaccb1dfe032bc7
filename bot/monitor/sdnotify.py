"""systemd's notify protocol, spoken directly: one datagram per state to ``$NOTIFY_SOCKET``.

See sd_notify(3): ``READY=1`` once start-up (reconciliation) is done, ``WATCHDOG=1`` at least
every ``$WATCHDOG_USEC`` microseconds, ``STOPPING=1`` on the way out. A socket path starting
with ``@`` is in the abstract namespace. Without ``$NOTIFY_SOCKET`` (not under systemd, or
``Type=simple``) every call is a no-op.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

import structlog

log = structlog.get_logger("hedgebot.sdnotify")


class SystemdNotifier:
    def __init__(self, environ: Mapping[str, str]) -> None:
        path = environ.get("NOTIFY_SOCKET", "")
        self._address = "\0" + path[1:] if path.startswith("@") else path
        usec = environ.get("WATCHDOG_USEC", "")
        pid = environ.get("WATCHDOG_PID", "")
        mine = not pid or pid == str(os.getpid())
        self.watchdog_seconds = int(usec) / 1e6 if usec.isdigit() and mine else None
        self._failed = False

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def notify(self, state: str) -> bool:
        """Send ``state`` (e.g. ``"READY=1"``); False when not under systemd or it failed."""
        if not self._address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.settimeout(1.0)
                sock.connect(self._address)
                sock.sendall(state.encode())
            return True
        except OSError as exc:
            if not self._failed:  # say it once, not every loop
                log.warning("sd_notify_failed", error=str(exc))
                self._failed = True
            return False
