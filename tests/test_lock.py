"""One writer per book: the lease lives in the ledger, so every spelling, directory and host
meets it; a dead holder's lease is taken over only once expired. On SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.lock import BookLease, BookLocked, LeaseLost, account_identity, book_key
from bot.store.db import open_ledger
from bot.store.lease import LeaseStore
from tests.support.books import NOW
from tests.support.harness import settings

BOOK = "paper BTC"
ROOT = Path(__file__).resolve().parents[1]


def lease(
    url: str, clock: FakeClock, *, host: str = "host-a", pid: int = 1, ttl: float = 60
) -> BookLease:
    return BookLease(
        LeaseStore(open_ledger(url).engine), (BOOK,), clock, ttl, "daemon", host=host, pid=pid
    )


@pytest.fixture
def url(db_url: str) -> str:
    open_ledger(db_url, create=True).close()
    return db_url


def test_a_second_holder_is_refused_and_told_who_holds_the_book(url: str) -> None:
    clock = FakeClock(NOW)
    with (
        lease(url, clock, host="host-a", pid=111),
        pytest.raises(BookLocked, match="pid 111 on host-a"),
    ):
        lease(url, clock, host="host-b", pid=222).acquire()


def test_a_released_book_is_free_at_once(url: str) -> None:
    clock = FakeClock(NOW)
    with lease(url, clock, pid=1):
        pass
    with lease(url, clock, pid=2):
        holder = LeaseStore(open_ledger(url).engine).holder(BOOK)
        assert holder is not None
        assert holder.pid == 2


HOLD_AND_HANG = """
import sys, time
from datetime import datetime
from bot.clock import FakeClock
from bot.lock import BookLease
from bot.store.db import open_ledger
from bot.store.lease import LeaseStore
clock = FakeClock(datetime.fromisoformat(sys.argv[2]))
BookLease(LeaseStore(open_ledger(sys.argv[1]).engine), ("paper BTC",), clock, 60, "daemon",
          host="crashed").acquire()
print("held", flush=True)
time.sleep(60)
"""


def held_then_killed(url: str) -> None:
    """Another process takes the book at NOW and is SIGKILLed: no release, no renewal."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_AND_HANG, url, NOW.isoformat()],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert holder.stdout is not None
        lines = iter(holder.stdout.readline, "")
        assert any(line.strip() == "held" for line in lines)
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holders_lease_is_taken_over_only_after_it_expires(url: str) -> None:
    held_then_killed(url)
    clock = FakeClock(NOW)
    clock.advance(59)
    with pytest.raises(BookLocked, match="crashed"):
        lease(url, clock, pid=8).acquire()
    clock.advance(2)
    with lease(url, clock, pid=8):
        holder_row = LeaseStore(open_ledger(url).engine).holder(BOOK)
        assert holder_row is not None
        assert holder_row.pid == 8


def test_a_stalled_holder_whose_lease_was_taken_over_learns_it_on_renewal(tmp_path: Path) -> None:
    # SQLite only: on PostgreSQL a live holder's advisory lock keeps the book from takeover.
    url = f"sqlite:///{tmp_path}/x.db"
    open_ledger(url, create=True).close()
    clock = FakeClock(NOW)
    stalled = lease(url, clock, host="stalled", pid=7)
    stalled.acquire()
    clock.advance(61)
    with lease(url, clock, pid=8), pytest.raises(LeaseLost, match="pid 8"):
        stalled.renew()


def test_renewing_keeps_the_book_past_the_first_expiry(url: str) -> None:
    clock = FakeClock(NOW)
    with lease(url, clock, pid=1) as held:
        for _ in range(5):
            clock.advance(30)
            held.renew()
        with pytest.raises(BookLocked):
            lease(url, clock, pid=2).acquire()


def test_a_refused_claim_for_several_books_holds_none_of_them(url: str) -> None:
    clock = FakeClock(NOW)
    store = LeaseStore(open_ledger(url).engine)
    with BookLease(store, ("paper ETH",), clock, 60, "daemon", pid=1):
        both = BookLease(store, ("paper BTC", "paper ETH"), clock, 60, "oneshot", pid=2)
        with pytest.raises(BookLocked, match="paper ETH"):
            both.acquire()
        assert store.holder("paper BTC") is None


def test_sqlite_spellings_of_one_file_meet_the_same_lease(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    plain = f"sqlite:///{tmp_path}/x.db"
    open_ledger(plain, create=True).close()
    clock = FakeClock(NOW)
    with lease(plain, clock, pid=1):
        for other in (f"sqlite:///{tmp_path}/./x.db", f"sqlite:///{tmp_path}/sub/../x.db"):
            with pytest.raises(BookLocked):
                lease(other, clock, pid=2).acquire()


def test_another_process_from_another_directory_meets_the_lease(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    open_ledger(f"sqlite:///{tmp_path}/x.db", create=True).close()
    clock = FakeClock(NOW)
    code = (
        "from bot.clock import SystemClock; from bot.lock import BookLease, BookLocked;"
        "from bot.store.db import open_ledger; from bot.store.lease import LeaseStore\n"
        "l = BookLease(LeaseStore(open_ledger('sqlite:///../x.db').engine), ('paper BTC',),"
        " SystemClock(), 60, 'oneshot')\n"
        "try:\n    l.acquire()\nexcept BookLocked as e:\n    print(e)\n"
    )
    with lease(f"sqlite:///{tmp_path}/x.db", clock, host="host-a", pid=31):
        out = subprocess.run(
            [sys.executable, "-c", code],
            cwd=tmp_path / "elsewhere",
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    assert "pid 31 on host-a" in out.stdout, out.stderr


def test_the_book_is_the_venue_account_and_currency_without_any_secret(tmp_path: Path) -> None:
    paper = settings(tmp_path)
    assert book_key(account_identity(paper, paper=True), "btc") == "paper BTC"
    sim = settings(tmp_path, venue={"sim_url": "HTTP://127.0.0.1:8642/"})
    assert account_identity(sim, paper=False) == "sim http://127.0.0.1:8642"
    live = settings(tmp_path, venue={"kind": "deribit", "api_key": "client-id-123"})
    ident = account_identity(live, paper=False)
    assert ident.startswith("deribit testnet key ")
    assert "client-id-123" not in ident
    other = settings(tmp_path, venue={"kind": "deribit", "api_key": "another-subaccount"})
    assert account_identity(other, paper=False) != ident


def test_status_of_the_leases_names_holder_host_pid_and_expiry(url: str) -> None:
    clock = FakeClock(NOW)
    with lease(url, clock, host="host-z", pid=99):
        (holder,) = LeaseStore(open_ledger(url).engine).holders()
    assert (holder.book, holder.host, holder.pid, holder.mode) == (BOOK, "host-z", 99, "daemon")
    assert (holder.expires_at - holder.acquired_at).total_seconds() == 60


def test_claimants_racing_for_a_free_or_expired_book_leave_exactly_one_holder(url: str) -> None:
    clock = FakeClock(NOW)
    for round_ in ("free", "expired"):
        if round_ == "expired":
            held_then_killed(url)
            clock.advance(120)
        claimants = [lease(url, clock, host=f"h{i}", pid=100 + i) for i in range(6)]
        start = threading.Barrier(len(claimants))

        def claim(c: BookLease, start: threading.Barrier = start) -> bool:
            start.wait(timeout=30)
            try:
                c.acquire()
            except BookLocked:
                return False
            return True

        with ThreadPoolExecutor(len(claimants)) as pool:
            won = list(pool.map(claim, claimants))
        assert won.count(True) == 1, round_
        winner = claimants[won.index(True)]
        holder = LeaseStore(open_ledger(url).engine).holder(BOOK)
        assert holder is not None
        assert holder.pid == winner.claimant.pid
        winner.release()
