"""Single-flight lock: one process holds a book at a time.

The daemon holds it for its life; a one-shot ``rebalance`` that finds it held says so and sends
nothing. An advisory ``flock`` is released by the kernel when the holder dies, so a crashed daemon
never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path
from types import TracebackType


class BookLocked(Exception):
    """Another process holds the book."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"another hedgebot process ({holder}) holds the book (lock {path})")
        self.path = path
        self.holder = holder


def lock_path_for(lock_dir: str | Path, database_url: str) -> Path:
    """One lock per ledger: paper and live books can run side by side.

    A SQLite ledger's lock sits beside its file and is named by the file's real path, so two
    processes that spell the URL differently (``//./``, a symlink, another working directory
    or ``lock_dir``) still meet at one lock; other databases are keyed on the URL in
    ``lock_dir``.
    """
    file = _sqlite_file(database_url)
    if file is not None:
        real = os.path.realpath(file)
        digest = hashlib.sha256(real.encode()).hexdigest()[:12]
        return Path(real).parent / f".hedgebot-{digest}.lock"
    digest = hashlib.sha256(database_url.encode()).hexdigest()[:12]
    return Path(lock_dir) / f".hedgebot-{digest}.lock"


def _sqlite_file(database_url: str) -> str | None:
    """The file of a ``sqlite[+driver]:///path`` URL, or None (another database, in memory)."""
    scheme, sep, rest = database_url.partition("://")
    if not sep or scheme.split("+")[0].lower() != "sqlite" or not rest.startswith("/"):
        return None
    path = rest[1:].split("?")[0]
    return path if path and path != ":memory:" else None


class BookLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown pid"
            os.close(fd)
            raise BookLocked(self.path, holder) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> BookLock:
        self.acquire()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
