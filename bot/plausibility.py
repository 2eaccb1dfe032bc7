"""Does a read add up? The checks between reading a book and deciding anything on it.

A runaway hedger starts with a read that is well formed but wrong: a position list missing the
perpetual, an account summary without ``delta_total``, an equity of zero. Each check here
compares the read with something independent of it (the venue's own delta, the ledger's record
of the position, the book's greeks) and raises :class:`ImplausibleRead` naming both figures.
The cycle records the skip; the risk gate halts after ``risk.halt_after_bad_reads`` in a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import structlog

from bot.config import RiskSettings
from bot.domain import Book, PortfolioGreeks, TargetMode, TradingState
from bot.positions import ImplausibleRead
from bot.store.ledger import GreeksSnapshot, Ledger

log = structlog.get_logger("hedgebot.plausibility")

# The equity bound allows the implied volatility to move this many vol points between two
# reads, and each greek's share twice over: a loose bound that still catches an equity read
# that is off by a multiple, which is what sizes a wrong ``usd``-mode hedge.
IV_MOVE_POINTS = 10.0
SAFETY = 2.0


@dataclass(frozen=True)
class Baseline:
    """The last accepted read of a currency (its greeks snapshot) and the signed amount our
    recorded fills have moved the hedge by since (the fills of that cycle's orders)."""

    snapshot: GreeksSnapshot
    fills_since: float

    @property
    def expected_position(self) -> float:
        """The ledger's own view of the hedge position."""
        return self.snapshot.hedge_position + self.fills_since


def load_baseline(ledger: Ledger, currency: str, hedge: str) -> Baseline | None:
    """The ledger's view, or None when there is nothing to compare with: a first start, or an
    operator's change of trading state (a resume) after the last accepted read, which takes the
    venue's word as the new starting point."""
    snap = ledger.last_greeks_snapshot(currency)
    if snap is None:
        return None
    state = ledger.get_trading_state()
    if (
        state.updated_at is not None
        and state.updated_at > snap.ts
        and state.state is not TradingState.HALTED
    ):
        log.info("baseline_reset", currency=currency, state=state.state.value, by=state.reason)
        return None
    return Baseline(snap, ledger.position_change_of_cycle(snap.cycle_id, hedge))


def check_read(
    book: Book,
    greeks: PortfolioGreeks,
    baseline: Baseline | None,
    limits: RiskSettings,
    mode: TargetMode,
) -> None:
    """Raise :class:`ImplausibleRead` unless the read agrees with the venue's own delta, the
    ledger's position and (in ``usd`` mode) the equity the book's P&L can explain. A check
    that fails for any other reason fails closed: the read is refused."""
    try:
        check_delta(book, greeks, limits)
        if baseline is None:
            return
        check_position(book, baseline, limits)
        if mode is TargetMode.USD:
            check_equity(book, baseline, limits)
    except ImplausibleRead:
        raise
    except Exception as exc:
        raise ImplausibleRead(f"plausibility check failed: {exc!r}") from exc


def delta_tolerance(currency: str, greeks: PortfolioGreeks, limits: RiskSettings) -> float:
    """Coin: the currency's fixed tolerance plus a fraction of the gross option delta."""
    fixed = limits.delta_tolerance_coin.get(currency)
    if fixed is None:  # settings validation refuses this; never compare against nothing
        raise ImplausibleRead(f"risk.delta_tolerance_coin has no entry for {currency}")
    return fixed + limits.delta_tolerance_fraction * greeks.options_delta_gross


def check_delta(book: Book, greeks: PortfolioGreeks, limits: RiskSettings) -> None:
    venue = book.account.delta_total
    if venue is None:  # the tracker refuses this first; kept so the check never passes silently
        raise ImplausibleRead(f"{book.currency} account summary has no delta_total")
    allowed = delta_tolerance(book.currency, greeks, limits)
    apart = abs(venue - greeks.delta_coin)
    if apart > allowed:
        raise ImplausibleRead(
            f"delta disagreement: local {greeks.delta_coin:+.4f} vs venue {venue:+.4f} "
            f"{book.currency}, {apart:.4f} apart, more than the {allowed:.4f} allowed "
            f"({allowed - limits.delta_tolerance_fraction * greeks.options_delta_gross:g} + "
            f"{limits.delta_tolerance_fraction:g} x gross option delta "
            f"{greeks.options_delta_gross:.4f})"
        )


def check_position(book: Book, baseline: Baseline, limits: RiskSettings) -> None:
    held = book.hedge_position()
    expected = baseline.expected_position
    # A relative allowance of 1e-9 absorbs float sums of many fills; nothing more.
    allowed = limits.position_tolerance + 1e-9 * max(1.0, abs(expected))
    if abs(held - expected) > allowed:
        raise ImplausibleRead(
            f"{book.hedge_instrument.name} read {held:+,.2f} but the ledger expects "
            f"{expected:+,.2f} (last accepted {baseline.snapshot.hedge_position:+,.2f} plus our "
            f"fills {baseline.fills_since:+,.2f}); difference {held - expected:+,.2f} beyond "
            f"risk.position_tolerance {limits.position_tolerance:,.2f}"
        )


def equity_move_allowed(book: Book, baseline: Baseline, now: datetime, floor: float) -> float:
    """Coin the equity may move between the last accepted read and this one.

    ``SAFETY`` x (|delta| x dS/S + gamma x dS^2 / 2S + |vega| x ``IV_MOVE_POINTS`` / S +
    |theta| x days / S) + ``floor`` x |last equity|, with the greeks of the last accepted read
    (delta the larger of before and after our fills since) and S its index. Deltas are coin,
    gamma coin per USD, vega and theta USD (per vol point, per day), so each term is coin.
    """
    prev = baseline.snapshot
    s0 = prev.index_price
    ds = abs(book.index_price - s0)
    traded = book.hedge_instrument.coin_delta_of_amount(baseline.fills_since, s0)
    delta = max(abs(prev.delta_coin), abs(prev.delta_coin + traded))
    days = max(0.0, (now - prev.ts).total_seconds() / 86_400)
    explained = (
        delta * ds / s0
        + 0.5 * abs(prev.gamma) * ds * ds / s0
        + abs(prev.vega) * IV_MOVE_POINTS / s0
        + abs(prev.theta) * days / s0
    )
    return SAFETY * explained + floor * abs(prev.equity)


def check_equity(book: Book, baseline: Baseline, limits: RiskSettings) -> None:
    equity = book.account.equity
    if not equity > 0:
        raise ImplausibleRead(f"{book.currency} equity must be positive, got {equity!r}")
    prev = baseline.snapshot.equity
    allowed = equity_move_allowed(book, baseline, book.as_of, limits.equity_move_floor)
    if abs(equity - prev) > allowed:
        raise ImplausibleRead(
            f"{book.currency} equity moved from {prev:,.4f} to {equity:,.4f}, "
            f"{abs(equity - prev):,.4f} more than the {allowed:,.4f} the book's P&L can explain "
            "since the last accepted read"
        )
