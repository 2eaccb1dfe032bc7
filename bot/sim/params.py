"""Parameters of one JSON-RPC call, typed on read.

Over HTTP every value arrives as a query-string text (ccxt writes booleans as ``true``/``false``);
over WebSocket as JSON values. A missing required parameter or a value of the wrong type is
Deribit's -32602 "Invalid params" naming the parameter, never a silent default.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from bot.sim.rpc_errors import RpcError


class Params:
    def __init__(self, raw: Mapping[str, Any]) -> None:
        self._raw = dict(raw)

    def raw(self) -> dict[str, Any]:
        return dict(self._raw)

    def _get(self, name: str) -> Any:
        value = self._raw.get(name)
        return None if value == "" and name != "label" else value

    def text(self, name: str) -> str:
        value = self._get(name)
        if value is None:
            raise RpcError.of(-32602, reason="missing", param=name)
        return str(value)

    def opt_text(self, name: str, default: str | None = None) -> str | None:
        value = self._get(name)
        return default if value is None else str(value)

    def opt_number(self, name: str) -> float | None:
        value = self._get(name)
        if value is None:
            return None
        if isinstance(value, bool):
            raise RpcError.of(-32602, reason="must be a number", param=name)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise RpcError.of(-32602, reason="must be a number", param=name) from None
        if not math.isfinite(number):
            raise RpcError.of(-32602, reason="must be finite", param=name)
        return number

    def number(self, name: str) -> float:
        value = self.opt_number(name)
        if value is None:
            raise RpcError.of(-32602, reason="missing", param=name)
        return value

    def integer(self, name: str, default: int) -> int:
        value = self.opt_number(name)
        if value is None:
            return default
        if not value.is_integer():
            raise RpcError.of(-32602, reason="must be an integer", param=name)
        return int(value)

    def opt_integer(self, name: str) -> int | None:
        return None if self._get(name) is None else self.integer(name, 0)

    def flag(self, name: str, default: bool = False) -> bool:
        value = self._get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise RpcError.of(-32602, reason="must be true or false", param=name)

    def choice(self, name: str, allowed: tuple[str, ...], default: str | None) -> str | None:
        value = self.opt_text(name, default)
        if value is not None and value not in allowed:
            raise RpcError.of(-32602, reason=f"must be one of {list(allowed)}", param=name)
        return value


def currency_param(params: Params, served: tuple[str, ...]) -> str:
    """The required ``currency``, one the server serves."""
    currency = params.text("currency").upper()
    if currency not in served:
        raise RpcError.of(-32602, reason=f"unknown currency {currency}", param="currency")
    return currency


def currencies_param(params: Params, served: tuple[str, ...]) -> tuple[str, ...]:
    """``currency`` may be absent or ``any``: then every served currency."""
    raw = params.opt_text("currency")
    if raw is None or raw.lower() == "any":
        return served
    return (currency_param(params, served),)
