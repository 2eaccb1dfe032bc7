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
    """One lock per ledger: paper and live books can run side by side."""
    digest = hashlib.sha256(database_url.encode()).hexdigest()[:12]
    return Path(lock_dir) / f".hedgebot-{digest}.lock"


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
