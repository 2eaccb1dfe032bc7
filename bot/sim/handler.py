"""The shape every JSON-RPC method handler has, shared by the router and the method groups."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.sim.params import Params


@dataclass(frozen=True)
class CallInfo:
    """Per-call facts from the transport and the fault plan."""

    partial_fill: bool = False


Handler = Callable[[Params, CallInfo], Awaitable[Any]]
"""Answers one method: the ``result`` member, or raises :class:`~bot.sim.rpc_errors.RpcError`."""
