"""Structured logging: readable on a terminal, JSON lines otherwise.

Every room logs events (``log.info("order_sent", label=...)``) with context bound by the caller
(cycle id, order label), so tests assert on events with ``structlog.testing.capture_logs``.
Secrets never reach a log: settings hold them as ``SecretStr``, a processor masks any field
whose name looks like a credential and any password inside a URL.

On a terminal the daemon's own events read as one line each for a trader (:class:`TraderConsole`):
each cycle's currency, delta in coin and USD against the band, the decision and why, the order
and its fill; the heartbeat's counts, fees and P&L of the day. JSON logs keep every field.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, Literal

import structlog

_SECRET_HINTS = ("secret", "api_key", "password", "token", "signature")
_URL_PASSWORD = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)[^@\s]+(?=@)")
# libpq and several drivers also take the password as a query parameter
# (https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING-URIS); Deribit's
# ``public/auth`` takes the key, secret and signature as query parameters (docs.deribit.com,
# ``public/auth``: client_id, client_secret, signature), and ccxt puts the URL in its errors.
_QUERY_PASSWORD = re.compile(
    r"([?&](?:password|passwd|pwd|pass|client_id|client_secret|signature|sig|access_token|"
    r"refresh_token|token)=)[^&#\s\"']+",
    re.IGNORECASE,
)


def mask_url_passwords(text: str) -> str:
    """``text`` with every URL password masked, in the user-info part or in the query."""
    return _QUERY_PASSWORD.sub(r"\1****", _URL_PASSWORD.sub(r"\1****", text))


class _SecretMask:
    """The log processor that keeps secrets out: fields named like one, URL passwords and
    auth query parameters, and every known secret value (the API key and secret) anywhere."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(
        self, _: Any, __: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key in list(event):
            if any(h in key.lower() for h in _SECRET_HINTS):
                event[key] = "**********"
                continue
            value = event[key]
            if not isinstance(value, str):
                continue
            if "://" in value:
                value = mask_url_passwords(value)
            for secret in self.secrets:
                value = value.replace(secret, "****")
            event[key] = value
        return event


def _num(value: Any, spec: str) -> str:
    return "?" if not isinstance(value, int | float) else format(value, spec)


class TraderConsole:
    """Console renderer: the daemon's cycle, order and heartbeat events as one readable line
    each; every other event as structlog's console renderer shows it."""

    def __init__(self, colors: bool) -> None:
        self._fallback = structlog.dev.ConsoleRenderer(colors=colors)

    def __call__(self, logger: Any, name: str, event: MutableMapping[str, Any]) -> str:
        line = self._line(event)
        if line is None:
            return str(self._fallback(logger, name, event))
        ts = str(event.get("timestamp", ""))[11:19]
        return f"{ts} {event.get('level', 'info'):<7} {line}"

    @staticmethod
    def _delta(e: MutableMapping[str, Any]) -> str:
        cur = e.get("currency", "")
        text = f"delta {_num(e.get('delta'), '+.4f')} {cur} (${_num(e.get('delta_usd'), '+,.0f')})"
        if "band_low" in e:
            text += (
                f" band [{_num(e['band_low'], '+.4f')}, {_num(e.get('band_high'), '+.4f')}]"
                f" target {_num(e.get('target'), '+.4f')}"
            )
        return text

    def _line(self, e: MutableMapping[str, Any]) -> str | None:
        kind, cur = e.get("event"), e.get("currency", "")
        if kind == "cycle_done":
            decision = {"no_trade": "no trade", "dry_run": "dry run, nothing sent"}.get(
                str(e.get("status")), str(e.get("status", "")).upper()
            )
            return f"{cur:<4} {self._delta(e)} -> {decision}: {e.get('reason', '')}"
        if kind == "cycle_skipped":
            return f"{cur:<4} SKIPPED: {e.get('reason', '')}"
        if kind == "rebalanced":
            amount = e.get("trade_amount")
            side = "BUY" if isinstance(amount, int | float) and amount > 0 else "SELL"
            size = _num(abs(amount) if isinstance(amount, int | float) else None, ",.0f")
            return (
                f"{cur:<4} {self._delta(e)} -> TRADE {side} {size} {e.get('instrument', '')}: "
                f"filled {_num(e.get('filled'), '+,.0f')} at {_num(e.get('price'), ',.2f')}, "
                f"fees {_num(e.get('fees'), '.8f')} {cur} ({e.get('status', '')}, "
                f"{e.get('label', '')})"
            )
        if kind == "heartbeat":
            return self._heartbeat(e)
        return None

    @staticmethod
    def _heartbeat(e: MutableMapping[str, Any]) -> str:
        by = e.get("by_status_today") or {}
        counts = ", ".join(f"{k} {v}" for k, v in by.items()) or "none"
        fees = ", ".join(f"{_num(v, '.8f')} {k}" for k, v in (e.get("fees_today") or {}).items())
        pnl = ", ".join(
            f"{k} {_num(v.get('coin'), '+.6f')} (${_num(v.get('usd'), '+,.0f')})"
            for k, v in (e.get("pnl_today") or {}).items()
        )
        return (
            f"heartbeat: {e.get('cycles', 0)} cycles since start; today {e.get('day', '')}: "
            f"{e.get('cycles_today', 0)} cycles ({counts}), fees {fees or 'none'}, "
            f"P&L {pnl or 'not yet known'}"
        )


def _factory(stream: Any) -> Any:
    """Loggers that write to ``stream``, or to whatever ``sys.stderr`` is at the time of the
    call (so a replaced stderr, as under test capture, is followed rather than kept)."""
    if stream is not None:
        return structlog.PrintLoggerFactory(file=stream)
    return lambda *_: structlog.PrintLogger(file=sys.stderr)


def configure_logging(
    fmt: Literal["auto", "console", "json"] = "auto",
    level: str = "info",
    stream: Any = None,
    secrets: Iterable[str] = (),
) -> None:
    """Set structlog up once per process; ``auto`` picks console on a tty, JSON otherwise.
    ``secrets``: values masked wherever they appear in an event (the API key and secret)."""
    out = stream or sys.stderr
    # ccxt logs request headers (API key id, signatures) at DEBUG: never let that through.
    logging.getLogger("ccxt").setLevel(logging.INFO)
    if fmt == "auto":
        fmt = "console" if out.isatty() else "json"
    renderer: Any = (
        TraderConsole(colors=out.isatty())
        if fmt == "console"
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            # before the mask: a traceback's text (a chained ccxt error's URL) is masked too
            structlog.processors.format_exc_info,
            _SecretMask(secrets),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=_factory(stream),
        cache_logger_on_first_use=False,
    )
