"""Which file a SQLite ledger is: a daemon notices when its ledger is deleted or replaced.

SQLite keeps writing to a file that was unlinked under it (the open descriptor still points
at the old inode), so a deleted or swapped ledger would go on recording into nothing. The
device and inode seen at start are compared with the path's current ones.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine


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


__all__ = ["LedgerFile", "sqlite_path"]
