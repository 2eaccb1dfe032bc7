"""Order labels: whose order is this?

A label is ``{prefix}-{ledger}-{cycle}-{attempt}``: the configured prefix, the ledger's id (8 hex
digits, kept in the ledger), the cycle's id (16 hex digits) and the attempt, at most
16 + 1 + 8 + 1 + 16 + 1 + 3 = 46 characters, within Deribit's 64 (``private/buy``: "label — user
defined label for the order (maximum 64 characters)").

The ledger id tells three kinds of labelled order apart on one venue account:

- ours: our prefix and our ledger id (one the ledger lost is still ours: it is recovered);
- another hedgebot's: our prefix, or any prefix with the label's shape, and another ledger id
  (or none): a second ledger trading the same account, which would double every hedge;
- anyone else's: not hedgebot's at all (a manual order), left to the position audit.

Labels written before ledger ids existed (``{prefix}-{cycle}-{attempt}``) are ours only while
the ledger knows them; the caller asks the ledger.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.units import MAX_LABEL_LENGTH

LEDGER_ID_LENGTH = 8
_SHAPE = re.compile(r"^(?P<prefix>.+)-(?P<ledger>[0-9a-f]{8})-[0-9a-f]{16}-\d+$")


@dataclass(frozen=True)
class Labels:
    """The labels of one ledger's orders."""

    prefix: str
    ledger_id: str

    def __post_init__(self) -> None:
        if not re.fullmatch(rf"[0-9a-f]{{{LEDGER_ID_LENGTH}}}", self.ledger_id):
            raise ValueError(f"ledger id must be {LEDGER_ID_LENGTH} hex digits: {self.ledger_id!r}")

    @property
    def ours_prefix(self) -> str:
        return f"{self.prefix}-{self.ledger_id}-"

    def make(self, cycle_id: str, attempt: int) -> str:
        label = f"{self.ours_prefix}{cycle_id}-{attempt}"
        if len(label) > MAX_LABEL_LENGTH:
            raise ValueError(f"order label {label!r} is longer than Deribit's {MAX_LABEL_LENGTH}")
        return label

    def ours(self, label: str) -> bool:
        """Stamped with this ledger's id (whether or not the ledger still has it)."""
        return label.startswith(self.ours_prefix)

    def hedgebots(self, label: str) -> bool:
        """Carries our prefix, or has the shape of any hedgebot's label."""
        return label.startswith(self.prefix + "-") or _SHAPE.match(label) is not None

    def ledger_of(self, label: str) -> str | None:
        """The ledger id a label carries, if it has the shape."""
        match = _SHAPE.match(label)
        return match.group("ledger") if match else None


__all__ = ["LEDGER_ID_LENGTH", "Labels"]
