"""Deribit's API authentication, for the simulated server: signed requests and access tokens.

Private HTTP calls carry ``Authorization: deri-hmac-sha256 id=KEY,ts=MS,sig=HEX,nonce=N`` where
``sig`` = HMAC-SHA256(secret, ts + "\\n" + nonce + "\\n" + METHOD + "\\n" + uri + "\\n" + body +
"\\n") and ``uri`` is the path with its query string (what ccxt's ``deribit.sign`` sends), or
``Authorization: bearer TOKEN`` with a token from ``public/auth``. ``public/auth`` grants
``client_credentials`` (key and secret), ``client_signature`` (HMAC of ts + "\\n" + nonce +
"\\n" + data, what ccxt.pro sends) and ``refresh_token``. Tokens are HMACs of a counter under the
secret: unguessable without it, and no random source is needed.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from typing import Any

from bot.sim.rpc_errors import RpcError

TOKEN_SECONDS = 900
SCOPE = "connection mainaccount account:read_write trade:read_write wallet:read"


def _hmac(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def signature(secret: str, ts: str, nonce: str, method: str, uri: str, body: str = "") -> str:
    """The ``sig`` of a signed HTTP request."""
    return _hmac(secret, f"{ts}\n{nonce}\n{method.upper()}\n{uri}\n{body}\n")


def _fields(header: str) -> dict[str, str]:
    out = {}
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


class Authenticator:
    """Checks signatures and issues access and refresh tokens for one key pair."""

    def __init__(
        self,
        api_key: str,
        api_secret: str,
        *,
        timer: Callable[[], float] = time.monotonic,
        token_seconds: float = TOKEN_SECONDS,
    ) -> None:
        if not api_key or not api_secret:
            raise ValueError("the simulated server needs a non-empty API key and secret")
        self._key = api_key
        self._secret = api_secret
        self._timer = timer
        self._token_seconds = token_seconds
        self._issued = 0
        self._access: dict[str, float] = {}  # token -> expiry on the timer
        self._refresh: dict[str, float] = {}

    def check_header(self, header: str | None, method: str, uri: str, body: str) -> None:
        """Accept a signed or bearer ``Authorization`` header; RpcError otherwise."""
        if not header:
            raise RpcError.of(10000, reason="no Authorization header")
        scheme, _, rest = header.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            self.check_token(rest.strip())
            return
        if scheme != "deri-hmac-sha256":
            raise RpcError.of(13009, reason=f"unknown authorization scheme {scheme!r}")
        fields = _fields(rest)
        missing = [k for k in ("id", "ts", "sig", "nonce") if k not in fields]
        if missing:
            raise RpcError.of(13009, reason=f"signature header lacks {missing}")
        if not hmac.compare_digest(fields["id"], self._key):
            raise RpcError.of(13009, reason="unknown client id")
        expected = signature(self._secret, fields["ts"], fields["nonce"], method, uri, body)
        if not hmac.compare_digest(fields["sig"], expected):
            raise RpcError.of(13009, reason="bad signature")

    def check_token(self, token: str) -> None:
        expiry = self._access.get(token)
        if expiry is None or expiry < self._timer():
            raise RpcError.of(13009, reason="invalid or expired access token")

    def _token(self, kind: str) -> str:
        self._issued += 1
        return f"{self._issued}.{_hmac(self._secret, f'{kind}:{self._issued}')[:48]}"

    def grant(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``public/auth``: check the grant, return Deribit's token object."""
        grant = str(params.get("grant_type", ""))
        if grant == "client_credentials":
            ok = str(params.get("client_id", "")) == self._key and hmac.compare_digest(
                str(params.get("client_secret", "")), self._secret
            )
        elif grant == "client_signature":
            signed = [str(params.get(k, "")) for k in ("timestamp", "nonce", "data")]
            expected = _hmac(self._secret, "\n".join(signed))
            ok = str(params.get("client_id", "")) == self._key and hmac.compare_digest(
                str(params.get("signature", "")), expected
            )
        elif grant == "refresh_token":
            token = str(params.get("refresh_token", ""))
            expiry = self._refresh.pop(token, None)
            ok = expiry is not None and expiry >= self._timer()
        else:
            raise RpcError.of(-32602, reason=f"unknown grant_type {grant!r}", param="grant_type")
        if not ok:
            raise RpcError.of(13004, reason=f"{grant} refused")
        now = self._timer()
        access, refresh = self._token("access"), self._token("refresh")
        self._access[access] = now + self._token_seconds
        self._refresh[refresh] = now + 10 * self._token_seconds
        self._access = {t: e for t, e in self._access.items() if e >= now}
        return {
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": int(self._token_seconds),
            "scope": SCOPE,
            "token_type": "bearer",
        }
