"""The ccxt Deribit client hedgebot uses: no silent resends, checked URLs, and a public-only
variant for market data that holds no key and refuses private calls before sending."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

import ccxt.async_support as ccxt

from bot.config import VenueSettings
from bot.venues.errors import AuthError


class UnsafeUrl(ValueError):
    """A custom venue URL that is neither loopback nor an https Deribit host."""


def venue_urls(url: str) -> dict[str, str]:
    """ccxt's ``urls["api"]`` for a custom network: REST base and its websocket counterpart.

    Only loopback (a local simulator) or https on a ``deribit.com`` host: API keys must never
    be signed towards anything else.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    extras = (
        ("credentials", parts.username or parts.password),
        ("a query", parts.query),
        ("a fragment", parts.fragment),
    )
    wrong = [what for what, there in extras if there]
    if wrong:  # named, never echoed: they may be secrets
        port = f":{parts.port}" if parts.port else ""
        bare = f"{parts.scheme}://{host}{port}{parts.path}"
        raise UnsafeUrl(f"venue url {bare} must not carry {' or '.join(wrong)} (not shown)")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    deribit = parts.scheme == "https" and (host == "deribit.com" or host.endswith(".deribit.com"))
    if not (deribit or (loopback and parts.scheme in ("http", "https"))):
        raise UnsafeUrl(
            f"venue url {url!r} refused: use http(s) on loopback or https on a deribit.com host"
        )
    base = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
    ws = f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}/ws/api/v2"
    return {"rest": base, "ws": ws}


class NoResendDeribit(ccxt.deribit):  # type: ignore[misc]
    """ccxt's Deribit client whose HTTP session never resends a request on its own.

    ccxt sends every Deribit call, ``private/buy`` included, as an HTTP GET, and aiohttp
    silently retries an idempotent method once when the server drops the connection before
    answering: an order accepted and then cut off would be placed twice. The contract and
    fault tests (``tests/test_deribit_sim_faults.py``) catch a regression on upgrade.
    """

    def open(self, lazy: bool = False) -> None:
        super().open(lazy)
        session = self.session
        if session is not None and getattr(session, "_retry_connection", False):
            session._retry_connection = False
        elif session is not None and not hasattr(session, "_retry_connection"):
            raise RuntimeError("aiohttp changed: cannot turn off its silent resend of GET")


class PrivateCallRefused(AuthError):
    """A private (account or trading) call attempted through a public-only client."""


class PublicOnlyDeribit(NoResendDeribit):
    """ccxt's Deribit client for market data only: it holds no key, and any private call
    (anything that could read an account, let alone trade) raises before a byte is sent.
    Paper trading on live data reads the venue through this client and nothing else."""

    async def fetch2(self, path: Any, api: Any = "public", *args: Any, **kwargs: Any) -> Any:
        section = api[0] if isinstance(api, list | tuple) else api
        if section != "public":
            raise PrivateCallRefused(f"private call {path!r} refused: this client is public-only")
        return await super().fetch2(path, api, *args, **kwargs)


def build_client(settings: VenueSettings, *, public_only: bool = False) -> Any:
    """The async ccxt client: testnet unless mainnet is chosen explicitly; custom URLs checked.
    ``public_only``: a :class:`PublicOnlyDeribit` without credentials."""
    config: dict[str, Any] = {
        "enableRateLimit": False,  # our two clocked buckets do it
        "timeout": int(settings.timeout_seconds * 1000),
        "options": {"maxRetriesOnFailure": 0},  # ccxt must never resend: we decide
    }
    if not public_only and settings.api_key is not None and settings.api_secret is not None:
        config["apiKey"] = settings.api_key.get_secret_value()
        config["secret"] = settings.api_secret.get_secret_value()
    client = PublicOnlyDeribit(config) if public_only else NoResendDeribit(config)
    if settings.network == "custom":
        if not settings.url:
            raise UnsafeUrl("venue.network=custom needs venue.url")
        client.urls["api"] = venue_urls(settings.url)
    elif settings.network != "mainnet":
        client.set_sandbox_mode(True)
    return client
