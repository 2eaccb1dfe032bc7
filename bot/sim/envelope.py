"""Deribit's JSON-RPC envelope and the JSON encoding every answer and push goes through."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import structlog

from bot.sim.rpc_errors import RpcError

log = structlog.get_logger(__name__)


def dumps(payload: Any) -> str:
    """JSON without NaN or infinity: a non-finite number is a server bug, never sent."""
    return json.dumps(payload, allow_nan=False, separators=(",", ":"))


@dataclass(frozen=True)
class Outcome:
    """How one request ends: a result, an error, a 5xx, or no reply at all."""

    result: Any = None
    error: RpcError | None = None
    unavailable: bool = False
    drop: bool = False
    us_in: int = 0
    us_out: int = 0

    def envelope(self, request_id: Any = None) -> dict[str, Any]:
        body: dict[str, Any] = {"jsonrpc": "2.0"}
        if request_id is not None:
            body["id"] = request_id
        if self.error is not None:
            body["error"] = self.error.body()
        else:
            body["result"] = self.result
        body.update(
            usIn=self.us_in, usOut=self.us_out, usDiff=self.us_out - self.us_in, testnet=True
        )
        return body

    def text(self, request_id: Any = None) -> str:
        """The envelope as JSON; a result that cannot be sent (NaN) becomes error 11094."""
        try:
            return dumps(self.envelope(request_id))
        except ValueError as exc:
            log.error("sim_unsendable_result", error=str(exc))
            failed = Outcome(error=RpcError.of(11094, reason="result not representable"))
            return dumps(failed.envelope(request_id))
