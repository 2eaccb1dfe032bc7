"""Deribit's JSON-RPC errors: code, message and the HTTP status the server answers with.

Codes and messages are Deribit's; each maps to the ccxt exception class in ccxt's ``deribit``
``exceptions`` table (10028 → DDoSProtection, 11054 and 11044 → InvalidOrder, 10004 →
OrderNotFound, 13009/13004/10000 → AuthenticationError, 10009 → InsufficientFunds, 11029 and
-32602 → BadRequest). ccxt reads the code from the body before the HTTP status, so the status
only matters to clients that look at it: 429 for the rate limit, 400 for every other error,
as Deribit does.
"""

from __future__ import annotations

from typing import Any

MESSAGES: dict[int, str] = {
    10000: "authorization_required",
    10002: "qty_too_low",
    10004: "order_not_found",
    10005: "price_too_low",
    10007: "price_too_high",
    10009: "not_enough_funds",
    10020: "invalid_or_unsupported_instrument",
    10021: "invalid_amount",
    10023: "invalid_price",
    10028: "too_many_requests",
    10030: "must_be_websocket_request",
    10033: "not_implemented",
    10040: "retry",
    10043: "price_wrong_tick",
    11029: "invalid_arguments",
    11030: "other_reject",
    11044: "not_open_order",
    11050: "bad_request",
    11054: "post_only_reject",
    11094: "internal_server_error",
    13004: "invalid_credentials",
    13009: "unauthorized",
    -32601: "Method not found",
    -32602: "Invalid params",
    -32700: "Parse error",
}


class RpcError(Exception):
    """An error answer: ``{"code": …, "message": …, "data": {"reason": …, "param": …}}``."""

    def __init__(self, code: int, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message
        self.data = data

    @classmethod
    def of(cls, code: int, *, reason: str | None = None, param: str | None = None) -> RpcError:
        data: dict[str, Any] | None = None
        if reason is not None or param is not None:
            data = {"reason": reason, "param": param}
        return cls(code, MESSAGES.get(code, "error"), data)

    @property
    def http_status(self) -> int:
        return 429 if self.code == 10028 else 400

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error
