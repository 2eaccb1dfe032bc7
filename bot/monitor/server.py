"""One HTTP listener for ``/metrics`` (Prometheus text format), ``/healthz`` and ``/readyz``.

It runs in its own thread (the standard library's WSGI server), so probes answer while the
event loop is busy, and a stuck loop shows as a failing ``/healthz`` rather than a silent port.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

Probe = Callable[[], tuple[bool, dict[str, Any]]]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would flood the log."""


class _Threading(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Threading6(_Threading):
    address_family = socket.AF_INET6


class ProbeServer:
    def __init__(
        self, host: str, port: int, registry: CollectorRegistry, alive: Probe, ready: Probe
    ) -> None:
        self._metrics = make_wsgi_app(registry)
        self._probes = {"/healthz": alive, "/readyz": ready}
        cls = _Threading6 if ":" in host else _Threading
        self._server = make_server(host, port, self._app, server_class=cls, handler_class=_Quiet)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="monitor-http", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _app(self, environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        probe = self._probes.get(path)
        if probe is not None:
            try:
                ok, detail = probe()
            except Exception as exc:  # a probe that fails says so, it does not hang up
                ok, detail = False, {"error": type(exc).__name__}
            body = json.dumps({"ok": ok, **detail}, default=str).encode()
            status = "200 OK" if ok else "503 Service Unavailable"
            start(
                status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            )
            return [body]
        if path == "/metrics":
            result: Iterable[bytes] = self._metrics(environ, start)
            return result
        start("404 Not Found", [("Content-Type", "text/plain")])
        return [b"/metrics, /healthz or /readyz\n"]
