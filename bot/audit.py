"""The hedge position must be explained by our fills: checked at start and every cycle.

A baseline records a venue read of the hedge position and the signed total of our recorded
fills at that moment. From then on every read must equal the baseline position plus the fills
recorded since, within ``risk.position_tolerance``. A lost fill (the venue has it, the ledger
does not) or a trade made outside hedgebot shows as a difference; in a cycle the difference
halts trading with both figures, at start it refuses to start. The comparison starts from
the ledger's record, never from the venue's read, so a read that already includes a lost fill
cannot explain it away.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import structlog

from bot.domain import TradingState
from bot.store.accounting import LedgerAccounts
from bot.store.ledger import Ledger

log = structlog.get_logger("hedgebot.audit")

_EPSILON = 1e-6
POSITION_HALT = "the hedge position is not explained by our fills"


@dataclass(frozen=True)
class PositionAudit:
    instrument: str
    venue_position: float
    expected_position: float
    baseline_position: float
    fills_since: float
    baseline_ts: datetime
    new_baseline: bool = False

    @property
    def difference(self) -> float:
        return self.venue_position - self.expected_position

    def agrees(self, tolerance: float) -> bool:
        return abs(self.difference) <= tolerance + _EPSILON

    def describe(self, tolerance: float) -> str:
        return (
            f"{self.instrument}: the venue holds {self.venue_position:+,.2f} but the ledger "
            f"expects {self.expected_position:+,.2f} (baseline {self.baseline_position:+,.2f} "
            f"at {self.baseline_ts:%Y-%m-%d %H:%M:%S}Z plus our fills since "
            f"{self.fills_since:+,.2f}), a difference of {self.difference:+,.2f} beyond the "
            f"tolerance of {tolerance:,.2f}"
        )


def audit_position(
    ledger: Ledger, instrument: str, venue_position: float, now: datetime
) -> PositionAudit:
    """Compare ``venue_position`` with the baseline plus our fills since; the first audit of
    an instrument records the baseline (and agrees by construction)."""
    accounts = LedgerAccounts(ledger.engine)
    base = accounts.baseline(instrument)
    fresh = base is None
    if base is None:
        base = accounts.set_baseline(instrument, venue_position, now, "first position read")
        log.info("position_baseline_recorded", instrument=instrument, position=venue_position)
    since = accounts.fills_total(instrument) - base.fills_total
    return PositionAudit(
        instrument=instrument,
        venue_position=venue_position,
        expected_position=base.position + since,
        baseline_position=base.position,
        fills_since=since,
        baseline_ts=base.ts,
        new_baseline=fresh,
    )


def expected_position(ledger: Ledger, instrument: str) -> float | None:
    """The baseline plus our fills since, without recording anything; None before the first
    baseline (a first start, when there is nothing to compare with)."""
    accounts = LedgerAccounts(ledger.engine)
    base = accounts.baseline(instrument)
    if base is None:
        return None
    return base.position + accounts.fills_total(instrument) - base.fills_total


def halt_unless_fills_explain(
    ledger: Ledger,
    instrument: str,
    venue_position: float,
    now: datetime,
    tolerance: float,
    *,
    halt: bool = True,
) -> str | None:
    """The per-cycle check: None when the position agrees with the fills; otherwise trading is
    set to halted with both figures, and the reason is returned for the cycle to record.
    ``halt`` false (a dry run, ``check``, perhaps beside a live daemon between its fill and
    the record of it) only returns the reason."""
    audit = audit_position(ledger, instrument, venue_position, now)
    if audit.agrees(tolerance):
        return None
    reason = (
        f"{POSITION_HALT}: {audit.describe(tolerance)}. A fill may be missing from the ledger "
        "or the hedge was traded outside hedgebot; check, then `hedgebot db rebaseline`"
    )
    if not halt:
        log.warning("position_fills_mismatch", difference=audit.difference, halted=False)
        return reason
    ledger.set_trading_state(TradingState.HALTED, reason, now)
    log.error(
        "position_fills_mismatch",
        instrument=instrument,
        venue_position=audit.venue_position,
        expected_position=audit.expected_position,
        difference=audit.difference,
    )
    return reason


def rebaseline(ledger: Ledger, instrument: str, venue_position: float, now: datetime) -> None:
    """Accept ``venue_position`` as the new baseline (after an operator's check)."""
    LedgerAccounts(ledger.engine).set_baseline(instrument, venue_position, now, "rebaselined")
    log.warning("position_rebaselined", instrument=instrument, position=venue_position)


__all__ = [
    "POSITION_HALT",
    "PositionAudit",
    "audit_position",
    "expected_position",
    "halt_unless_fills_explain",
    "rebaseline",
]
