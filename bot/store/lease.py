"""Book leases in SQL: the single-writer lock lives in the ledger, not beside it.

A row per book (venue account and currency) names the process that may write to it and until
when. Acquiring is one conditional ``UPDATE`` (ours already, or expired) or an ``INSERT`` that
the primary key makes exclusive, so two processes racing for a book on any database, from any
directory or host, cannot both win. On PostgreSQL a session-level ``pg_try_advisory_lock`` is
taken first as well: the server drops it the moment the holder's connection dies
(https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import Connection, Engine, delete, select, text, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import sessionmaker

from bot.store.models import BookLeaseModel
from bot.store.session import transaction

log = structlog.get_logger("hedgebot.lease")


@dataclass(frozen=True)
class LeaseHolder:
    """One lease row: who holds ``book`` and until when."""

    book: str
    owner: str
    host: str
    pid: int
    mode: str
    acquired_at: datetime
    renewed_at: datetime
    expires_at: datetime

    def describe(self) -> str:
        if self.pid == 0:  # no row: only the PostgreSQL advisory lock says it is held
            return "a process whose lease row is gone"
        return (
            f"{self.mode} pid {self.pid} on {self.host} (owner {self.owner}, since "
            f"{self.acquired_at:%Y-%m-%d %H:%M:%S}Z, lease until {self.expires_at:%H:%M:%S}Z)"
        )


class LeaseHeld(Exception):
    """Another live process holds the book."""

    def __init__(self, holder: LeaseHolder, detail: str = "") -> None:
        super().__init__(f"book {holder.book} is held by {holder.describe()}{detail}")
        self.holder = holder


class LeaseLost(Exception):
    """Our lease was taken over (it had expired) or deleted: stop writing at once."""


@dataclass(frozen=True)
class Claimant:
    """The process asking for a lease."""

    owner: str
    host: str
    pid: int
    mode: str


class LeaseStore:
    """Reads and writes of ``book_leases`` on one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._advisory: dict[str, Connection] = {}

    def acquire(self, book: str, who: Claimant, now: datetime, ttl_seconds: float) -> LeaseHolder:
        """Take ``book`` for ``who`` until ``now + ttl``; raises :class:`LeaseHeld` when a live
        lease of another owner exists (an expired one is taken over, and said so)."""
        self._advisory_lock(book)
        try:
            return self._acquire_row(book, who, now, ttl_seconds)
        except BaseException:
            self._advisory_unlock(book)
            raise

    def _acquire_row(
        self, book: str, who: Claimant, now: datetime, ttl_seconds: float
    ) -> LeaseHolder:
        expires = now + timedelta(seconds=ttl_seconds)
        before = self.holder(book)
        values = {
            "owner": who.owner,
            "host": who.host,
            "pid": who.pid,
            "mode": who.mode,
            "acquired_at": now,
            "renewed_at": now,
            "expires_at": expires,
        }
        with transaction(self._sessions) as session:
            taken = session.execute(
                update(BookLeaseModel)
                .where(BookLeaseModel.book == book)
                .where((BookLeaseModel.owner == who.owner) | (BookLeaseModel.expires_at <= now))
                .values(**values)
            )
            won = _rowcount(taken) == 1
        if not won:
            try:
                with transaction(self._sessions) as session:
                    session.add(BookLeaseModel(book=book, **values))
            except sa_exc.IntegrityError:
                current = self.holder(book)
                if current is None:  # released between our two statements: try once more
                    return self._acquire_row(book, who, now, ttl_seconds)
                raise LeaseHeld(current) from None
        if before is not None and before.owner != who.owner:
            log.warning(
                "lease_taken_over", book=book, previous=before.describe(), expired=before.expires_at
            )
        held = self.holder(book)
        if held is None or held.owner != who.owner:
            raise LeaseLost(f"book {book}: lease vanished while being acquired")
        return held

    def renew(self, book: str, owner: str, now: datetime, ttl_seconds: float) -> LeaseHolder:
        """Push our lease's expiry to ``now + ttl``; :class:`LeaseLost` when it is not ours."""
        with transaction(self._sessions) as session:
            done = session.execute(
                update(BookLeaseModel)
                .where(BookLeaseModel.book == book, BookLeaseModel.owner == owner)
                .values(renewed_at=now, expires_at=now + timedelta(seconds=ttl_seconds))
            )
            renewed = _rowcount(done) == 1
        if not renewed:
            current = self.holder(book)
            raise LeaseLost(
                f"book {book}: our lease is gone"
                + (f", now held by {current.describe()}" if current else "")
            )
        held = self.holder(book)
        assert held is not None
        return held

    def release(self, book: str, owner: str) -> None:
        """Drop our lease (another owner's row is left alone)."""
        try:
            with transaction(self._sessions) as session:
                session.execute(
                    delete(BookLeaseModel).where(
                        BookLeaseModel.book == book, BookLeaseModel.owner == owner
                    )
                )
        finally:
            self._advisory_unlock(book)

    def holder(self, book: str) -> LeaseHolder | None:
        with self._sessions() as session:
            row = session.get(BookLeaseModel, book)
            return None if row is None else _holder(row)

    def holders(self) -> list[LeaseHolder]:
        """Every lease row, live or expired, by book."""
        with self._sessions() as session:
            rows = session.scalars(select(BookLeaseModel).order_by(BookLeaseModel.book))
            return [_holder(r) for r in rows]

    # -- PostgreSQL's advisory lock, a second layer that dies with the holder's connection ------

    def _advisory_lock(self, book: str) -> None:
        if self.engine.dialect.name != "postgresql" or book in self._advisory:
            return
        conn = self.engine.connect()
        try:
            got = conn.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": advisory_key(book)}
            ).scalar()
            conn.commit()
        except BaseException:
            conn.close()
            raise
        if not got:
            conn.close()
            current = self.holder(book)
            if current is None:
                current = LeaseHolder(book, "?", "?", 0, "?", _EPOCH, _EPOCH, _EPOCH)
            raise LeaseHeld(current, "; its PostgreSQL advisory lock is held")
        self._advisory[book] = conn

    def _advisory_unlock(self, book: str) -> None:
        conn = self._advisory.pop(book, None)
        if conn is None:
            return
        try:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": advisory_key(book)})
            conn.commit()
        finally:
            conn.close()


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def advisory_key(book: str) -> int:
    """A signed 64-bit key for ``pg_try_advisory_lock`` from the book's name."""
    return int.from_bytes(hashlib.sha256(book.encode()).digest()[:8], "big", signed=True)


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _holder(r: BookLeaseModel) -> LeaseHolder:
    return LeaseHolder(
        book=r.book,
        owner=r.owner,
        host=r.host,
        pid=r.pid,
        mode=r.mode,
        acquired_at=r.acquired_at,
        renewed_at=r.renewed_at,
        expires_at=r.expires_at,
    )


__all__ = ["Claimant", "LeaseHeld", "LeaseHolder", "LeaseLost", "LeaseStore", "advisory_key"]
