"""Backtests: the daemon's own hedging policies over many price paths at once.

A book of option legs is priced with :func:`bot.greeks.black76` on every path at every step; each
policy in the config sees a :class:`~strategies.common.HedgeState` with one row per path and
answers with the very functions the daemon calls (``strategies.registry.POLICIES``). Trades go
into an inverse perpetual (``LotSpec``, $10 lots like BTC-PERPETUAL) and pay a proportional fee,
a half spread and funding. All policies run in lockstep on the same paths, so their differences
are not Monte-Carlo noise.

Accounting (USD, per path; the daemon's ``TargetMode.USD`` with no other coin in the account):

* ``option_pnl``: the book's Black-76 value at the end minus at the start (payoff once expired);
* ``hedge_pnl``: the perpetual's P&L. An inverse contract's coin P&L kept in the account makes
  the position plus its P&L worth exactly ``amount / price_at_trade`` coin of USD exposure, so
  the hedge's delta is the sum of each trade's coin delta and its P&L is ``delta · ΔS``;
* ``hedge_error = option_pnl + hedge_pnl`` is what discrete hedging failed to replicate;
* ``cost = fees + spread + funding`` and ``hedged_pnl = hedge_error − cost``.

Funding is charged continuously on the USD position, ``rate_8h · amount · dt / 8 h`` (a long pays
a positive rate). Deribit's 30-minute delta decay before settlement is not modelled: options
settle on the last simulated price, so the full Black-76 delta is the right hedge to the end.

Entry point: :func:`run_backtest` with a :class:`BacktestConfig`; the engine alone is
:func:`simulate`, which takes any price paths (``(n_steps + 1, n_paths)``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from bot.backtest import paths
from bot.backtest.history import epoch_seconds, load_funding
from bot.backtest.paths import PathModel
from bot.domain import DataError
from bot.greeks import black76
from bot.units import FUNDING_PERIOD_SECONDS, SECONDS_PER_DAY, SECONDS_PER_YEAR
from strategies.common import HedgeState, LotSpec
from strategies.registry import POLICIES, PolicyParams, decide, make_params

Array = npt.NDArray[np.float64]
BTC_PERPETUAL_LOT = LotSpec(step=10.0, min_amount=10.0, inverse=True)


@dataclass(frozen=True)
class OptionLeg:
    """One option of the book: ``size`` in coin (negative = short), priced at ``sigma``
    (``None``: the path model's sigma). The strike is ``strike`` or ``moneyness × S0``."""

    option_type: Literal["call", "put"]
    size: float
    expiry_days: float
    strike: float | None = None
    moneyness: float = 1.0
    sigma: float | None = None

    def __post_init__(self) -> None:
        if self.option_type not in ("call", "put"):
            raise ValueError(f"option_type must be 'call' or 'put', got {self.option_type!r}")
        if not (math.isfinite(self.size) and self.expiry_days > 0 and self.moneyness > 0):
            raise ValueError("leg needs a finite size, positive expiry_days and moneyness")
        for name in ("strike", "sigma"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"leg {name} must be positive, got {value!r}")


@dataclass(frozen=True)
class CostModel:
    """Trading costs as fractions of the traded USD notional, and perpetual funding per 8 h:
    ``funding_rate_8h`` constant, or ``funding_file`` (Binance CSV) read from ``funding_start``
    (ISO UTC; a replay uses its own dates)."""

    fee_rate: float = 0.0005
    half_spread: float = 0.0
    funding_rate_8h: float = 0.0
    funding_file: str | None = None
    funding_start: str | None = None

    def __post_init__(self) -> None:
        if not (0 <= self.fee_rate < 0.1 and 0 <= self.half_spread < 0.1):
            raise ValueError("fee_rate and half_spread must be fractions in [0, 0.1)")
        if not math.isfinite(self.funding_rate_8h):
            raise ValueError("funding_rate_8h must be finite")


@dataclass(frozen=True)
class PolicyRun:
    """One policy and parameter set to backtest; ``label`` names it in reports."""

    policy: str
    params: PolicyParams
    label: str = ""

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"unknown policy {self.policy!r}; known: {sorted(POLICIES)}")
        if not self.label:
            values = ",".join(f"{k}={v}" for k, v in asdict(self.params).items())
            object.__setattr__(self, "label", f"{self.policy}({values})")

    @staticmethod
    def make(policy: str, **values: Any) -> PolicyRun:
        """``PolicyRun.make("delta_band", band=0.05)``: params built by the policy registry."""
        return PolicyRun(policy, make_params(policy, values))


@dataclass(frozen=True)
class BacktestConfig:
    """A whole backtest: book, policies, price model, costs, grid, hedge instrument.

    ``horizon_days`` must be a whole number of ``step_seconds``; the policies are asked at
    every step (so ``step_seconds`` plays the daemon's ``check_seconds``). ``initial_hedge`` is
    a starting perpetual position in the lot's unit (USD for inverse); ``unwind_at_end`` closes
    the hedge at the horizon and pays for it.
    """

    legs: tuple[OptionLeg, ...]
    policies: tuple[PolicyRun, ...]
    model: PathModel = field(default_factory=PathModel)
    costs: CostModel = CostModel()
    horizon_days: float = 7.0
    step_seconds: float = 900.0
    n_paths: int = 2000
    seed: int = 7
    lot: LotSpec = BTC_PERPETUAL_LOT
    target_delta: float = 0.0
    initial_hedge: float = 0.0
    unwind_at_end: bool = True

    def __post_init__(self) -> None:
        if not self.legs or not self.policies:
            raise ValueError("a backtest needs at least one option leg and one policy")
        if not (self.horizon_days > 0 and self.step_seconds > 0 and self.n_paths >= 1):
            raise ValueError("horizon_days, step_seconds and n_paths must be positive")
        steps = self.horizon_days * SECONDS_PER_DAY / self.step_seconds
        if abs(steps - round(steps)) > 1e-9 * steps:
            raise ValueError(f"horizon is {steps:.6g} steps; it must be a whole number")

    @property
    def n_steps(self) -> int:
        return round(self.horizon_days * SECONDS_PER_DAY / self.step_seconds)


@dataclass(frozen=True)
class PathOutcome:
    """Per-path results of one policy, USD (``trades`` a count)."""

    option_pnl: Array
    hedge_pnl: Array
    fees: Array
    spread: Array
    funding: Array
    turnover: Array
    trades: npt.NDArray[np.int64]

    @property
    def hedge_error(self) -> Array:
        return self.option_pnl + self.hedge_pnl

    @property
    def cost(self) -> Array:
        return self.fees + self.spread + self.funding

    @property
    def hedged_pnl(self) -> Array:
        return self.hedge_error - self.cost


def expected_shortfall(pnl: Array, level: float) -> float:
    """Mean loss (positive USD) over the worst ``1 − level`` share of outcomes."""
    n_tail = max(1, math.ceil(round((1.0 - level) * pnl.size, 9)))
    return float(-np.partition(pnl, n_tail - 1)[:n_tail].mean())


@dataclass(frozen=True)
class PolicyResult:
    """Summary of one policy run: means per path, stds across paths, USD."""

    label: str
    policy: str
    params: dict[str, Any]
    mean_pnl: float
    std_pnl: float
    hedge_error_mean: float
    hedge_error_std: float
    es95: float
    es99: float
    cost: float
    fees: float
    spread: float
    funding: float
    trades: float
    turnover_usd: float
    unhedged_std: float
    warnings: tuple[str, ...]
    outcome: PathOutcome = field(repr=False, compare=False)

    @staticmethod
    def of(run: PolicyRun, out: PathOutcome, warnings: tuple[str, ...]) -> PolicyResult:
        err = out.hedge_error
        return PolicyResult(
            label=run.label,
            policy=run.policy,
            params=asdict(run.params),
            mean_pnl=float(out.hedged_pnl.mean()),
            std_pnl=float(out.hedged_pnl.std()),
            hedge_error_mean=float(err.mean()),
            hedge_error_std=float(err.std()),
            es95=expected_shortfall(err, 0.95),
            es99=expected_shortfall(err, 0.99),
            cost=float(out.cost.mean()),
            fees=float(out.fees.mean()),
            spread=float(out.spread.mean()),
            funding=float(out.funding.mean()),
            trades=float(out.trades.mean()),
            turnover_usd=float(out.turnover.mean()),
            unhedged_std=float(out.option_pnl.std()),
            warnings=warnings,
            outcome=out,
        )

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "outcome"}
        d["warnings"] = list(self.warnings)
        return d


@dataclass(frozen=True)
class BacktestReport:
    """Everything a run produced; ``to_dict``/``to_json`` for the CLI and files."""

    config: BacktestConfig
    s0: float
    n_paths: int
    n_steps: int
    results: tuple[PolicyResult, ...]
    notes: tuple[str, ...] = ()

    def result(self, label: str) -> PolicyResult:
        for r in self.results:
            if r.label == label:
                return r
        raise KeyError(f"no result labelled {label!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": asdict(self.config),
            "s0": self.s0,
            "n_paths": self.n_paths,
            "n_steps": self.n_steps,
            "notes": list(self.notes),
            "results": [r.to_dict() for r in self.results],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)


def _funding_rates(config: BacktestConfig, epoch0: float | None) -> Array:
    """The 8-hour funding rate in force at each step's start, shape ``(n_steps,)``."""
    c = config.costs
    if c.funding_file is None:
        return np.full(config.n_steps, c.funding_rate_8h)
    if epoch0 is None and c.funding_start is None:
        raise ValueError("a funding_file on simulated paths needs costs.funding_start")
    start = epoch0 if epoch0 is not None else epoch_seconds(str(c.funding_start))
    series = load_funding(c.funding_file)
    return series.rate_at(start + config.step_seconds * np.arange(config.n_steps))


@dataclass
class _Hedger:
    """One policy's running state over all paths."""

    run: PolicyRun
    coin: Array  # hedge delta, coin
    amount: Array  # perpetual position in the lot's unit
    last: Array  # time of the last trade, s (-inf: never)
    out: dict[str, Array]
    trades: npt.NDArray[np.int64]
    warnings: set[str]


@dataclass(frozen=True)
class BookMarks:
    """The option book at one step, per path: USD value, coin delta (dV/dS), gamma (coin per
    USD), and the volatility and years to nearest expiry the gamma-scaled band reads."""

    value: Array
    delta: Array
    gamma: Array
    sigma: float
    tau: float


BookAt = Callable[[int], BookMarks]


def option_book(
    prices: Array, legs: tuple[OptionLeg, ...], step_seconds: float, default_sigma: float
) -> BookAt:
    """``legs`` priced by Black-76 at their fixed sigma on ``prices`` (steps ``step_seconds``
    apart). Moneyness strikes refer to ``prices[0]`` per path; a leg that expires inside the
    horizon settles at its intrinsic value on the first step at or after its expiry."""
    s0, n_paths = prices[0], prices.shape[1]
    strike = np.stack([s0 * g.moneyness if g.strike is None else s0 * 0 + g.strike for g in legs])
    sigma = np.array([[g.sigma or default_sigma] for g in legs])
    size = np.array([[g.size] for g in legs])
    is_call = np.array([[g.option_type == "call"] for g in legs])
    expiry = np.array([[g.expiry_days * SECONDS_PER_DAY] for g in legs])
    settled = np.full((len(legs), n_paths), np.nan)  # frozen value once a leg has expired

    def at(k: int) -> BookMarks:
        tau = (expiry - k * step_seconds) / SECONDS_PER_YEAR
        g = black76(prices[k], strike, tau, sigma, is_call)
        live = tau > 0
        settled[:] = np.where(~live & np.isnan(settled), g.price_usd, settled)
        alive = live[:, 0]
        return BookMarks(
            value=(size * np.where(live, g.price_usd, settled)).sum(0),
            delta=(size * g.delta).sum(0),
            gamma=(size * g.gamma).sum(0),
            sigma=float(sigma[alive, 0].mean()) if alive.any() else default_sigma,
            tau=float(tau[alive, 0].min()) if alive.any() else 0.0,
        )

    return at


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
) -> tuple[PolicyResult, ...]:
    """Hedge the book ``book_at(k)`` in the perpetual at ``prices`` (``(n_steps + 1, n_paths)``,
    rows at ``times`` seconds) with each policy, in lockstep; one result per policy, in order.

    At each step but the last every policy is asked, its trade is paid for at that step's price,
    then the hedge earns the move to the next step and funding for the time in between.
    ``funding_8h`` is the rate at each step (default: ``costs.funding_rate_8h``).
    """
    costs = costs or CostModel()
    if prices.ndim != 2 or prices.shape[0] < 2:
        raise DataError(f"prices must be (n_steps + 1, n_paths), got shape {prices.shape}")
    if not np.all(np.isfinite(prices)) or np.any(prices <= 0):
        raise DataError("prices must be positive and finite")
    n_steps, n_paths = prices.shape[0] - 1, prices.shape[1]
    if times.shape != (n_steps + 1,) or np.any(np.diff(times) <= 0):
        raise ValueError(f"times must be {n_steps + 1} increasing seconds, got {times.shape}")
    rates = np.full(n_steps, costs.funding_rate_8h) if funding_8h is None else funding_8h
    if rates.shape != (n_steps,):
        raise ValueError(f"funding_8h needs shape ({n_steps},), got {rates.shape}")

    coin0 = initial_hedge / prices[0] if lot.inverse else np.full(n_paths, initial_hedge)
    hedgers = [
        _Hedger(
            run=run,
            coin=coin0.copy(),
            amount=np.full(n_paths, float(initial_hedge)),
            last=np.full(n_paths, -np.inf),
            out={k: np.zeros(n_paths) for k in ("hedge", "fees", "spread", "funding", "turn")},
            trades=np.zeros(n_paths, dtype=np.int64),
            warnings=set(),
        )
        for run in policies
    ]

    def pay(h: _Hedger, amount: Array, price: Array) -> None:
        notional = np.abs(amount) if lot.inverse else np.abs(amount) * price
        h.out["fees"] += costs.fee_rate * notional
        h.out["spread"] += costs.half_spread * notional
        h.out["turn"] += notional
        h.trades += amount != 0

    first = book = book_at(0)
    for k in range(n_steps):
        price, move = prices[k], prices[k + 1] - prices[k]
        now = np.full(n_paths, times[k])
        funding_share = rates[k] * (times[k + 1] - times[k]) / FUNDING_PERIOD_SECONDS
        for h in hedgers:
            state = HedgeState(
                delta=book.delta + h.coin,
                target=np.full(n_paths, target_delta),
                gamma=book.gamma,
                price=price,
                now=now,
                last_rebalance=h.last,
                sigma=np.full(n_paths, book.sigma),
                tau=np.full(n_paths, book.tau),
            )
            orders = decide(h.run.policy, state, h.run.params, lot)
            h.warnings.update(orders.warnings)
            amount = orders.amount
            h.coin += amount / price if lot.inverse else amount
            h.amount += amount
            h.last = np.where(amount != 0, now, h.last)
            pay(h, amount, price)
            h.out["hedge"] += h.coin * move
            h.out["funding"] += funding_share * (h.amount if lot.inverse else h.amount * price)
        book = book_at(k + 1)

    results = []
    for h in hedgers:
        if unwind_at_end:
            pay(h, -h.amount, prices[-1])
        outcome = PathOutcome(
            option_pnl=book.value - first.value,
            hedge_pnl=h.out["hedge"],
            fees=h.out["fees"],
            spread=h.out["spread"],
            funding=h.out["funding"],
            turnover=h.out["turn"],
            trades=h.trades,
        )
        results.append(PolicyResult.of(h.run, outcome, tuple(sorted(h.warnings))[:5]))
    return tuple(results)


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
) -> tuple[PolicyResult, ...]:
    """Hedge Black-76 ``legs`` on ``prices`` (rows ``step_seconds`` apart) with each policy:
    :func:`option_book` fed to :func:`hedge_book`, whose keywords these are."""
    times = step_seconds * np.arange(prices.shape[0], dtype=np.float64)
    book = option_book(prices, legs, step_seconds, default_sigma)
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
    )


def run_backtest(config: BacktestConfig) -> BacktestReport:
    """Make the paths ``config`` describes and run every policy on them; seeded, reproducible."""
    gen = paths.generate(
        config.model, config.seed, config.n_steps, config.step_seconds, config.n_paths
    )
    prices, epoch0, notes = gen.prices, gen.epoch0, gen.notes
    results = simulate(
        prices,
        config.legs,
        config.policies,
        step_seconds=config.step_seconds,
        lot=config.lot,
        costs=config.costs,
        funding_8h=_funding_rates(config, epoch0),
        target_delta=config.target_delta,
        initial_hedge=config.initial_hedge,
        unwind_at_end=config.unwind_at_end,
        default_sigma=config.model.sigma,
    )
    return BacktestReport(
        config=config,
        s0=float(prices[0, 0]),
        n_paths=prices.shape[1],
        n_steps=prices.shape[0] - 1,
        results=results,
        notes=notes,
    )
