"""What every command group shares: exit codes, the one-line usage error, argument types, and
the scrubbing of secrets from anything printed.

Imported by ``hedgebot --help``, so it imports nothing heavy: no pydantic, SQLAlchemy or ccxt.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import IO, Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

from bot.logs import mask_url_passwords

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2  # bad settings, arguments or venue settings
EXIT_SCHEMA = 3
EXIT_LOCKED = 4
EXIT_RECONCILE = 5
EXIT_DECLINED = 6  # the confirmation prompt was answered no, or closed (Ctrl-D): nothing sent
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), at the prompt or elsewhere

Handler = Callable[[argparse.Namespace, Any], int]

MASK = "****"
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^@\s]+)(?=@)")


class UsageError(Exception):
    """A user mistake: printed as one line, exit 2."""


class Parser(argparse.ArgumentParser):
    """argparse whose mistakes are one line (``hedgebot run: …``), exit 2, no usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``****`` (``postgresql://u:****@host/db``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _URL_PASSWORD.sub(lambda m: m["head"] + MASK, url)
    if parts.password is None:
        return mask_url_passwords(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return mask_url_passwords(urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}")))


def known_secrets(extra: Iterable[str | None] = ()) -> list[str]:
    """Values that must never be printed: the API credentials in the environment and the
    passwords of database URLs set there or given here."""
    env = {k.upper(): v for k, v in os.environ.items()}
    found = [env.get("HEDGEBOT__VENUE__API_KEY"), env.get("HEDGEBOT__VENUE__API_SECRET")]
    found += [v for k, v in env.items() if k.startswith("HEDGEBOT_SIM_API_")]
    urls = [v for k, v in env.items() if k.startswith("HEDGEBOT__DATABASE__")]
    for url in [*urls, *extra]:
        if url:
            m = _URL_PASSWORD.search(url)
            if m:
                found.append(m["pw"])
    return sorted({s for s in found if s and len(s) >= 4}, key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with URL passwords and every known secret value masked."""
    text = mask_url_passwords(_URL_PASSWORD.sub(lambda m: m["head"] + MASK, text))
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


def say(message: str, *, err: bool = True, file: IO[str] | None = None) -> None:
    """Print one message (scrubbed of secrets) to stderr, or to stdout with ``err=False``."""
    stream = file or (sys.stderr if err else sys.stdout)
    print(scrub(message, known_secrets()), file=stream)


# -- argument types: each names the input and what would be valid -------------------------------


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; give one ≥ 1") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be ≥ 1")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; give one > 0") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number > 0")
    return value


def port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535; 0: any free)")
    return value


def iso_time(text: str) -> datetime:
    """An ISO-8601 date or time, read as UTC when it carries no offset."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO date or time; e.g. 2026-01-31 or 2026-01-31T08:00Z"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def database_url_arg(text: str) -> str:
    """A SQLAlchemy URL, e.g. ``sqlite:///hedgebot.db`` or ``postgresql://user@host/db``."""
    if not re.match(r"^[a-zA-Z][a-zA-Z0-9+]*://", text):
        raise argparse.ArgumentTypeError(
            f"{redact_url(text)!r} is not a database URL; e.g. sqlite:///hedgebot.db or "
            "postgresql://user@host/hedgebot"
        )
    return text


def currency(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z]{2,10}", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a currency code, e.g. BTC or ETH")
    return text.upper()


def float_list(text: str) -> list[float]:
    """Comma-separated numbers, e.g. ``-20,-10,0,10,20``."""
    out = []
    for item in text.split(","):
        try:
            value = float(item)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{item.strip()!r} in {text!r} is not a number; give numbers separated by "
                "commas, e.g. -20,-10,0,10,20"
            ) from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{item.strip()!r} in {text!r} is not finite")
        out.append(value)
    return out
