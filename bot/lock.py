"""Single writer per book: a lease held in the ledger itself.

A book is a venue account and a currency. Its lease is a row in the ledger's ``book_leases``
table, so every process that writes to that ledger meets it, whatever the spelling of the
database URL, the working directory or the host. The daemon holds its books for its life and
renews them every cycle and every third of ``daemon.lease_seconds``; a one-shot ``rebalance``
that finds a book held says who holds it and sends nothing. A crashed holder's lease is taken
over only once it has expired (on PostgreSQL an advisory lock, freed with the holder's
connection, is a second layer).
"""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from types import TracebackType
from urllib.parse import urlsplit

import structlog

from bot.clock import Clock
from bot.config import Settings
from bot.store.lease import Claimant, LeaseHeld, LeaseHolder, LeaseLost, LeaseStore

log = structlog.get_logger("hedgebot.lock")


class BookLocked(Exception):
    """Another process holds the book."""

    def __init__(self, book: str, holder: str) -> None:
        super().__init__(f"another hedgebot process holds book {book}: {holder}")
        self.book = book
        self.holder = holder


def account_identity(settings: Settings, paper: bool) -> str:
    """The venue account a ledger's orders go to, without any secret in it.

    Paper: the paper account lives in the paper ledger itself. Sim: the simulated venue's
    address. Deribit: the network and URL plus a digest of the API key's client id (a key
    belongs to exactly one account or subaccount).
    """
    venue = settings.venue
    if paper:
        return "paper"
    if venue.kind == "sim":
        return f"sim {_normal_url(venue.sim_url)}"
    key = venue.api_key.get_secret_value() if venue.api_key is not None else ""
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    where = _normal_url(venue.url) if venue.network == "custom" and venue.url else venue.network
    return f"deribit {where} key {digest}"


def book_key(account: str, currency: str) -> str:
    return f"{account} {currency.upper()}"


def _normal_url(url: str) -> str:
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme.lower()}://{host}{port}{parts.path.rstrip('/')}"


class BookLease:
    """The leases of a process's books: acquire all or none, renew, release."""

    def __init__(
        self,
        store: LeaseStore,
        books: tuple[str, ...],
        clock: Clock,
        ttl_seconds: float,
        mode: str,
        *,
        owner: str | None = None,
        host: str | None = None,
        pid: int | None = None,
    ) -> None:
        self.store = store
        self.books = books
        self.clock = clock
        self.ttl = ttl_seconds
        self.claimant = Claimant(
            owner=owner or uuid.uuid4().hex,
            host=host or socket.gethostname(),
            pid=os.getpid() if pid is None else pid,
            mode=mode,
        )
        self._held: list[str] = []

    @property
    def renew_every(self) -> float:
        return self.ttl / 3

    def acquire(self) -> None:
        """Take every book, or none: raises :class:`BookLocked` naming the holder."""
        now = self.clock.now()
        try:
            for book in self.books:
                self.store.acquire(book, self.claimant, now, self.ttl)
                self._held.append(book)
        except LeaseHeld as exc:
            self.release()
            raise BookLocked(exc.holder.book, exc.holder.describe() + _extra(exc)) from None
        log.info("lease_acquired", books=list(self.books), owner=self.claimant.owner)

    def renew(self) -> None:
        """Extend every lease; raises :class:`LeaseLost` when one is no longer ours."""
        now = self.clock.now()
        for book in self._held:
            self.store.renew(book, self.claimant.owner, now, self.ttl)

    def release(self) -> None:
        while self._held:
            book = self._held.pop()
            try:
                self.store.release(book, self.claimant.owner)
            except Exception as exc:  # the lease expires by itself; say so and go on
                log.warning("lease_release_failed", book=book, error=repr(exc))

    def __enter__(self) -> BookLease:
        self.acquire()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _extra(exc: LeaseHeld) -> str:
    text = str(exc)
    marker = "; its PostgreSQL"
    return text[text.index(marker) :] if marker in text else ""


__all__ = [
    "BookLease",
    "BookLocked",
    "LeaseHolder",
    "LeaseLost",
    "account_identity",
    "book_key",
]
