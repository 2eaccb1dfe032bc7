"""When to alert: events and streaks turned into :class:`Alert` messages.

Each rule takes plain values (statuses, numbers, times) and returns the alerts to send; the
gate in :mod:`bot.monitor.alerts` then deduplicates and rate limits them. A streak rule (stale
data, clock offset, failing cycles) fires once when the streak reaches its length and again
only after the streak has ended.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from bot.config import AlertSettings
from bot.domain import TradingState
from bot.monitor.alerts import Alert

ERROR_STATUSES = ("failed", "skipped")
GLOBAL = "global"  # the ledger's scope for all trading


@dataclass
class _Streak:
    """Consecutive cycles for which a condition held."""

    length: int = 0

    def step(self, holds: bool, fire_at: int) -> bool:
        self.length = self.length + 1 if holds else 0
        return self.length == fire_at


@dataclass(frozen=True)
class CycleFacts:
    """What the rules need from one cycle of one currency."""

    currency: str
    status: str
    reason: str
    data_age_seconds: float | None  # since the last good read; None: never read
    delta_after: float | None  # the hedged delta once the cycle's fills are in
    target: float | None
    band_low: float | None
    band_high: float | None
    policy: str | None
    clock_offset_seconds: float | None


@dataclass
class AlertRules:
    settings: AlertSettings
    max_data_age_seconds: float
    _stale: dict[str, _Streak] = field(default_factory=dict)
    _offset: dict[str, _Streak] = field(default_factory=dict)
    _errors: dict[str, _Streak] = field(default_factory=dict)
    _outside: dict[str, _Streak] = field(default_factory=dict)

    def cycle(self, f: CycleFacts) -> list[Alert]:
        s, c, out = self.settings, f.currency, []
        stale = f.data_age_seconds is None or f.data_age_seconds > self.max_data_age_seconds
        if self._stale.setdefault(c, _Streak()).step(stale, s.stale_cycles):
            age = "never read" if f.data_age_seconds is None else f"{f.data_age_seconds:,.0f} s"
            out.append(
                Alert(
                    "data_stale",
                    f"data_stale:{c}",
                    "warning",
                    f"hedgebot {c}: market data stale for {s.stale_cycles} cycles",
                    f"{c}: no fresh read of the book for {s.stale_cycles} cycles in a row; "
                    "the daemon does not trade on it.",
                    {
                        "last good read": age,
                        "limit": f"{self.max_data_age_seconds:,.0f} s",
                        "last reason": f.reason[:200],
                    },
                    "check the venue's status page and the network; hedging resumes by itself "
                    "when reads are fresh.",
                )
            )
        offset = f.clock_offset_seconds
        off = offset is not None and abs(offset) > s.max_clock_offset_seconds
        if self._offset.setdefault(c, _Streak()).step(off, s.stale_cycles):
            out.append(
                Alert(
                    "clock_offset",
                    f"clock_offset:{c}",
                    "warning",
                    f"hedgebot {c}: venue clock offset {offset:+.2f} s",
                    f"The venue's clock and ours disagree by {offset:+.2f} s for "
                    f"{s.stale_cycles} cycles in a row; data ages are measured wrong.",
                    {"offset": f"{offset:+.3f} s", "limit": f"{s.max_clock_offset_seconds:g} s"},
                    "check NTP on this host (timedatectl, chronyc tracking).",
                )
            )
        failing = f.status in ERROR_STATUSES
        if self._errors.setdefault(c, _Streak()).step(failing, s.error_cycles):
            out.append(
                Alert(
                    "cycle_errors",
                    f"cycle_errors:{c}",
                    "failure",
                    f"hedgebot {c}: {s.error_cycles} cycles in a row did not hedge",
                    f"{c}: the last {s.error_cycles} cycles ended {f.status}; the book is not "
                    "being hedged.",
                    {"last status": f.status, "last reason": f.reason[:300]},
                    "read the daemon's log for cycle_failed/cycle_skipped; run `hedgebot status`.",
                )
            )
        distance = _bands_away(f)
        outside = distance is not None and distance > s.delta_bands
        if self._outside.setdefault(c, _Streak()).step(outside, s.delta_cycles) and distance:
            out.append(
                Alert(
                    "delta_outside_band",
                    f"delta_outside_band:{c}",
                    "warning",
                    f"hedgebot {c}: delta {distance:.1f} bands from target",
                    f"{c}: after {s.delta_cycles} cycles in a row the hedged delta is still more "
                    f"than {s.delta_bands:g} half-bands from the target: {f.delta_after:+.4f} {c}, "
                    f"{distance:.1f} half-bands.",
                    {
                        "delta": f"{f.delta_after:+.4f} {c}",
                        "target": f"{f.target:+.4f} {c}",
                        "band": f"{f.band_low:+.4f}..{f.band_high:+.4f} {c}",
                        "cycle": f"{f.status} ({f.reason[:160]})",
                    },
                    "if the next cycles do not bring it back, see why the hedge does not trade "
                    "or fill (trading state, risk gate, rate cap, order rejections in the log).",
                )
            )
        return out

    def refused(self, reason: str, at: datetime) -> Alert:
        return Alert(
            "reconcile_refused",
            f"reconcile_refused:{at.isoformat()}",
            "failure",
            "hedgebot refused to start: reconciliation failed",
            f"Start-up reconciliation failed, so the daemon is not hedging. {reason[:600]}",
            {"at": at.isoformat(timespec="seconds")},
            "compare `hedgebot status` with the venue's positions, fix the cause, then start "
            "again; nothing is traded until then.",
        )

    def trading_state(
        self,
        scope: str,
        state: TradingState,
        reason: str,
        since: datetime | None,
        previous: TradingState,
    ) -> Alert:
        """``scope``: ``global`` (all trading) or one currency."""
        what = {
            TradingState.HALTED: (
                "failure",
                "halted: no order is sent",
                "find why it was halted; `hedgebot resume` when it is safe.",
            ),
            TradingState.REDUCING: (
                "warning",
                "reducing: only orders that shrink the hedge",
                "`hedgebot resume` when the reason is gone.",
            ),
            TradingState.ACTIVE: ("success", "active again: hedging resumed", "nothing."),
        }[state]
        who = "" if scope == GLOBAL else f" {scope}"
        return Alert(
            "trading_state",
            f"trading_state:{scope}:{state.value}:{since.isoformat() if since else ''}",
            what[0],
            f"hedgebot{who} trading {state.value}",
            f"Trading state{who or ' (all currencies)'} {previous.value} -> {state.value}: "
            f"{what[1]}.",
            {
                "reason": reason[:300],
                "since": since.isoformat(timespec="seconds") if since else "?",
            },
            what[2],
        )

    def unknown_order(
        self, label: str, instrument: str, side: str, amount: float, seconds: float
    ) -> Alert:
        return Alert(
            "order_unknown",
            f"order_unknown:{label}",
            "failure",
            f"hedgebot: order {label} of unknown outcome for {seconds:,.0f} s",
            f"Order {label} ({side} {amount:,.2f} {instrument}) was sent and the venue has "
            "not confirmed it; cycles for its currency are skipped until it does.",
            {
                "unknown for": f"{seconds:,.0f} s",
                "grace": f"{self.settings.unknown_order_grace_seconds:,.0f} s",
            },
            "look the label up in the venue's order history; if the venue has no such order, "
            "the next start-up reconciliation resolves it.",
        )

    def stopped(self, requested: bool, detail: str, cycles: int, at: datetime) -> Alert:
        return Alert(
            "daemon_stopped",
            f"daemon_stopped:{at.isoformat()}",
            "info" if requested else "failure",
            "hedgebot stopped" + ("" if requested else " unexpectedly"),
            f"The daemon stopped ({detail}); the book is no longer hedged.",
            {"cycles": f"{cycles}", "at": at.isoformat(timespec="seconds")},
            "nothing if this was planned; else read the log and start it again "
            "(systemd restarts it on failure).",
        )


def _bands_away(f: CycleFacts) -> float | None:
    """|delta - target| in half-bands; None where a band means nothing (time-band policies
    trade on a schedule, their band is half a lot) or a figure is missing."""
    a, t, lo, hi = f.delta_after, f.target, f.band_low, f.band_high
    if f.policy == "time_band" or a is None or t is None or lo is None or hi is None:
        return None
    half = (hi - lo) / 2
    if not math.isfinite(half) or half <= 0 or not math.isfinite(a):
        return None
    return abs(a - t) / half
