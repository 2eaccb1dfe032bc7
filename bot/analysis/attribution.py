"""What happened to the hedged book between two rebalances: P&L by greek, funding, variance.

Between consecutive rebalances ``i`` and ``i+1`` (index ``S``, ``dS``, ``dt`` days) the book's
P&L before costs is split with the greeks stored at ``i`` (``delta`` held after the cycle's
trade, in the target's terms):

- delta ``Δ·dS`` (coin target: ``Δ·dS·S_i/S_{i+1}``, the exact inverse-contract form),
- gamma ``½·Γ·dS²``, theta ``Θ·dt``, vega ``vega·dσ`` (``dσ`` in vol points, from the mean IV
  stored with the greeks; without one the vega P&L stays in the residual),
- residual: what the greeks do not explain (higher orders, funding actually paid, basis, marks,
  a smile that moves with spot).

The P&L is measured in the numeraire the target flattens: USD target, the change of
``equity × index``; coin target, the change of equity (coin) valued at ``S_i``. Fees and
slippage of the cycle's own fills are added back: they are costs, counted apart.

The book's implied vol at a rebalance is the mean IV stored with its greeks when there is one,
else its *break-even* vol ``σ² = −2·365·Θ / (Γ·S²)``: the realised vol at which gamma and theta
P&L cancel (exact for Black-76 with Θ per calendar day; a dollar-gamma-weighted mean of the
options' IVs for a book of several). The break-even vol is good for "realised against implied"
but not for ``dσ``: as spot moves, the weights of a multi-strike book shift and move it with no
IV changing. It is None when Θ and Γ do not have opposite signs (a calendar spread) or Γ = 0.

Funding on a perpetual hedge accrues at a rate per 8 hours: :class:`ConstantFunding` (Deribit's
typical 0.01%/8 h) or :class:`SeriesFunding` over a recorded series (``bot.backtest.history``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from bot.domain import DataError, TargetMode
from bot.units import DAYS_PER_YEAR, FUNDING_PERIOD_SECONDS, SECONDS_PER_DAY, SECONDS_PER_YEAR

if TYPE_CHECKING:  # an annotation only: the report imports pandas only for a funding file
    from bot.backtest.history import FundingSeries

FloatArray = npt.NDArray[np.float64]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
DEFAULT_FUNDING_RATE_8H = 0.0001  # 0.01% per 8 h: the perpetual's neutral rate (Deribit, Binance)


class Funding(Protocol):
    """Funding owed by a long position of one USD of notional, summed over a time span."""

    def accrued(self, start: datetime, end: datetime) -> float:
        """Σ rate_8h × (time / 8 h) over [start, end]: positive means longs pay."""
        ...


@dataclass(frozen=True)
class ConstantFunding:
    """A constant rate per 8 hours (default 0.0001), accrued continuously as Deribit does."""

    rate_8h: float = DEFAULT_FUNDING_RATE_8H

    def __post_init__(self) -> None:
        if not math.isfinite(self.rate_8h):
            raise DataError(f"funding rate must be finite, got {self.rate_8h!r}")

    def accrued(self, start: datetime, end: datetime) -> float:
        return self.rate_8h * (end - start).total_seconds() / FUNDING_PERIOD_SECONDS


class SeriesFunding:
    """A recorded funding series: ``rate_8h[i]`` applies from ``times[i]`` to the next time
    (``bot.backtest.history.FundingSeries``' convention; the last one for 8 h). Spans outside the
    series are a DataError, never extrapolated."""

    def __init__(self, series: FundingSeries) -> None:
        t = series.times.astype(np.float64)
        edges = np.append(t, t[-1] + FUNDING_PERIOD_SECONDS)
        periods = np.diff(edges) / FUNDING_PERIOD_SECONDS
        self._edges = edges
        self._cum = np.concatenate(([0.0], np.cumsum(series.rate_8h * periods)))

    def accrued(self, start: datetime, end: datetime) -> float:
        t0, t1 = start.timestamp(), end.timestamp()
        lo, hi = self._edges[0], self._edges[-1]
        if t0 < lo or t1 > hi:
            raise DataError(
                f"funding series covers {datetime.fromtimestamp(lo, UTC).isoformat()}"
                f"..{datetime.fromtimestamp(hi, UTC).isoformat()}, not "
                f"{start.isoformat()}..{end.isoformat()}"
            )
        return float(np.interp(t1, self._edges, self._cum) - np.interp(t0, self._edges, self._cum))


@dataclass(frozen=True)
class Observation:
    """One rebalance as attribution sees it (all figures at the cycle's read).

    ``delta_held`` is the target's delta after the cycle's fills (coin); ``hedge_held`` the
    hedge position after them (instrument unit: USD for inverse perpetuals); ``costs`` the
    fees and slippage of those fills in coin; ``hedge_price`` the hedge mid.
    """

    ts: datetime
    index_price: float
    hedge_price: float
    equity: float
    delta_held: float
    gamma: float
    vega: float
    theta: float
    target_mode: TargetMode
    hedge_held: float
    costs: float
    inverse: bool = True
    perpetual: bool = True
    iv: float | None = None  # mean IV stored with the greeks (decimal), when recorded


def break_even_vol(theta: float, gamma: float, price: float) -> float | None:
    """The book's implied (break-even) vol from its Θ (USD/day) and Γ (coin/USD), or None."""
    if gamma == 0.0 or not all(math.isfinite(x) for x in (theta, gamma, price)):
        return None
    var = -2.0 * DAYS_PER_YEAR * theta / (gamma * price * price)
    return math.sqrt(var) if var > 0 else None


@dataclass(frozen=True)
class Attribution:
    """Per interval arrays (length ``n``, one per pair of consecutive observations), in USD of
    each interval's numeraire (see the module docstring), and the period's figures."""

    start: tuple[datetime, ...]
    end: tuple[datetime, ...]
    dt_days: FloatArray
    d_index: FloatArray
    actual: FloatArray
    delta: FloatArray
    gamma: FloatArray
    theta: FloatArray
    vega: FloatArray
    residual: FloatArray
    hedge_pnl: FloatArray
    unhedged: FloatArray
    funding_usd: FloatArray
    funding_coin: FloatArray
    implied_vol: tuple[float | None, ...]  # at each interval's start: stored IV, else break-even
    vega_intervals: int  # intervals whose vega part came from stored IVs (others: 0, residual)
    realised_vol: float | None
    implied_vol_mean: float | None  # time-weighted over intervals where it is defined
    variance_hedged: float | None
    variance_unhedged: float | None

    @property
    def n(self) -> int:
        return len(self.start)

    @property
    def variance_removed(self) -> float | None:
        if self.variance_hedged is None or self.variance_unhedged is None:
            return None
        return self.variance_unhedged - self.variance_hedged


@dataclass(frozen=True)
class ObservationColumns:
    """Observations as columns (oldest first): what :func:`attribute_columns` reads, so a
    year of rebalances costs arrays, not a million objects. NaN in ``iv`` means no IV stored;
    ``coin``, ``inverse``, ``perpetual`` are per observation (see :class:`Observation`)."""

    ts: Sequence[datetime]
    ts_us: npt.NDArray[np.int64]  # the same times in microseconds since the epoch
    index_price: FloatArray
    hedge_price: FloatArray
    equity: FloatArray
    delta_held: FloatArray
    gamma: FloatArray
    vega: FloatArray
    theta: FloatArray
    hedge_held: FloatArray
    costs: FloatArray
    iv: FloatArray
    coin: npt.NDArray[np.bool_]
    inverse: npt.NDArray[np.bool_]
    perpetual: npt.NDArray[np.bool_]

    @classmethod
    def of(cls, observations: Sequence[Observation]) -> ObservationColumns:
        obs = list(observations)

        def col(name: str) -> FloatArray:
            return np.asarray([getattr(o, name) for o in obs], dtype=np.float64)

        def flag(values: list[bool]) -> npt.NDArray[np.bool_]:
            return np.asarray(values, dtype=np.bool_)

        return cls(
            ts=[o.ts for o in obs],
            ts_us=np.asarray([(o.ts - _EPOCH) // _MICROSECOND for o in obs], dtype=np.int64),
            index_price=col("index_price"),
            hedge_price=col("hedge_price"),
            equity=col("equity"),
            delta_held=col("delta_held"),
            gamma=col("gamma"),
            vega=col("vega"),
            theta=col("theta"),
            hedge_held=col("hedge_held"),
            costs=col("costs"),
            iv=np.asarray([math.nan if o.iv is None else o.iv for o in obs], dtype=np.float64),
            coin=flag([o.target_mode is TargetMode.COIN for o in obs]),
            inverse=flag([o.inverse for o in obs]),
            perpetual=flag([o.perpetual for o in obs]),
        )


def attribute(observations: Sequence[Observation], funding: Funding) -> Attribution:
    """Split the P&L between each pair of consecutive observations (oldest first)."""
    return attribute_columns(ObservationColumns.of(observations), funding)


def attribute_columns(obs: ObservationColumns, funding: Funding) -> Attribution:
    """:func:`attribute` over columns: the same formulas, element by element, as arrays."""
    ts = list(obs.ts)
    for name in ("index_price", "hedge_price"):
        values = getattr(obs, name)
        bad = np.flatnonzero(~(np.isfinite(values) & (values > 0)))
        if bad.size:
            k = int(bad[0])
            raise DataError(f"observation at {ts[k].isoformat()}: {name} {float(values[k])!r}")
    back = np.flatnonzero(np.diff(obs.ts_us) <= 0)
    if back.size:
        raise DataError(f"observations out of order at {ts[int(back[0]) + 1].isoformat()}")
    n = max(0, len(ts) - 1)
    iv_list: list[float | None] = [None if math.isnan(v) else v for v in obs.iv.tolist()]
    ivs = [
        v if v is not None else break_even_vol(th, g, s)
        for v, th, g, s in zip(
            iv_list, obs.theta.tolist(), obs.gamma.tolist(), obs.index_price.tolist(), strict=True
        )
    ]
    cols = _intervals(obs, ts, funding) if n else {k: np.zeros(0) for k in _COLUMNS}
    has_iv = ~np.isnan(obs.iv)
    return Attribution(
        start=tuple(ts[:-1]),
        end=tuple(ts[1:]),
        implied_vol=tuple(ivs[:-1]) if n else (),
        vega_intervals=int(np.count_nonzero(has_iv[:-1] & has_iv[1:])) if n else 0,
        realised_vol=_realised(obs.index_price, ts),
        implied_vol_mean=_mean_iv(ivs[:-1], cols["dt_days"]) if n else None,
        variance_hedged=float(np.var(cols["actual"], ddof=1)) if n >= 2 else None,
        variance_unhedged=float(np.var(cols["unhedged"], ddof=1)) if n >= 2 else None,
        **cols,
    )


_COLUMNS = (
    "dt_days",
    "d_index",
    "actual",
    "delta",
    "gamma",
    "theta",
    "vega",
    "residual",
    "hedge_pnl",
    "unhedged",
    "funding_usd",
    "funding_coin",
)


def _intervals(
    obs: ObservationColumns, ts: list[datetime], funding: Funding
) -> dict[str, FloatArray]:
    """Every interval ``i → i+1`` at once, with the greeks and positions held at ``i``."""
    s0, s1 = obs.index_price[:-1], obs.index_price[1:]
    ds = s1 - s0
    # (b - a).total_seconds(), exactly: whole microseconds over 1e6, both exact doubles.
    seconds = np.diff(obs.ts_us).astype(np.float64) / 1e6
    dt = seconds / SECONDS_PER_DAY
    coin = obs.coin[:-1]
    eq0, eq1, costs = obs.equity[:-1], obs.equity[1:], obs.costs[:-1]
    held = obs.delta_held[:-1]
    before_costs = eq1 - eq0 + costs  # coin
    actual = np.where(coin, before_costs * s0, eq1 * s1 - (eq0 - costs) * s0)
    delta = np.where(coin, held * ds * s0 / s1, held * ds)
    # Hedge P&L of the position held over the interval, in the same numeraire.
    h0, h1 = obs.hedge_price[:-1], obs.hedge_price[1:]
    inverse, hedge_held = obs.inverse[:-1], obs.hedge_held[:-1]
    hedge_coin = np.where(inverse, hedge_held * (1.0 / h0 - 1.0 / h1), hedge_held * (h1 - h0) / s1)
    hedge = hedge_coin * np.where(coin, s0, s1)
    notional_usd = np.where(inverse, hedge_held, hedge_held * h0)
    if isinstance(funding, ConstantFunding):
        # ConstantFunding.accrued over every interval at once: the same operations, in order.
        accrued = funding.rate_8h * seconds / FUNDING_PERIOD_SECONDS
    else:
        accrued = np.asarray(
            [
                funding.accrued(a, b) if perpetual else 0.0
                for a, b, perpetual in zip(
                    ts[:-1], ts[1:], obs.perpetual[:-1].tolist(), strict=True
                )
            ],
            dtype=np.float64,
        )
    fund_usd = np.where(obs.perpetual[:-1], notional_usd * accrued, 0.0)
    iv0, iv1 = obs.iv[:-1], obs.iv[1:]
    both = ~(np.isnan(iv0) | np.isnan(iv1))
    cols = {
        "dt_days": dt,
        "d_index": ds,
        "actual": actual,
        "delta": delta,
        "gamma": 0.5 * obs.gamma[:-1] * ds * ds,
        "theta": obs.theta[:-1] * dt,
        "vega": np.where(both, obs.vega[:-1] * (iv1 - iv0) * 100.0, 0.0),
        "hedge_pnl": hedge,
        "unhedged": actual - hedge,
        "funding_usd": fund_usd,
        "funding_coin": fund_usd / s0,
    }
    cols["residual"] = cols["actual"] - (
        cols["delta"] + cols["gamma"] + cols["theta"] + cols["vega"]
    )
    return {k: np.ascontiguousarray(cols[k], dtype=np.float64) for k in _COLUMNS}


def _realised(index_price: FloatArray, ts: Sequence[datetime]) -> float | None:
    """Annualised realised vol of the index over the observations (uneven spacing allowed)."""
    if len(ts) < 2:
        return None
    years = (ts[-1] - ts[0]).total_seconds() / SECONDS_PER_YEAR
    r = np.diff(np.log(index_price))
    return math.sqrt(float(np.sum(r * r)) / years)


def _mean_iv(ivs: Sequence[float | None], dt: FloatArray) -> float | None:
    pairs = [(v, w) for v, w in zip(ivs, dt, strict=True) if v is not None]
    if not pairs:
        return None
    weights = sum(w for _, w in pairs)
    return sum(v * w for v, w in pairs) / weights if weights > 0 else None
