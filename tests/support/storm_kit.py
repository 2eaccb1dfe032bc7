"""The kill storm's driver: ``hedgebot sim`` and the daemon as separate processes on lockstep
time, the daemon SIGKILLed at seeded moments (many right around an order's send, ack or fill),
the venue killed and restarted, over one simulated day.

The moments are events in the daemon's JSON log: the driver reads it as it is written and
kills on the n-th event of a drawn kind, after a drawn delay of a few milliseconds, so a kill
lands between a request and its answer or between an answer and its record. Which event,
which n and which delay come from the seed; the exact instruction the kill interrupts depends
on the machine, which is the point. Simulated time moves only when the daemon sleeps, so the
day costs the cycles it has, not 24 hours.

A killed daemon's lease stays in the ledger until it expires on the wall clock; each restarted
daemon's lease clock stands ``lease_seconds + 1`` further ahead (injected, see
:mod:`tests.support.forkserver`), so it finds the dead holder's lease expired and takes it
over, as it would after waiting, without the wait.
"""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from tests.support.e2e_kit import KEY, SECRET, base_env
from tests.support.procs import POLL_S, Child, ForkServer, HangGuard

START = datetime.fromisoformat("2026-01-05T00:00:00+00:00")
LEASE_S = 5.0
UNKNOWN_GRACE_S = 60.0  # execution.unknown_grace_seconds, the default
EXIT_RECONCILE = 5  # bot.cli.common: start-up reconciliation refused
MAX_REFUSALS = 5  # refused starts in a row before the storm gives up
GUARD_S = 120.0  # hang guard per process step, wall seconds; never reached by a healthy run
# Event kinds a kill is timed on, with their chances: start-up (lease taken, venue read,
# book reconciled), around an order (just before the request, after the answer, after the fill
# is recorded), and at the end of a cycle ("cycle_end": a cycle_done or rebalanced event).
KILL_EVENTS = {
    "lease_acquired": 0.08,
    "venue_facts": 0.04,
    "reconciled": 0.08,
    "order_sending": 0.3,
    "order_placed": 0.2,
    "fill_recorded": 0.2,
    "cycle_end": 0.1,
}
STARTUP = ("lease_acquired", "venue_facts", "reconciled")
CYCLE_ENDS = ("cycle_done", "rebalanced")


@dataclass(frozen=True)
class StormPlan:
    seed: int
    hours: float = 24.0
    kills: int = 50
    sim_restarts: int = 10
    check_seconds: int = 900


@dataclass(frozen=True)
class Blow:
    """One seeded kill: on the ``nth`` ``event`` of the daemon's log, ``delay_s`` later, kill
    the daemon, the venue, or both; at the latest at the first cycle that ends at or after
    ``by`` (simulated time), so the day holds every blow of the schedule."""

    event: str
    nth: int
    delay_s: float
    target: str  # "daemon" | "sim" | "both"
    by: datetime


@dataclass
class StormFigures:
    kills: int = 0
    sim_restarts: int = 0
    daemons: int = 0
    kills_by_event: dict[str, int] = field(default_factory=dict)
    refused_starts: int = 0
    sim_hours: float = 0.0
    wall_s: float = 0.0


def blows(plan: StormPlan) -> list[Blow]:
    """The seeded schedule: ``kills`` daemon kills (two spare) and ``sim_restarts`` venue
    restarts, two in five of them with the daemon riding through, the rest with it killed too;
    the blows' latest moments spread over the day's first 95%."""
    rng = np.random.default_rng(plan.seed)
    names = list(KILL_EVENTS)
    chances = np.array(list(KILL_EVENTS.values()))
    venue_only = plan.sim_restarts * 2 // 5
    total = plan.kills + venue_only + 2
    venue_at = rng.choice(total, size=plan.sim_restarts, replace=False).tolist()
    targets = {i: "sim" if n < venue_only else "both" for n, i in enumerate(venue_at)}
    slot = timedelta(hours=plan.hours) * 0.95 / total
    out = []
    for i in range(total):
        event = str(rng.choice(names, p=chances / chances.sum()))
        nth = 1 if event in STARTUP else int(rng.integers(1, 3))
        if event == "cycle_end":
            nth += 1  # the first cycle is at start-up's instant; the second moves the day
        delay = float(rng.uniform(0.0, 0.02))
        out.append(Blow(event, nth, delay, targets.get(i, "daemon"), START + (i + 1) * slot))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def storm_env(home: Path, port: int, db_url: str, plan: StormPlan) -> dict[str, str]:
    env = base_env(home)
    env.update(
        {
            "HEDGEBOT__VENUE__KIND": "sim",
            "HEDGEBOT__VENUE__SIM_URL": f"http://127.0.0.1:{port}",
            "HEDGEBOT__VENUE__API_KEY": KEY,
            "HEDGEBOT__VENUE__API_SECRET": SECRET,
            "HEDGEBOT__DATABASE__URL": db_url,
            "HEDGEBOT__MARKET__SEED": str(plan.seed),
            "HEDGEBOT__POLICY__CHECK_SECONDS": str(plan.check_seconds),
            "HEDGEBOT__DAEMON__HEARTBEAT_SECONDS": "86400",
            "HEDGEBOT__DAEMON__LEASE_SECONDS": str(LEASE_S),
            "HEDGEBOT__DAEMON__STOP_GRACE_SECONDS": "5",
        }
    )
    return env


class Storm:
    """Runs one plan in ``home`` against the ledger at ``db_url``; see the module docstring."""

    def __init__(self, home: Path, db_url: str, plan: StormPlan) -> None:
        self.home = home
        self.plan = plan
        self.port = free_port()
        self.sim_db = f"sqlite:///{home / 'sim.db'}"
        self.env = storm_env(home, self.port, db_url, plan)
        self.end = START + timedelta(hours=plan.hours)
        self.figures = StormFigures()
        self.fs = ForkServer(home)
        self.sim: Child | None = None

    def close(self) -> None:
        self.fs.close()

    # --- the venue ------------------------------------------------------------------------

    def start_sim(self) -> None:
        argv = ["--config", os.devnull, "sim", "--port", str(self.port), "--db", self.sim_db]
        self.sim = self.fs.spawn(f"sim-{self.figures.sim_restarts}", argv, self.env)
        deadline = time.monotonic() + GUARD_S
        while "Deribit API on" not in _text(self.sim.out):
            if not self.sim.alive() or time.monotonic() > deadline:
                raise HangGuard(f"hedgebot sim did not start: {_text(self.sim.err)[-2000:]}")
            time.sleep(POLL_S)

    def restart_sim(self) -> None:
        assert self.sim is not None
        self.sim.kill()
        self.figures.sim_restarts += 1
        self.start_sim()

    def stop_sim(self) -> None:
        if self.sim is not None:
            self.sim.terminate()

    def sim_now(self) -> datetime:
        return self._time("/sim/v1/time", None)

    def advance(self, seconds: float) -> datetime:
        """Move the venue's clock: time that passes while the daemon is down."""
        target = self.sim_now() + timedelta(seconds=seconds)
        us = (target - _EPOCH) // timedelta(microseconds=1)
        return self._time("/sim/v1/advance", json.dumps({"to_us": us}).encode())

    def _time(self, path: str, body: bytes | None) -> datetime:
        url = f"http://127.0.0.1:{self.port}{path}"
        with urllib.request.urlopen(url, data=body, timeout=30) as answer:
            us = int(json.loads(answer.read())["now_us"])
        return _EPOCH + timedelta(microseconds=us)

    # --- the daemon -----------------------------------------------------------------------

    def start_daemon(self) -> Child:
        left = (self.end - self.sim_now()).total_seconds()
        n = self.figures.daemons
        self.figures.daemons += 1
        return self.fs.spawn(
            f"daemon-{n}",
            ["--duration", f"{max(left, 1.0):.6f}"],
            self.env,
            lease_offset_s=n * (LEASE_S + 1.0),
        )

    def strike(self, daemon: Child, blow: Blow) -> bool:
        """Wait for ``blow``'s moment and strike; False when the daemon ended first."""
        seen = 0
        deadline = time.monotonic() + GUARD_S
        while True:
            lines = daemon.new_lines()
            for line in lines:
                event = _event(line)
                if event in CYCLE_ENDS:
                    event = "cycle_end"
                seen += event == blow.event
                late = event == "cycle_end" and self.sim_now() >= blow.by
                if seen >= blow.nth or late:
                    time.sleep(blow.delay_s)
                    self._hit(daemon, blow, blow.event if seen >= blow.nth else "cycle_end")
                    return True
            if not lines and not daemon.alive():
                return False
            if time.monotonic() > deadline:
                raise HangGuard(f"daemon pid {daemon.pid} made no progress: {blow}")
            time.sleep(POLL_S)

    def _hit(self, daemon: Child, blow: Blow, moment: str) -> None:
        if blow.target in ("daemon", "both"):
            daemon.kill()
            self.figures.kills += 1
            by = self.figures.kills_by_event
            by[moment] = by.get(moment, 0) + 1
        if blow.target in ("sim", "both"):
            self.restart_sim()

    def restart_refused(self, daemon: Child) -> Child | None:
        """As a supervisor restarts a daemon whose start-up reconciliation refused (exit 5):
        a new one, after the minute the refusal asks for when an order's outcome is unknown
        (on lockstep time only the driver can let it pass); None for any other exit."""
        daemon.wait_gone(GUARD_S)
        if daemon.exit_code() != EXIT_RECONCILE:
            return None
        self.figures.refused_starts += 1
        if "unknown outcome" in _text(daemon.err):
            self.advance(UNKNOWN_GRACE_S + 1)
        return self.start_daemon()

    def settle(self) -> None:
        """The next start after the day, as an operator's would be: its start-up resolves, from
        venue evidence, an order the day's last daemon left of unknown outcome (sent just before
        the day ended); the day's record is compared after it."""
        final = self.start_daemon()
        for _ in range(MAX_REFUSALS + 1):
            final.wait_gone(GUARD_S * 5)
            if final.exit_code() == 0:
                return
            again = self.restart_refused(final)
            if again is None:
                break
            final = again
        raise AssertionError(
            f"the settling start after the day did not end cleanly: daemon {final.pid} exited"
            f" {final.exit_code()}: {_text(final.err)[-3000:]}"
        )

    def run(self) -> StormFigures:
        """The whole day: returns its figures; raises on a daemon that failed."""
        t0 = time.monotonic()
        self.start_sim()
        code = self.fs.run("db-upgrade", ["--config", os.devnull, "db", "upgrade"], self.env)
        assert code == 0, _text(self.home / "db-upgrade.err")[-2000:]
        schedule = blows(self.plan)
        daemon: Child | None = self.start_daemon()
        refusals = 0
        while daemon is not None and refusals <= MAX_REFUSALS:
            if schedule and self.sim_now() >= self.end:
                schedule.clear()  # the day is over: no blow outside it
            if not schedule:
                daemon.wait_gone(GUARD_S * 5)
            elif self.strike(daemon, schedule[0]):
                schedule.pop(0)
                refusals = 0
                if not daemon.alive():
                    daemon = self.start_daemon()
                continue
            again = self.restart_refused(daemon)
            if again is None:
                break
            daemon, refusals = again, refusals + 1
        assert daemon is not None
        if refusals > MAX_REFUSALS:
            daemon.wait_gone(GUARD_S * 5)
            raise AssertionError(
                f"{refusals} refused starts in a row, the last (daemon {daemon.pid}, exit"
                f" {daemon.exit_code()}): {_text(daemon.err)[-3000:]}"
            )
        last = daemon.exit_code()
        assert last == 0, f"daemon {daemon.pid} exited {last}: {_text(daemon.err)[-3000:]}"
        self.settle()
        self.figures.sim_hours = (self.sim_now() - START).total_seconds() / 3600
        self.stop_sim()
        self.figures.wall_s = time.monotonic() - t0
        return self.figures


_EPOCH = datetime(1970, 1, 1, tzinfo=START.tzinfo)


def _event(line: str) -> str | None:
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line).get("event")
    except ValueError:
        return None
    return event if isinstance(event, str) else None


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""
