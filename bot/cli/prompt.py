"""The confirmation prompt of ``hedgebot rebalance``: answered at once by Ctrl-C and Ctrl-D.

``input()`` in a worker thread cannot be interrupted: Ctrl-C waits for Enter and then unwinds
through the executor as a traceback. Here standard input is watched by the event loop itself
(``loop.add_reader``) and SIGINT is taken over for the length of the question, so a key press,
end of input (Ctrl-D) or Ctrl-C each end the wait immediately; the last two answer no.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable
from typing import IO, Any


class Prompt:
    """``await prompt(plan)`` prints the plan, asks, and returns True only on y/yes."""

    def __init__(
        self,
        describe: Callable[[Any], str],
        stdin: IO[str] | None = None,
        out: IO[str] | None = None,
    ) -> None:
        self._describe = describe
        self._stdin = stdin
        self._out = out
        self._buffer = b""
        self._answers: dict[int, bool] = {}
        self.interrupted = False

    def showed(self, plan: Any) -> bool:
        return plan is not None and id(plan) in self._answers

    def declined(self, plan: Any) -> bool:
        return self.showed(plan) and not self._answers[id(plan)]

    async def __call__(self, plan: Any) -> bool:
        out = self._out or sys.stdout
        loop = asyncio.get_running_loop()
        ctrl_c: asyncio.Future[None] = loop.create_future()
        sigint = False
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            # taken before the question shows, so a Ctrl-C at any moment of it is an answer
            loop.add_signal_handler(signal.SIGINT, _settle, ctrl_c)
            sigint = True
        try:
            print(self._describe(plan), file=out)
            print("Send this order? [y/N] ", end="", file=out, flush=True)
            line = await self._read_line(ctrl_c)
        finally:
            if sigint:
                loop.remove_signal_handler(signal.SIGINT)
        if line is None:  # Ctrl-D (end of input) or Ctrl-C
            print(file=out)
        answer = line is not None and line.strip().lower() in ("y", "yes")
        self._answers[id(plan)] = answer
        return answer

    async def _read_line(self, ctrl_c: asyncio.Future[None]) -> str | None:
        """The next line, or None at end of input or on Ctrl-C (then ``interrupted`` is set)."""
        stdin = self._stdin or sys.stdin
        try:
            fd = stdin.fileno()
        except (AttributeError, ValueError, OSError):
            return None
        while b"\n" not in self._buffer:
            chunk = await _read_chunk(fd, ctrl_c)
            if chunk is None:
                self.interrupted = True
                return None
            if not chunk:
                break
            self._buffer += chunk
        if not self._buffer:
            return None
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode(errors="replace")


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _read_chunk(fd: int, ctrl_c: asyncio.Future[None]) -> bytes | None:
    """Bytes from ``fd`` once readable; b"" at end of input; None on Ctrl-C."""
    if ctrl_c.done():
        return None
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    try:
        loop.add_reader(fd, _settle, ready)
    except (PermissionError, NotImplementedError, OSError):
        return os.read(fd, 4096)  # a regular file: reading never blocks
    try:
        await asyncio.wait({ready, ctrl_c}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        loop.remove_reader(fd)
    if ctrl_c.done():
        return None
    try:
        return os.read(fd, 4096)
    except OSError:
        return b""
