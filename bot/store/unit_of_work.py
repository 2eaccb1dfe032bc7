"""One transaction for the writes of one cycle: the ledger's unit of work.

Outside a batch every ledger write is its own transaction (see :mod:`bot.store.session`).
Inside ``with ledger.batch():`` writes and reads share one session; with
``batch(from_greeks=True)`` (a cycle) the batch is *armed* first: writes stay their own
transactions until one that opens it (the greeks snapshot, written once the book has been
read). In the batch, writes are flushed at the call (so a refused value or a duplicate
surfaces where it was written) and committed together when the block ends, one commit
instead of one per write. A flushed write holds SQLite's write lock until the commit,
so a batch must not be open across a venue call that may make another connection write (the
paper venue's store): a cycle's writes before its book read (resolving earlier orders,
cancelling strays) therefore stay outside it, and between the greeks snapshot and the first
order a cycle only decides. Rules:

- nested batches join the outermost one (only it commits);
- a *durable* write (an order recorded before it is sent) commits the batch at once, so the
  record is on disk before the request leaves; from there on the block's writes are their own
  transactions again, as outside a batch: no write lock is held while the executor waits on
  the venue (a SQLite writer on another connection, such as the paper venue's store, would
  otherwise wait for it);
- an exception that is not the ledger's own (a venue error, a bug) still commits the writes
  that succeeded before it, as one-transaction-per-write did, and is re-raised; a write that
  fails at the database leaves the session needing a rollback, so the batch rolls back (the
  cycle's writes land together or not at all) and the error is re-raised;
- reads inside the batch go through its session, so they see its uncommitted writes.

The batch lives in a ``ContextVar``: asyncio tasks started before it (another cycle, the
monitor) do not join it; tasks started inside it do.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker

from bot.domain import DataError
from bot.store.session import transaction


@dataclass
class _Batch:
    session: Session
    # armed: writes are their own transactions until one that opens the batch; open: writes
    # join it; released: after a durable write, writes are their own transactions again.
    state: str = "open"


class UnitOfWork:
    """Sessions for one ledger: per-write transactions, or the current batch's session."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._batch: ContextVar[_Batch | None] = ContextVar(f"ledger_batch_{id(self)}")

    @property
    def active(self) -> bool:
        return self._batch.get(None) is not None

    def _open_session(self, *, opens: bool = False) -> Session | None:
        batch = self._batch.get(None)
        if batch is None:
            return None
        if opens and batch.state == "armed":
            batch.state = "open"
        return batch.session if batch.state == "open" else None

    @contextmanager
    def batch(self, *, from_greeks: bool = False) -> Iterator[None]:
        if self.active:
            yield
            return
        session = self._sessions()
        token = self._batch.set(_Batch(session, "armed" if from_greeks else "open"))
        try:
            yield
        except BaseException:
            _finish_after_error(session)
            raise
        else:
            _commit(session)
        finally:
            self._batch.reset(token)
            session.close()

    @contextmanager
    def write(self, *, durable: bool = False, opens: bool = False) -> Iterator[Session]:
        """A session to write in: the batch's (flushed on return; committed now when
        ``durable``), else a transaction of its own. A write that ``opens`` starts collecting
        an armed batch."""
        session = self._open_session(opens=opens)
        if session is None:
            with transaction(self._sessions) as own:
                yield own
            return
        try:
            yield session
            _flush(session)
        except BaseException:
            if not _usable(session):
                session.rollback()  # the database refused a write: the batch is lost
            raise
        if durable:
            _commit(session)
            batch = self._batch.get(None)
            if batch is not None:
                batch.state = "released"

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session to read in: the batch's (it sees the batch's writes), else a new one."""
        session = self._open_session()
        if session is not None:
            yield session
            return
        with self._sessions() as own:
            yield own


def _flush(session: Session) -> None:
    try:
        session.flush()
    except sa_exc.StatementError as exc:
        if isinstance(exc.orig, DataError):
            raise exc.orig from exc
        raise


def _commit(session: Session) -> None:
    try:
        session.commit()
    except sa_exc.StatementError as exc:
        session.rollback()
        if isinstance(exc.orig, DataError):
            raise exc.orig from exc
        raise


def _usable(session: Session) -> bool:
    transaction = session.get_transaction()
    return transaction is None or transaction.is_active


def _finish_after_error(session: Session) -> None:
    """Keep what was written before an error, unless the database refused a write (then the
    session can only roll back)."""
    if not _usable(session):
        session.rollback()
        return
    try:
        session.commit()
    except sa_exc.SQLAlchemyError:
        session.rollback()
