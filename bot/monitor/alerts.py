"""Alerts: what happened, the numbers, what to do, sent through apprise without ever blocking.

The gate deduplicates (one key, once per ``dedupe_seconds``) and rate limits (``max_per_hour``
over all kinds) on the injected clock. The sender owns one background thread and a bounded
queue: the daemon only enqueues, a full queue drops (and counts), and a receiver that is down
costs the thread its timeout, never the daemon. Apprise (https://github.com/caronc/apprise) is
imported in that thread, and only when URLs are configured. URLs carry tokens: they are never
logged, and apprise's own logger is kept quiet for the same reason.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import structlog

from bot.logs import mask_url_passwords

log = structlog.get_logger("hedgebot.alerts")

ALERT_URLS_ENV = "HEDGEBOT_ALERT_URLS"
SEVERITIES = ("info", "success", "warning", "failure")  # apprise's NotifyType values


@dataclass(frozen=True)
class Alert:
    """One message. ``key`` identifies the event for deduplication."""

    kind: str
    key: str
    severity: str
    title: str
    what: str
    numbers: Mapping[str, str] = field(default_factory=dict)
    todo: str = ""

    def body(self) -> str:
        lines = [self.what]
        if self.numbers:
            lines.append("Numbers: " + "; ".join(f"{k} {v}" for k, v in self.numbers.items()))
        if self.todo:
            lines.append(f"What to do: {self.todo}")
        return "\n".join(lines)


def alert_urls(environ: Mapping[str, str]) -> tuple[str, ...]:
    """``HEDGEBOT_ALERT_URLS``: apprise URLs separated by spaces, commas or newlines."""
    raw = environ.get(ALERT_URLS_ENV, "")
    return tuple(u for u in raw.replace(",", " ").split() if u)


def redactor(secrets: Iterable[str]) -> Callable[[str], str]:
    """Replace every secret (API keys, alert URLs and their tokens) in a text by ``***``, and
    mask URL passwords and auth query parameters (a venue error's URL) as the logs do."""
    found = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def redact(text: str) -> str:
        for s in found:
            text = text.replace(s, "***")
        return mask_url_passwords(text)

    return redact


def url_secrets(urls: Iterable[str]) -> list[str]:
    """The parts of apprise URLs that may be tokens: user, password, path segments, query."""
    parts: list[str] = []
    for url in urls:
        parts.append(url)
        split = urlsplit(url)
        parts += [split.username or "", split.password or "", split.netloc]
        # tokens are long (Telegram, Slack, ntfy topics); words like "hooks" are not
        parts += [seg for seg in split.path.split("/") if len(seg) >= 12]
        parts += [v for _, v in parse_qsl(split.query) if len(v) >= 12]
    return parts


class AlertGate:
    """Deduplication and the rate limit, on the clock the daemon runs on."""

    def __init__(self, now: Callable[[], datetime], dedupe_seconds: float, max_per_hour: int):
        self._now = now
        self._dedupe = timedelta(seconds=dedupe_seconds)
        self._max = max_per_hour
        self._seen: dict[str, datetime] = {}
        self._sent: deque[datetime] = deque()
        self.suppressed = 0

    def admit(self, alert: Alert) -> str:
        """``"send"``, ``"duplicate"`` or ``"rate_limited"``."""
        now = self._now()
        last = self._seen.get(alert.key)
        if last is not None and now - last < self._dedupe:
            return "duplicate"
        while self._sent and now - self._sent[0] >= timedelta(hours=1):
            self._sent.popleft()
        if len(self._sent) >= self._max:
            self.suppressed += 1
            return "rate_limited"
        self._seen[alert.key] = now
        self._sent.append(now)
        return "send"


Transport = Callable[[Alert, str], bool]  # (alert, body) -> delivered


class AlertSender:
    """A bounded queue drained by one daemon thread; ``send`` never blocks."""

    def __init__(
        self,
        urls: tuple[str, ...],
        *,
        timeout_seconds: float,
        queue_size: int,
        transport: Transport | None = None,
    ) -> None:
        self._urls = tuple(_with_timeouts(u, timeout_seconds) for u in urls)
        self._timeout = timeout_seconds
        self._queue: queue.Queue[tuple[Alert, str] | None] = queue.Queue(maxsize=queue_size)
        self._transport = transport
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self.delivered = 0
        self.failed = 0

    @property
    def enabled(self) -> bool:
        return bool(self._urls) or self._transport is not None

    def send(self, alert: Alert, body: str) -> bool:
        """Queue ``alert``; False when the queue is full (the alert is dropped and counted)."""
        if not self.enabled:
            return False
        if self._thread is None:
            self._thread = threading.Thread(target=self._drain, name="alerts", daemon=True)
            self._thread.start()
        try:
            self._queue.put_nowait((alert, body))
            return True
        except queue.Full:
            self.dropped += 1
            log.warning("alert_dropped", kind=alert.kind, reason="queue full")
            return False

    def close(self, wait_seconds: float) -> None:
        """Let queued alerts go for at most ``wait_seconds`` of wall time, then leave."""
        if self._thread is None:
            return
        deadline = time.monotonic() + wait_seconds
        with contextlib.suppress(queue.Full):  # a full queue waits for room, within the bound
            self._queue.put(None, timeout=wait_seconds)
        self._thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._thread = None

    def _drain(self) -> None:
        transport = self._transport or self._apprise()
        while True:
            item = self._queue.get()
            if item is None:
                return
            alert, body = item
            try:
                ok = transport(alert, body)
            except Exception as exc:  # a broken receiver must not end the thread
                ok = False
                log.warning("alert_send_error", kind=alert.kind, error=type(exc).__name__)
            if ok:
                self.delivered += 1
                log.info("alert_sent", kind=alert.kind)
            else:
                self.failed += 1
                log.warning("alert_not_delivered", kind=alert.kind, receivers=len(self._urls))

    def _apprise(self) -> Transport:
        import apprise  # heavy: only when alerts are configured, only in this thread

        # Apprise logs the URLs it posts to; they carry tokens.
        logging.getLogger("apprise").setLevel(logging.CRITICAL + 1)
        notifier = apprise.Apprise()
        for url in self._urls:
            if not notifier.add(url):
                log.error("alert_url_refused", receivers=len(self._urls))

        def transport(alert: Alert, body: str) -> bool:
            return bool(
                notifier.notify(
                    body=body,
                    title=alert.title,
                    notify_type=apprise.NotifyType(alert.severity),
                )
            )

        return transport


def _with_timeouts(url: str, seconds: float) -> str:
    """Apprise's connect (``cto``) and read (``rto``) timeouts, unless the URL sets them."""
    query = dict(parse_qsl(urlsplit(url).query))
    extra = [f"{k}={seconds:g}" for k in ("cto", "rto") if k not in query]
    if not extra:
        return url
    return url + ("&" if "?" in url else "?") + "&".join(extra)
