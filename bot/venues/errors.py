"""The four outcomes a venue error maps to, whatever the adapter.

The executor acts on these classes only: a definitive rejection is never retried, an ambiguous
outcome is looked up by label before anything is resent, a rate limit backs off, a transient
read error is retried within a bound.
"""

from __future__ import annotations


class VenueError(Exception):
    """Base of every error an adapter raises."""


class OrderRejected(VenueError):
    """The venue said no (bad amount, post-only would cross, funds). Never retried."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class OrderNotFound(VenueError):
    """The venue has no such order (already gone, or never existed)."""


class OutcomeUnknown(VenueError):
    """The request may have taken effect (timeout after send). Look it up before resending."""


class RateLimited(VenueError):
    """Too many requests (Deribit 10028). Back off before the next call."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TransientError(VenueError):
    """A read that failed for a passing reason (network, 5xx). Safe to retry reads."""


class AuthError(VenueError):
    """Credentials missing or refused. Never retried."""


class ReadFailed(TransientError):
    """A read that could not be done, named by the venue method that failed.

    Raised once the read's retries are spent, or at once for an answer no retry can change
    (the venue refused the request, the client is closed). It stays a ``TransientError`` so
    callers that tolerate a failed lookup keep doing so, but it is never retried again.
    """

    def __init__(self, method: str, cause: object) -> None:
        super().__init__(f"read {method} failed: {cause}")
        self.method = method
