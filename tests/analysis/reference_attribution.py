"""Attribution as it was before it ran on columns (issue 13): the oracle for the tests."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from bot.analysis.attribution import (
    DEFAULT_FUNDING_RATE_8H as DEFAULT_FUNDING_RATE_8H,
)
from bot.analysis.attribution import (
    ConstantFunding as ConstantFunding,
)
from bot.analysis.attribution import (
    Funding as Funding,
)
from bot.analysis.attribution import (
    SeriesFunding as SeriesFunding,
)
from bot.domain import DataError, TargetMode
from bot.units import DAYS_PER_YEAR, SECONDS_PER_DAY, SECONDS_PER_YEAR

FloatArray = npt.NDArray[np.float64]


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


def attribute(observations: Sequence[Observation], funding: Funding) -> Attribution:
    """Split the P&L between each pair of consecutive observations (oldest first)."""
    obs = list(observations)
    for o in obs:
        for name in ("index_price", "hedge_price"):
            value = getattr(o, name)
            if not (math.isfinite(value) and value > 0):
                raise DataError(f"observation at {o.ts.isoformat()}: {name} {value!r}")
    for a, b in itertools.pairwise(obs):
        if b.ts <= a.ts:
            raise DataError(f"observations out of order at {b.ts.isoformat()}")
    n = max(0, len(obs) - 1)
    cols = {k: np.zeros(n) for k in _COLUMNS}
    ivs = [
        o.iv if o.iv is not None else break_even_vol(o.theta, o.gamma, o.index_price) for o in obs
    ]
    for i in range(n):
        _interval(obs[i], obs[i + 1], funding, cols, i)
    cols["residual"] = cols["actual"] - (
        cols["delta"] + cols["gamma"] + cols["theta"] + cols["vega"]
    )
    return Attribution(
        start=tuple(o.ts for o in obs[:-1]),
        end=tuple(o.ts for o in obs[1:]),
        implied_vol=tuple(ivs[:-1]) if n else (),
        vega_intervals=sum(1 for a, b in itertools.pairwise(obs) if _iv_pair(a, b) is not None),
        realised_vol=_realised(obs),
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


def _iv_pair(a: Observation, b: Observation) -> tuple[float, float] | None:
    if a.iv is None or b.iv is None:
        return None
    return a.iv, b.iv


def _interval(
    a: Observation,
    b: Observation,
    funding: Funding,
    cols: dict[str, FloatArray],
    i: int,
) -> None:
    s0, s1 = a.index_price, b.index_price
    ds = s1 - s0
    dt = (b.ts - a.ts).total_seconds() / SECONDS_PER_DAY
    coin = a.target_mode is TargetMode.COIN
    before_costs = b.equity - a.equity + a.costs  # coin
    if coin:
        actual = before_costs * s0
        delta = a.delta_held * ds * s0 / s1
    else:
        actual = b.equity * s1 - (a.equity - a.costs) * s0
        delta = a.delta_held * ds
    # Hedge P&L of the position held over the interval, in the same numeraire.
    h0, h1 = a.hedge_price, b.hedge_price
    if a.inverse:
        hedge_coin = a.hedge_held * (1.0 / h0 - 1.0 / h1)
    else:
        hedge_coin = a.hedge_held * (h1 - h0) / s1
    hedge = hedge_coin * (s0 if coin else s1)
    notional_usd = a.hedge_held if a.inverse else a.hedge_held * h0
    fund_usd = notional_usd * funding.accrued(a.ts, b.ts) if a.perpetual else 0.0
    cols["dt_days"][i] = dt
    cols["d_index"][i] = ds
    cols["actual"][i] = actual
    cols["delta"][i] = delta
    cols["gamma"][i] = 0.5 * a.gamma * ds * ds
    cols["theta"][i] = a.theta * dt
    ivs = _iv_pair(a, b)
    cols["vega"][i] = 0.0 if ivs is None else a.vega * (ivs[1] - ivs[0]) * 100.0
    cols["hedge_pnl"][i] = hedge
    cols["unhedged"][i] = actual - hedge
    cols["funding_usd"][i] = fund_usd
    cols["funding_coin"][i] = fund_usd / s0


def _realised(obs: Sequence[Observation]) -> float | None:
    """Annualised realised vol of the index over the observations (uneven spacing allowed)."""
    if len(obs) < 2:
        return None
    s = np.asarray([o.index_price for o in obs])
    years = (obs[-1].ts - obs[0].ts).total_seconds() / SECONDS_PER_YEAR
    r = np.diff(np.log(s))
    return math.sqrt(float(np.sum(r * r)) / years)


def _mean_iv(ivs: Sequence[float | None], dt: FloatArray) -> float | None:
    pairs = [(v, w) for v, w in zip(ivs, dt, strict=True) if v is not None]
    if not pairs:
        return None
    weights = sum(w for _, w in pairs)
    return sum(v * w for v, w in pairs) / weights if weights > 0 else None
