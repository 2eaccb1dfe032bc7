"""The hedging loop: every policy, in lockstep, over one set of paths.

At each step but the last every policy is asked, its trade is paid for at that step's price,
then the hedge earns the move to the next step and funding for the time in between. The
accounting is described in :mod:`bot.backtest.results`.

Hedges go into an inverse perpetual by default: an inverse contract's coin P&L kept in the
account makes the position plus its P&L worth exactly ``amount / price_at_trade`` coin of USD
exposure, so the hedge's delta is the sum of each trade's coin delta and its P&L is
``delta · ΔS``. Funding is charged continuously on the USD position,
``rate_8h · amount · dt / 8 h`` (a long pays a positive rate). Deribit's 30-minute delta decay
before settlement is not modelled: options settle on the last simulated price, so the full
delta is the right hedge to the end.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from bot.backtest.accounts import book_delta, settle
from bot.backtest.book import BookAt, BookMarks, OptionLeg, option_book
from bot.backtest.results import CostModel, PathOutcome, PolicyResult, PolicyRun
from bot.domain import DataError
from bot.units import FUNDING_PERIOD_SECONDS, SECONDS_PER_YEAR
from strategies.common import HedgeState, LotSpec
from strategies.registry import decide
from strategies.validate import CheckedState, state_arrays

Array = npt.NDArray[np.float64]
BTC_PERPETUAL_LOT = LotSpec(step=10.0, min_amount=10.0, inverse=True)
CONTINUOUS_LOT = LotSpec(step=1e-9, min_amount=1e-9, inverse=False)
"""Hedge sizes in units of the underlying to a billionth: continuous for any book whose delta
is below a million units (the textbook's shares), exact in float64 up to about 9e6 units."""

_KEYS = ("hedge", "fees", "spread", "funding", "turn")


class _Hedger:
    """One policy's running state over all paths."""

    def __init__(self, run: PolicyRun, coin0: Array, amount0: float) -> None:
        n = coin0.shape[0]
        self.run = run
        self.coin = coin0.copy()  # hedge delta, units of the underlying
        self.delta = np.empty(n)  # the book's delta plus the hedge's, refilled every step
        self.amount = np.full(n, float(amount0))  # position in the lot's unit
        self.last = np.full(n, -np.inf)  # due instant of the last trade, s (-inf: never)
        self.out = {k: np.zeros(n) for k in _KEYS}
        self.trades = np.zeros(n, dtype=np.int64)
        self.warnings: set[str] = set()


def reads_gamma(policies: tuple[PolicyRun, ...]) -> bool:
    """Whether any policy reads the book's gamma: only the gamma-scaled band does
    (:func:`strategies.gamma_scaled.gamma_scaled`); the others are spared computing it."""
    return any(run.policy == "gamma_scaled" for run in policies)


def _scalar(x: float) -> Array:
    """A 0-d array: the policies broadcast it to every path without a copy."""
    return np.asarray(x, dtype=np.float64)


def _check(prices: Array, times: Array, rates: Array) -> None:
    if prices.ndim != 2 or prices.shape[0] < 2:
        raise DataError(f"prices must be (n_steps + 1, n_paths), got shape {prices.shape}")
    # Two reductions, no temporary: a NaN, -inf or non-positive price makes the minimum fail,
    # +inf (or NaN) the maximum.
    if not (prices.min() > 0 and math.isfinite(prices.max())):
        raise DataError("prices must be positive and finite")
    n_steps = prices.shape[0] - 1
    if times.shape != (n_steps + 1,) or np.any(np.diff(times) <= 0):
        raise ValueError(f"times must be {n_steps + 1} increasing seconds, got {times.shape}")
    if rates.shape != (n_steps,):
        raise ValueError(f"funding_8h needs shape ({n_steps},), got {rates.shape}")


def _check_book(book: BookMarks, target: Array, gamma: bool, delta_finite: bool) -> None:
    """Raise the policies' own :class:`DataError` when the step's book is not finite.

    Prices were checked for the whole run (:func:`_check`), the target before the loop, and
    the clock and the hedge are the loop's own, so only the book's marks can still be bad:
    checked here once per step (the delta as it is added to the hedge's,
    :func:`~bot.backtest.accounts.book_delta`), the policies are then handed a
    :class:`~strategies.validate.CheckedState` and skip their per-call checks (a third of the
    run's time when they ran for every policy and step).
    """
    if delta_finite and (
        not gamma or (np.isfinite(book.gamma).all() and _finite_non_negative(book.sigma, book.tau))
    ):
        return
    names = ("delta", "target", "gamma", "sigma", "tau") if gamma else ("delta", "target")
    values = (book.delta, target, book.gamma, book.sigma, book.tau)[: len(names)]
    fields = {n: np.asarray(v, dtype=np.float64) for n, v in zip(names, values, strict=True)}
    ones = np.ones(1)
    state = HedgeState(**{n: fields.get(n, ones) for n in HedgeState.__dataclass_fields__})
    state_arrays(state, names)
    raise DataError(f"the book's marks are not finite: {', '.join(names)}")


def _finite_non_negative(*values: float) -> bool:
    return all(math.isfinite(v) and v >= 0 for v in values)


def hedge_outcomes(
    prices: Array,
    times: Array,
    book_at: BookAt,
    policies: tuple[PolicyRun, ...],
    *,
    lot: LotSpec = BTC_PERPETUAL_LOT,
    costs: CostModel | None = None,
    funding_8h: Array | None = None,
    target_delta: float = 0.0,
    initial_hedge: float = 0.0,
    unwind_at_end: bool = True,
    rate: float = 0.0,
) -> list[tuple[PathOutcome, set[str]]]:
    """Per policy, the per-path outcome and the warnings it said (see :func:`hedge_book`)."""
    costs = costs or CostModel()
    n_steps, n_paths = prices.shape[0] - 1, prices.shape[1] if prices.ndim == 2 else 0
    rates = np.full(n_steps, costs.funding_rate_8h) if funding_8h is None else funding_8h
    _check(prices, times, rates)
    discount = np.exp(-rate * (times - times[0]) / SECONDS_PER_YEAR)
    cost_rate = costs.fee_rate + costs.half_spread
    if not (math.isfinite(initial_hedge) and math.isfinite(target_delta)):
        raise DataError(f"initial_hedge {initial_hedge!r} and target_delta must be finite")
    coin0 = initial_hedge / prices[0] if lot.inverse else np.full(n_paths, initial_hedge)
    hedgers = [_Hedger(run, coin0, initial_hedge) for run in policies]
    target = _scalar(target_delta)

    def pay(h: _Hedger, amount: Array, price: Array, disc: float) -> None:
        notional = np.abs(amount) if lot.inverse else np.abs(amount) * price
        if disc != 1.0:
            notional = notional * disc
        if cost_rate:
            h.out["fees"] += costs.fee_rate * notional
            h.out["spread"] += costs.half_spread * notional
        h.out["turn"] += notional
        h.trades += amount != 0

    gamma = reads_gamma(policies)
    first = book = book_at(0)
    # Without a rate every discount is 1: the rows themselves, not a product per step.
    discounted = rate != 0.0
    next_price = discount[0] * prices[0] if discounted else prices[0]
    for k in range(n_steps):
        price = prices[k]
        price_now = next_price
        next_price = discount[k + 1] * prices[k + 1] if discounted else prices[k + 1]
        now = _scalar(times[k])
        funding_share = rates[k] * (times[k + 1] - times[k]) / FUNDING_PERIOD_SECONDS
        sigma, tau = _scalar(book.sigma), _scalar(book.tau)
        for i, h in enumerate(hedgers):
            finite = book_delta(book.delta, h.coin, h.delta)
            if i == 0:
                _check_book(book, target, gamma, finite)
            state = CheckedState(
                delta=h.delta,
                target=target,
                gamma=book.gamma,
                price=price,
                now=now,
                last_rebalance=h.last,
                sigma=sigma,
                tau=tau,
            )
            orders = decide(h.run.policy, state, h.run.params, lot)
            h.warnings.update(orders.warnings)
            # The hedge earns the move from price_now to next_price (discounted: the hedge
            # account is financed at `rate`).
            settle(
                orders.amount,
                orders.delta_change,
                price,
                next_price,
                now=float(times[k]),
                disc=float(discount[k]),
                fee_rate=costs.fee_rate,
                half_spread=costs.half_spread,
                inverse=lot.inverse,
                funding_rate=funding_share * discount[k] if funding_share else 0.0,
                coin=h.coin,
                position=h.amount,
                last=h.last,
                trades=h.trades,
                out=h.out,
                move_from=price_now,
            )
        book = book_at(k + 1)

    outcomes = []
    for h in hedgers:
        if unwind_at_end:
            pay(h, -h.amount, prices[-1], float(discount[-1]))
        outcome = PathOutcome(
            option_pnl=discount[-1] * book.value - first.value,
            hedge_pnl=h.out["hedge"],
            fees=h.out["fees"],
            spread=h.out["spread"],
            funding=h.out["funding"],
            turnover=h.out["turn"],
            trades=h.trades,
        )
        outcomes.append((outcome, h.warnings))
    return outcomes


def hedge_book(
    prices: Array,
    times: Array,
    book_at: BookAt,
    policies: tuple[PolicyRun, ...],
    *,
    lot: LotSpec = BTC_PERPETUAL_LOT,
    costs: CostModel | None = None,
    funding_8h: Array | None = None,
    target_delta: float = 0.0,
    initial_hedge: float = 0.0,
    unwind_at_end: bool = True,
    rate: float = 0.0,
) -> tuple[PolicyResult, ...]:
    """Hedge the book ``book_at(k)`` at ``prices`` (``(n_steps + 1, n_paths)``, rows at
    ``times`` seconds) with each policy, in lockstep; one result per policy, in order.

    ``funding_8h`` is the rate at each step (default: ``costs.funding_rate_8h``); ``rate``
    finances the hedge account and discounts every amount to ``times[0]``.
    """
    outcomes = hedge_outcomes(
        prices,
        times,
        book_at,
        policies,
        lot=lot,
        costs=costs,
        funding_8h=funding_8h,
        target_delta=target_delta,
        initial_hedge=initial_hedge,
        unwind_at_end=unwind_at_end,
        rate=rate,
    )
    return tuple(
        PolicyResult.of(run, out, tuple(sorted(said))[:5])
        for run, (out, said) in zip(policies, outcomes, strict=True)
    )


def simulate(
    prices: Array,
    legs: tuple[OptionLeg, ...],
    policies: tuple[PolicyRun, ...],
    *,
    step_seconds: float,
    default_sigma: float = 0.6,
    lot: LotSpec = BTC_PERPETUAL_LOT,
    costs: CostModel | None = None,
    funding_8h: Array | None = None,
    target_delta: float = 0.0,
    initial_hedge: float = 0.0,
    unwind_at_end: bool = True,
    rate: float = 0.0,
) -> tuple[PolicyResult, ...]:
    """Hedge ``legs`` on ``prices`` (rows ``step_seconds`` apart) with each policy:
    :func:`~bot.backtest.book.option_book` fed to :func:`hedge_book`, whose keywords these are."""
    times = step_seconds * np.arange(prices.shape[0], dtype=np.float64)
    ends = frozenset((0, prices.shape[0] - 1))
    book = option_book(
        prices, legs, step_seconds, default_sigma, rate, ends, with_gamma=reads_gamma(policies)
    )
    return hedge_book(
        prices,
        times,
        book,
        policies,
        lot=lot,
        costs=costs,
        funding_8h=funding_8h,
        target_delta=target_delta,
        initial_hedge=initial_hedge,
        unwind_at_end=unwind_at_end,
        rate=rate,
    )
