"""Single-flight: one process holds a book; the lock dies with its holder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.lock import BookLock, BookLocked, lock_path_for


def test_a_second_holder_is_refused_and_told_who_holds_the_book(tmp_path: Path) -> None:
    path = lock_path_for(tmp_path, "sqlite:///x.db")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys,time; from pathlib import Path; from bot.lock import BookLock;"
            f"l=BookLock(Path({str(path)!r})); l.acquire(); print('held', flush=True);"
            "time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(BookLocked, match=f"pid {holder.pid}"):
            BookLock(path).acquire()
    finally:
        holder.kill()
        holder.wait()
    with BookLock(path):  # the kernel released it with its holder
        pass


def test_paper_and_live_ledgers_have_different_locks(tmp_path: Path) -> None:
    assert lock_path_for(tmp_path, "sqlite:///a.db") != lock_path_for(tmp_path, "sqlite:///b.db")


def test_two_spellings_of_one_sqlite_ledger_from_two_lock_dirs_meet_at_one_lock(
    tmp_path: Path,
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = lock_path_for(tmp_path / "a", f"sqlite:///{tmp_path}/book.db")
    other = lock_path_for(tmp_path / "b", f"sqlite:///{tmp_path}//./b/../book.db")
    assert one == other
    with BookLock(one), pytest.raises(BookLocked):
        BookLock(other).acquire()
