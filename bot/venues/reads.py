"""Concurrent reads that fail together: when one read of a cycle fails, its siblings stop.

``asyncio.gather`` lets the other reads run on after the first failure; they keep retrying,
even after the caller has closed the client. A ``TaskGroup`` cancels them; this helper unwraps
the group so the caller sees the one failure that started it, as ``gather`` would have shown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any


async def gather_or_cancel(*reads: Awaitable[Any]) -> list[Any]:
    """Run ``reads`` concurrently; the first failure cancels the rest and is raised alone."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_await(r)) for r in reads]
    except BaseExceptionGroup as eg:
        first = _first_failure(eg)
        raise first from None
    return [t.result() for t in tasks]


async def _await(read: Awaitable[Any]) -> Any:
    return await read


def _first_failure(group: BaseExceptionGroup[BaseException]) -> BaseException:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_failure(exc)
        if not isinstance(exc, asyncio.CancelledError):
            return exc
    return group.exceptions[0]
