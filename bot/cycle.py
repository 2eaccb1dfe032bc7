"""``rebalance_once``: one whole hedging cycle for one currency, and nothing else.

read book → greeks → venue agreement → policy → risk gate → (confirm) → execute → ledger.
The daemon, the one-shot ``rebalance`` command and the demo all call this one function; every
outcome, including each reason not to trade, is written to the ledger.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from bot.clock import Clock
from bot.config import Settings
from bot.domain import Book, DataError, HedgeDecision, PortfolioGreeks, TargetMode
from bot.execution import Execution, Executor
from bot.greeks import portfolio_greeks
from bot.policy import VolSource, decide, describe_params
from bot.positions import PositionTracker
from bot.risk import RiskGate
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
    status: str  # a bot.store.records.RebalanceStatus value
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


Confirm = Callable[[Plan], Awaitable[bool]]


async def rebalance_once(
    ctx: CycleContext, currency: str, *, dry_run: bool = False, confirm: Confirm | None = None
) -> CycleResult:
    """Run one cycle for ``currency``; returns what happened, which is also in the ledger."""
    cycle_id = uuid.uuid4().hex[:16]
    structlog.contextvars.bind_contextvars(cycle_id=cycle_id, currency=currency)
    try:
        with ctx.ledger.batch(from_greeks=True):  # one commit from greeks to the first order
            return await _cycle(ctx, currency, cycle_id, dry_run, confirm)
    finally:
        structlog.contextvars.unbind_contextvars("cycle_id", "currency")


async def _cycle(
    ctx: CycleContext, currency: str, cycle_id: str, dry_run: bool, confirm: Confirm | None
) -> CycleResult:
    s = ctx.settings
    rec = _Recorder(ctx, currency, cycle_id)
    try:
        unresolved = await ctx.executor.resolve_unknown(currency)
        await ctx.executor.cancel_strays(currency)
    except (VenueError, DataError) as exc:
        return rec.skip(f"could not resolve earlier orders: {exc}")
    if unresolved:
        return rec.skip(f"orders of unknown outcome pending: {', '.join(unresolved)}")
    try:
        book = await ctx.tracker.read(currency)
        greeks = portfolio_greeks(book, ctx.clock.now())
    except (DataError, VenueError) as exc:
        return rec.skip(f"{type(exc).__name__}: {exc}")
    rec.book, rec.greeks = book, greeks
    ctx.ledger.record_greeks(
        GreeksSnapshot.of(
            greeks, cycle_id=cycle_id, ts=book.as_of, hedge_position=book.hedge_position()
        )
    )
    venue_delta = book.account.delta_total
    if (
        venue_delta is not None
        and abs(venue_delta - greeks.delta_coin) * greeks.index_price
        > s.risk.delta_disagreement_usd
    ):
        return rec.skip(
            f"delta disagreement: local {greeks.delta_coin:+.5f} vs venue {venue_delta:+.5f} "
            f"{currency}, more than ${s.risk.delta_disagreement_usd:,.0f} apart"
        )
    policy = s.policy_for(currency)
    sigma = ctx.vol.sigma(currency, ctx.clock.now(), greeks.iv) if ctx.vol else None
    rec.sigma = sigma
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
    rec.decision = decision
    for warning in decision.warnings:
        log.warning("policy_warning", detail=warning)
    if not decision.trades:
        return rec.finish("no_trade", decision.reason)
    verdict = ctx.risk.check(decision, book)
    if not verdict.allowed:
        return rec.finish("denied", verdict.reason)
    plan = _plan(book, greeks, decision, s)
    rec.plan = plan
    if dry_run:
        return rec.finish("dry_run", "dry run: nothing sent")
    if confirm is not None:
        if not await confirm(plan):
            return rec.finish("skipped", "declined at the prompt: nothing sent")
        verdict = ctx.risk.check(decision, book)  # the answer may have come minutes later
        if not verdict.allowed:
            return rec.finish("denied", f"after confirmation: {verdict.reason}")
    rebalance_id = rec.write("traded", decision.reason)
    try:
        execution = await ctx.executor.execute(decision, book, cycle_id, rebalance_id)
    except (VenueError, DataError) as exc:
        # Orders already sent are on record; the next cycle resolves them by label.
        log.error("execution_failed", error=f"{type(exc).__name__}: {exc}")
        return CycleResult(cycle_id, currency, "failed", str(exc), greeks, decision, plan)
    ctx.last_rebalance[currency] = ctx.clock.now()
    log.info(
        "rebalanced",
        status=execution.status.value,
        filled=execution.filled_amount,
        price=execution.average_price,
        fees=execution.fees,
    )
    return CycleResult(
        cycle_id, currency, "traded", decision.reason, greeks, decision, plan, execution
    )


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
        return self.finish("skipped", reason)

    def finish(self, status: str, reason: str) -> CycleResult:
        self.write(status, reason)
        if status != "skipped":
            log.info("cycle_done", status=status, reason=reason)
        return CycleResult(
            self.cycle_id, self.currency, status, reason, self.greeks, self.decision, self.plan
        )

    def write(self, status: str, reason: str) -> int:
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
