"""One transaction per write: the unit every ledger and paper-store method is built from."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker

from bot.domain import DataError


@contextmanager
def transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A session in one transaction, committed on success; a value the schema's types refuse
    (NaN, naive datetime) surfaces as the ``DataError`` it is, not wrapped by SQLAlchemy."""
    try:
        with sessions.begin() as session:
            yield session
    except sa_exc.StatementError as exc:
        if isinstance(exc.orig, DataError):
            raise exc.orig from exc
        raise
