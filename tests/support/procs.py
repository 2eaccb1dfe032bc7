"""Processes forked by :mod:`tests.support.forkserver`: spawn, watch a log, kill, wait.

Every wait is bounded by a hang guard of wall seconds; nothing depends on how fast the
machine is, only on what the processes write.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
POLL_S = 0.002


class HangGuard(AssertionError):
    """A process did not do what it was waited for within a generous bound."""


@dataclass
class Child:
    """One forked process, its log files and exit-code file."""

    pid: int
    out: Path
    err: Path
    code_file: Path
    _read: int = 0
    _partial: str = field(default="", repr=False)

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def kill(self) -> None:
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self.wait_gone()

    def terminate(self, guard_s: float = 30.0) -> None:
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
        try:
            self.wait_gone(guard_s)
        except HangGuard:
            self.kill()
            raise

    def wait_gone(self, guard_s: float = 30.0) -> None:
        deadline = time.monotonic() + guard_s
        while self.alive():
            if time.monotonic() > deadline:
                raise HangGuard(f"pid {self.pid} still alive after {guard_s} s")
            time.sleep(POLL_S)

    def exit_code(self) -> int | None:
        """What the child wrote on its way out; None while it runs or when it was killed."""
        try:
            text = self.code_file.read_text()
        except FileNotFoundError:
            return None
        return int(text) if text else None

    def new_lines(self) -> list[str]:
        """Complete lines of stderr written since the last call."""
        try:
            with self.err.open("rb") as f:
                f.seek(self._read)
                chunk = f.read()
        except FileNotFoundError:  # the child has not opened it yet
            return []
        self._read += len(chunk)
        text = self._partial + chunk.decode(errors="replace")
        *lines, self._partial = text.split("\n")
        return lines

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.err.read_text().splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out


class ForkServer:
    """``python -m tests.support.forkserver`` and the children it forks for us."""

    def __init__(self, home: Path) -> None:
        self.home = home
        env = dict(os.environ)
        env.update({"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.forkserver"],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.children: list[Child] = []

    def spawn(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        *,
        lease_offset_s: float | None = None,
    ) -> Child:
        out, err, code = (self.home / f"{name}.{ext}" for ext in ("out", "err", "code"))
        request = {
            "argv": argv,
            "env": env,
            "cwd": str(self.home),
            "out": str(out),
            "err": str(err),
            "code": str(code),
            "lease_offset_s": lease_offset_s,
        }
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        answer = self._proc.stdout.readline()
        if not answer:
            raise HangGuard("the fork server died")
        child = Child(int(json.loads(answer)["pid"]), out, err, code)
        self.children.append(child)
        return child

    def run(self, name: str, argv: list[str], env: dict[str, str], guard_s: float = 120) -> int:
        """A command to its end; its exit code."""
        child = self.spawn(name, argv, env)
        child.wait_gone(guard_s)
        code = child.exit_code()
        assert code is not None, child.err.read_text()[-2000:]
        return code

    def close(self) -> None:
        for child in self.children:
            if child.alive():
                os.kill(child.pid, signal.SIGKILL)
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
