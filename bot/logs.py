"""Structured logging: readable on a terminal, JSON lines otherwise.

Every room logs events (``log.info("order_sent", label=...)``) with context bound by the caller
(cycle id, order label), so tests assert on events with ``structlog.testing.capture_logs``.
Secrets never reach a log: settings hold them as ``SecretStr`` and a processor masks any field
whose name looks like a credential.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog

_SECRET_HINTS = ("secret", "api_key", "password", "token", "signature")


def _mask_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if any(h in key.lower() for h in _SECRET_HINTS):
            event[key] = "**********"
    return event


def _factory(stream: Any) -> Any:
    """Loggers that write to ``stream``, or to whatever ``sys.stderr`` is at the time of the
    call (so a replaced stderr, as under test capture, is followed rather than kept)."""
    if stream is not None:
        return structlog.PrintLoggerFactory(file=stream)
    return lambda *_: structlog.PrintLogger(file=sys.stderr)


def configure_logging(
    fmt: Literal["auto", "console", "json"] = "auto", level: str = "info", stream: Any = None
) -> None:
    """Set structlog up once per process; ``auto`` picks console on a tty, JSON otherwise."""
    out = stream or sys.stderr
    # ccxt logs request headers (API key id, signatures) at DEBUG: never let that through.
    logging.getLogger("ccxt").setLevel(logging.INFO)
    if fmt == "auto":
        fmt = "console" if out.isatty() else "json"
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=out.isatty())
        if fmt == "console"
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _mask_secrets,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=_factory(stream),
        cache_logger_on_first_use=False,
    )
