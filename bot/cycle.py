"""``rebalance_once``: one whole hedging cycle for one currency, and nothing else.

read book → greeks → does the read add up (venue delta, ledger position, equity) → policy →
risk gate → (confirm) → execute → ledger.
The daemon, the one-shot ``rebalance`` command and the demo all call this one function; every
outcome, including each reason not to trade, is written to the ledger.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from bot.audit import halt_unless_fills_explain
from bot.clock import Clock, SeededIds
from bot.config import Settings
from bot.domain import (
    Book,
    DataError,
    HedgeDecision,
    PortfolioGreeks,
    RebalanceStatus,
    TargetMode,
)
from bot.exclusion import AccountWatch
from bot.execution import Execution, Executor
from bot.greeks import portfolio_greeks
from bot.plausibility import check_read, load_baseline
from bot.policy import VolSource, decide, describe_params
from bot.positions import PositionTracker, StaleData
from bot.risk import FillExceedsOrder, RiskGate
from bot.store.ledger import GreeksSnapshot, Ledger, RebalanceRecord
from bot.venues.errors import VenueError

log = structlog.get_logger("hedgebot.cycle")


@dataclass(frozen=True)
class Plan:
    """What a cycle intends to send, shown before a one-shot rebalance asks to confirm."""

    currency: str
    instrument: str
    target_mode: TargetMode
    delta_before: float
    target: float
    trade_amount: float
    expected_delta_after: float
    price: float
    est_cost_usd: float
    reason: str


@dataclass(frozen=True)
class CycleResult:
    cycle_id: str
    currency: str
    status: RebalanceStatus
    reason: str
    greeks: PortfolioGreeks | None = None
    decision: HedgeDecision | None = None
    plan: Plan | None = None
    execution: Execution | None = None


@dataclass
class CycleContext:
    """Everything a cycle uses, built once by the caller (daemon, command, test)."""

    settings: Settings
    tracker: PositionTracker
    ledger: Ledger
    risk: RiskGate
    executor: Executor
    clock: Clock
    mode: str = "daemon"
    vol: VolSource | None = None
    last_rebalance: dict[str, datetime] = field(default_factory=dict)
    ids: SeededIds = field(default_factory=SeededIds)  # the wiring salts it per process
    watch: AccountWatch | None = None  # another hedgebot on the venue account halts trading


Confirm = Callable[[Plan], Awaitable[bool]]


async def rebalance_once(
    ctx: CycleContext,
    currency: str,
    *,
    dry_run: bool = False,
    confirm: Confirm | None = None,
    due: datetime | None = None,
) -> CycleResult:
    """Run one cycle for ``currency``; returns what happened, which is also in the ledger.

    ``due`` is the instant the cycle was scheduled for (the daemon's tick; default: when it
    starts). A trade stamps the time band's ``last_rebalance`` with it, not with the end of
    execution, so a band as long as the tick is due at every tick.
    """
    cycle_id = ctx.ids.cycle_id()
    due = due or ctx.clock.now()
    structlog.contextvars.bind_contextvars(cycle_id=cycle_id, currency=currency)
    try:
        with ctx.ledger.batch(from_greeks=True):  # one commit from greeks to the first order
            return await _cycle(ctx, currency, cycle_id, dry_run, confirm, due)
    finally:
        structlog.contextvars.unbind_contextvars("cycle_id", "currency")


async def _cycle(
    ctx: CycleContext,
    currency: str,
    cycle_id: str,
    dry_run: bool,
    confirm: Confirm | None,
    due: datetime,
) -> CycleResult:
    s = ctx.settings
    rec = _Recorder(ctx, currency, cycle_id)
    try:
        foreign = await ctx.watch.check(currency) if ctx.watch is not None else None
    except FillExceedsOrder as exc:
        return rec.halt(f"while recovering our lost fills: {exc}")
    except (VenueError, DataError) as exc:
        return rec.skip(f"could not look for another hedgebot on the account: {exc}")
    if foreign is not None:  # a dry run only reports it; it changes nothing
        return rec.skip(foreign) if dry_run else rec.halt(foreign)
    try:
        # A dry run sends nothing, cancels included: an order still working stays unresolved.
        unresolved = await ctx.executor.resolve_unknown(currency, cancel=not dry_run)
        if not dry_run:
            await ctx.executor.cancel_strays(currency)
    except FillExceedsOrder as exc:
        return rec.halt(f"while resolving earlier orders: {exc}")
    except (VenueError, DataError) as exc:
        return rec.skip(f"could not resolve earlier orders: {exc}")
    if unresolved:
        return rec.skip(f"orders of unknown outcome pending: {', '.join(unresolved)}")
    try:
        book = await ctx.tracker.read(currency)
        rec.book = book
        greeks = portfolio_greeks(book, ctx.clock.now())
        rec.greeks = greeks
        if halt := halt_unless_fills_explain(
            ctx.ledger,
            book.hedge_instrument.name,
            book.hedge_position(),
            ctx.clock.now(),
            s.risk.position_tolerance,
            halt=not dry_run,
        ):
            return rec.skip(halt)
        baseline = load_baseline(ctx.ledger, currency, book.hedge_instrument.name)
        check_read(book, greeks, baseline, s.risk, s.hedge.target_mode)
    except StaleData as exc:
        return rec.skip(f"{type(exc).__name__}: {exc}")
    except DataError as exc:
        return rec.bad_read(f"{type(exc).__name__}: {exc}")
    except VenueError as exc:
        return rec.skip(f"{type(exc).__name__}: {exc}")
    try:
        ctx.ledger.record_greeks(
            GreeksSnapshot.of(
                greeks, cycle_id=cycle_id, ts=book.as_of, hedge_position=book.hedge_position()
            )
        )
    except DataError as exc:
        return rec.bad_read(f"the read cannot be recorded: {exc}")
    policy = s.policy_for(currency)
    sigma = ctx.vol.sigma(currency, ctx.clock.now(), greeks.iv) if ctx.vol else None
    rec.sigma = sigma
    try:
        decision = decide(
            book,
            greeks,
            policy,
            s.hedge.target_mode,
            s.hedge.target_delta,
            ctx.clock.now(),
            ctx.last_rebalance.get(currency),
            sigma,
        )
    except (ValueError, ArithmeticError) as exc:  # DataError included: nothing sized, recorded
        return rec.skip(f"the policy could not decide: {type(exc).__name__}: {exc}")
    rec.decision = decision
    if not decision.trades:
        _warn(decision)
        return rec.finish(RebalanceStatus.NO_TRADE, decision.reason)
    ledger_position = baseline.expected_position if baseline else None
    verdict = ctx.risk.check(decision, book, ledger_position)
    if not verdict.allowed or verdict.decision is None:
        _warn(decision)
        return rec.finish(RebalanceStatus.DENIED, verdict.reason)
    decision = rec.decision = verdict.decision
    _warn(decision)
    plan = _plan(book, greeks, decision, s)
    rec.plan = plan
    if dry_run:
        return rec.finish(RebalanceStatus.DRY_RUN, "dry run: nothing sent")
    if confirm is not None:
        if not await confirm(plan):
            return rec.finish(RebalanceStatus.SKIPPED, "declined at the prompt: nothing sent")
        # The answer may have come minutes later: check the confirmed decision again.
        verdict = ctx.risk.check(decision, book, ledger_position)
        if not verdict.allowed or verdict.decision != decision:
            why = verdict.reason if not verdict.allowed else "the limits changed the order"
            return rec.finish(RebalanceStatus.DENIED, f"after confirmation: {why}")
    rebalance_id = rec.write(RebalanceStatus.TRADED, decision.reason)
    try:
        execution = await ctx.executor.execute(decision, book, cycle_id, rebalance_id)
    except BaseException as exc:
        # Orders already sent are on record; the next cycle resolves them by label. The row
        # written before sending is corrected so the ledger says what the caller is told.
        reason = f"execution failed: {type(exc).__name__}: {exc}"
        ctx.ledger.set_rebalance_outcome(rebalance_id, RebalanceStatus.FAILED, reason)
        log.error("execution_failed", error=f"{type(exc).__name__}: {exc}")
        if isinstance(exc, FillExceedsOrder):
            ctx.risk.halt(f"{exc}")
        elif not isinstance(exc, VenueError | DataError):
            raise
        return CycleResult(
            cycle_id, currency, RebalanceStatus.FAILED, reason, greeks, decision, plan
        )
    ctx.last_rebalance[currency] = due
    log.info(
        "rebalanced",
        **_figures(greeks, decision),
        instrument=book.hedge_instrument.name,
        label=execution.label,
        status=execution.status.value,
        filled=execution.filled_amount,
        price=execution.average_price,
        fees=execution.fees,
    )
    return CycleResult(
        cycle_id,
        currency,
        RebalanceStatus.TRADED,
        decision.reason,
        greeks,
        decision,
        plan,
        execution,
    )


def _warn(decision: HedgeDecision) -> None:
    for warning in decision.warnings:
        log.warning("policy_warning", detail=warning)


class _Recorder:
    """Writes the cycle's rebalance row once, whatever the outcome."""

    def __init__(self, ctx: CycleContext, currency: str, cycle_id: str) -> None:
        self.ctx, self.currency, self.cycle_id = ctx, currency, cycle_id
        self.book: Book | None = None
        self.greeks: PortfolioGreeks | None = None
        self.decision: HedgeDecision | None = None
        self.plan: Plan | None = None
        self.sigma: float | None = None

    def skip(self, reason: str) -> CycleResult:
        log.warning("cycle_skipped", reason=reason)
        return self.finish(RebalanceStatus.SKIPPED, reason)

    def bad_read(self, reason: str) -> CycleResult:
        """A read that does not add up: skipped, counted, and at the limit trading halts."""
        return self.skip(self.ctx.risk.read_failed(self.currency, reason))

    def halt(self, reason: str) -> CycleResult:
        self.ctx.risk.halt(reason)
        return self.skip(f"{reason}: trading halted")

    def finish(self, status: RebalanceStatus, reason: str) -> CycleResult:
        self.write(status, reason)
        if status is not RebalanceStatus.SKIPPED:
            log.info(
                "cycle_done",
                status=status.value,
                reason=reason,
                **_figures(self.greeks, self.decision),
            )
        return CycleResult(
            self.cycle_id, self.currency, status, reason, self.greeks, self.decision, self.plan
        )

    def write(self, status: RebalanceStatus, reason: str) -> int:
        try:
            return self._write(status, reason)
        except DataError as exc:
            # A figure the ledger cannot store (beyond NUMERIC(36, 18)): keep the outcome.
            self.book = self.greeks = self.decision = self.plan = None
            return self._write(status, f"{reason} (figures not stored: {exc})")

    def _write(self, status: RebalanceStatus, reason: str) -> int:
        s = self.ctx.settings
        policy = s.policy_for(self.currency)
        q = self.book.hedge_quote if self.book else None
        g, d = self.greeks, self.decision
        return self.ctx.ledger.record_rebalance(
            RebalanceRecord(
                cycle_id=self.cycle_id,
                ts=self.ctx.clock.now(),
                currency=self.currency,
                mode=self.ctx.mode,
                policy=policy.kind,
                params=describe_params(policy, self.sigma),
                target_mode=s.hedge.target_mode.value,
                status=status,
                reason=reason,
                instrument=self.book.hedge_instrument.name if self.book else None,
                index_price=self.book.index_price if self.book else None,
                hedge_bid=q.bid if q else None,
                hedge_ask=q.ask if q else None,
                hedge_mid=q.mid if q else None,
                delta_before=d.delta_before if d else (g.delta(s.hedge.target_mode) if g else None),
                target=s.hedge.target_delta,
                band_low=d.band_low if d else None,
                band_high=d.band_high if d else None,
                gamma=g.gamma if g else None,
                vega=g.vega if g else None,
                theta=g.theta if g else None,
                equity=g.equity if g else None,
                trade_amount=d.trade_amount if d else None,
                trade_delta=d.trade_delta if d else None,
                expected_delta_after=d.expected_delta_after if d else None,
                est_cost_usd=self.plan.est_cost_usd if self.plan else None,
                greeks=g,
            )
        )


def _plan(book: Book, greeks: PortfolioGreeks, decision: HedgeDecision, s: Settings) -> Plan:
    q = book.hedge_quote
    price = q.ask if decision.trade_amount > 0 else q.bid
    notional_usd = abs(decision.trade_amount) * (1.0 if book.hedge_instrument.inverse else price)
    est_cost = notional_usd * (s.venue.fees.perp_taker + abs(price - q.mid) / q.mid)
    return Plan(
        currency=book.currency,
        instrument=book.hedge_instrument.name,
        target_mode=s.hedge.target_mode,
        delta_before=decision.delta_before,
        target=decision.target,
        trade_amount=decision.trade_amount,
        expected_delta_after=decision.expected_delta_after,
        price=price,
        est_cost_usd=est_cost,
        reason=decision.reason,
    )


def _figures(g: PortfolioGreeks | None, d: HedgeDecision | None) -> dict[str, float]:
    """The numbers a trader reads in a cycle's log line: delta (coin, USD) against the band."""
    out: dict[str, float] = {}
    if d is not None:
        out.update(delta=d.delta_before, target=d.target, band_low=d.band_low)
        out.update(band_high=d.band_high, trade_amount=d.trade_amount)
    elif g is not None:
        out["delta"] = g.delta_coin
    if g is not None:
        out["index_price"] = g.index_price
        out["delta_usd"] = out["delta"] * g.index_price
    return out
