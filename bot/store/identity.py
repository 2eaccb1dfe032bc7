"""Which ledger this is: its identity (stamped into order labels) and, for SQLite, its file.

Every ledger names itself once, the first time a process asks (:func:`ledger_id`); the name is
kept in the ledger and never changes, so two ledgers trading on one venue account can tell
their orders apart.

A daemon notices when its SQLite ledger is deleted or replaced.

SQLite keeps writing to a file that was unlinked under it (the open descriptor still points
at the old inode), so a deleted or swapped ledger would go on recording into nothing. The
device and inode seen at start are compared with the path's current ones.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import sessionmaker

from bot.store.models import LedgerIdentityModel
from bot.store.session import transaction


def sqlite_path(engine: Engine) -> Path | None:
    """The absolute path of a file-backed SQLite database; None for anything else."""
    url = engine.url
    if engine.dialect.name != "sqlite" or url.query.get("mode") == "memory":
        return None
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        return None
    return Path(url.database).resolve()


class LedgerFile:
    """The ledger's file as it was when watching began."""

    def __init__(self, engine: Engine) -> None:
        self.path = sqlite_path(engine)
        self._identity = _identity(self.path) if self.path is not None else None

    def problem(self) -> str | None:
        """None while the path still names the same file; otherwise what happened to it."""
        if self.path is None or self._identity is None:
            return None
        now = _identity(self.path)
        if now is None:
            return f"the ledger file {self.path} was deleted"
        if now != self._identity:
            return f"the ledger file {self.path} was replaced by another file"
        return None


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


def ledger_id(engine: Engine, candidate: str, now: datetime, *, record: bool = True) -> str:
    """This ledger's id: the one recorded, or ``candidate`` recorded now when there is none
    (two processes naming a new ledger at once: the first insert wins, both read it). With
    ``record`` false (a command that only reads) an unnamed ledger stays unnamed."""
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions() as session:
        row = session.get(LedgerIdentityModel, 1)
        if row is not None:
            return row.ledger_id
    if not record:
        return candidate
    try:
        with transaction(sessions) as session:
            session.add(LedgerIdentityModel(id=1, ledger_id=candidate, created_at=now))
    except sa_exc.IntegrityError:
        pass
    with sessions() as session:
        row = session.get(LedgerIdentityModel, 1)
        if row is None:  # pragma: no cover - the insert above or another one stored it
            raise RuntimeError("the ledger's identity could not be recorded")
        return row.ledger_id


__all__ = ["LedgerFile", "ledger_id", "sqlite_path"]
