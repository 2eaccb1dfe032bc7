"""What the book does if the market moves: P&L, delta, gamma and the hedge on a price × vol grid.

``hedgebot risk`` answers the question a delta number cannot: how much the hedged book loses on
a 10% move, and where its gamma turns. Every grid point reprices the options with the same
Black-76 as the hedger (:func:`bot.greeks.black76`) on forwards and index shifted by the price
move and implied vols shifted by the vol move, and recomputes the greeks with
:func:`bot.greeks.portfolio_greeks` on the shifted book, so the zero-move point *is* the book's
current greeks.

P&L conventions: the account is collateralised in the coin. Options add ``size ×`` their change
of coin value (Black-76 USD price / forward); inverse futures and perpetuals of ``size`` USD add
``size·(1/M − 1/M')`` coin; linear ones ``size·(M' − M)`` USD. The USD P&L is the change of
``equity × index``. The hedge at a point is the order in the hedge instrument, rounded to its
lots, that takes the chosen target's delta back to the target there.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bot.analysis.tables import table
from bot.domain import (
    Book,
    DataError,
    InstrumentKind,
    OptionType,
    PortfolioGreeks,
    TargetMode,
    require_positive,
    utc,
)
from bot.greeks import black76, portfolio_greeks, year_fraction
from strategies.common import LotSpec
from strategies.lots import round_to_lots

FloatArray = npt.NDArray[np.float64]

DEFAULT_PRICE_MOVES: tuple[float, ...] = tuple(round(-0.30 + 0.05 * i, 2) for i in range(13))
DEFAULT_VOL_MOVES: tuple[float, ...] = (-20.0, -10.0, 0.0, 10.0, 20.0)  # vol points
MIN_SIGMA = 0.01  # a vol move that would take an IV below 1 vol point is floored there


@dataclass(frozen=True)
class GammaFlip:
    """A price level where the book's gamma changes sign (interpolated between grid points)."""

    vol_move: float
    index_price: float
    price_move: float
    direction: str  # "negative_to_positive" or "positive_to_negative", as the price rises


@dataclass(frozen=True)
class RiskGrid:
    """The book under every (vol move, price move): arrays of shape (n_vol, n_price).

    ``price_moves`` are fractions of the index (−0.1 = −10%), ``vol_moves`` vol points added
    to every option's IV. ``pnl_coin`` / ``pnl_usd`` against now; ``delta_coin`` Deribit's
    ``delta_total`` and ``delta_usd_target`` equity + delta_total (coin); ``gamma`` coin per
    USD; ``hedge_amount`` the order (hedge instrument's unit, rounded to its lots) that brings
    ``target_mode``'s delta to ``target`` at that point.
    """

    currency: str
    as_of: datetime
    index_price: float
    hedge_instrument: str
    target_mode: TargetMode
    target: float
    lot_step: float
    price_moves: tuple[float, ...]
    vol_moves: tuple[float, ...]
    index_prices: FloatArray  # (n_price,)
    pnl_coin: FloatArray
    pnl_usd: FloatArray
    delta_coin: FloatArray
    delta_usd_target: FloatArray
    gamma: FloatArray
    hedge_amount: FloatArray
    base: PortfolioGreeks
    gamma_flips: tuple[GammaFlip, ...]
    warnings: tuple[str, ...] = ()

    def point(self, price_move: float, vol_move: float) -> dict[str, float]:
        """The figures at one grid point (both moves must be on the grid)."""
        j = _index_of(self.price_moves, price_move, "price move")
        i = _index_of(self.vol_moves, vol_move, "vol move")
        return {
            "index_price": float(self.index_prices[j]),
            "pnl_coin": float(self.pnl_coin[i, j]),
            "pnl_usd": float(self.pnl_usd[i, j]),
            "delta_coin": float(self.delta_coin[i, j]),
            "delta_usd_target": float(self.delta_usd_target[i, j]),
            "gamma": float(self.gamma[i, j]),
            "hedge_amount": float(self.hedge_amount[i, j]),
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data: lists of lists (vol move rows, price move columns)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                value = value.tolist()
            elif isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, PortfolioGreeks | GammaFlip):
                value = dataclasses.asdict(value)
            elif f.name == "gamma_flips":
                value = [dataclasses.asdict(g) for g in value]
            elif isinstance(value, TargetMode):
                value = value.value
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out


def _index_of(values: tuple[float, ...], value: float, what: str) -> int:
    for k, v in enumerate(values):
        if math.isclose(v, value, abs_tol=1e-12):
            return k
    raise KeyError(f"{what} {value!r} is not on the grid {values}")


def _moves(name: str, values: Sequence[float], lower: float | None) -> tuple[float, ...]:
    moves = tuple(float(v) for v in values)
    if not moves:
        raise ValueError(f"{name} must not be empty")
    for v in moves:
        if not math.isfinite(v) or (lower is not None and v <= lower):
            raise ValueError(f"{name} must be finite and above {lower}, got {v!r}")
    if len(set(moves)) != len(moves) or list(moves) != sorted(moves):
        raise ValueError(f"{name} must be increasing without repeats, got {moves}")
    return moves


def scenario_grid(
    book: Book,
    now: datetime,
    price_moves: Sequence[float] = DEFAULT_PRICE_MOVES,
    vol_moves: Sequence[float] = DEFAULT_VOL_MOVES,
    lot: LotSpec | None = None,
    *,
    target_mode: TargetMode = TargetMode.COIN,
    target: float = 0.0,
) -> RiskGrid:
    """Reprice ``book`` at ``now`` on every (vol move, price move) of the grid.

    ``lot`` defaults to the hedge instrument's step and minimum. Raises DataError for a book
    whose marks cannot be priced (as :func:`portfolio_greeks` does), ValueError for a bad grid.
    """
    pm = _moves("price_moves", price_moves, -1.0)
    vm = _moves("vol_moves", vol_moves, None)
    now = utc(now)
    inst = book.hedge_instrument
    lot = lot or LotSpec(inst.amount_step, inst.min_amount, inst.inverse)
    base = portfolio_greeks(book, now)
    index = require_positive("index_price", book.index_price)
    hedge_mid = require_positive(f"{inst.name} hedge mid", book.hedge_quote.mid)
    moves = np.asarray(pm)
    index_prices = index * (1.0 + moves)

    option_pnl, warnings = _option_pnl(book, now, moves, np.asarray(vm))
    futures_coin, futures_usd = _futures_pnl(book, moves)
    pnl_coin = option_pnl + futures_coin + futures_usd / index_prices
    equity = base.equity + pnl_coin
    pnl_usd = equity * index_prices - base.equity * index

    shape = (len(vm), len(pm))
    delta_coin, delta_usd, gamma = np.empty(shape), np.empty(shape), np.empty(shape)
    for i, v in enumerate(vm):
        for j, m in enumerate(pm):
            g = portfolio_greeks(_shifted(book, m, v, float(equity[i, j])), now)
            delta_coin[i, j], delta_usd[i, j], gamma[i, j] = (
                g.delta_coin,
                g.delta_usd_target,
                g.gamma,
            )
    held = delta_coin if target_mode is TargetMode.COIN else delta_usd
    hedge_prices = np.broadcast_to(hedge_mid * (1.0 + moves), shape)
    hedge = round_to_lots(target - held, np.ascontiguousarray(hedge_prices), lot).amount
    return RiskGrid(
        currency=book.currency,
        as_of=now,
        index_price=index,
        hedge_instrument=inst.name,
        target_mode=target_mode,
        target=target,
        lot_step=lot.step,
        price_moves=pm,
        vol_moves=vm,
        index_prices=index_prices,
        pnl_coin=pnl_coin,
        pnl_usd=pnl_usd,
        delta_coin=delta_coin,
        delta_usd_target=delta_usd,
        gamma=gamma,
        hedge_amount=np.asarray(hedge, dtype=np.float64),
        base=base,
        gamma_flips=_gamma_flips(gamma, index_prices, index, vm),
        warnings=warnings,
    )


def _live_options(book: Book, now: datetime) -> list[tuple[float, ...]]:
    """(size, forward, strike, iv, tau, is_call, inverse) of each unexpired option position."""
    out: list[tuple[float, ...]] = []
    for pos in book.positions:
        inst = pos.instrument
        if inst.kind is not InstrumentKind.OPTION or pos.size == 0.0:
            continue
        if inst.expiry is None or inst.strike is None or inst.option_type is None:
            raise DataError(f"{inst.name}: option without expiry, strike or type")
        if now >= utc(inst.expiry):
            continue
        mark = book.marks.get(inst.name)
        if mark is None or mark.mark_iv is None:
            raise DataError(f"{inst.name}: no mark with an IV for option position")
        out.append(
            (
                pos.size,
                require_positive(f"{inst.name} underlying_price", mark.underlying_price),
                inst.strike,
                require_positive(f"{inst.name} mark_iv", mark.mark_iv),
                year_fraction(now, inst.expiry),
                inst.option_type is OptionType.CALL,
                inst.inverse,
            )
        )
    return out


def _option_pnl(
    book: Book, now: datetime, moves: FloatArray, vol_points: FloatArray
) -> tuple[FloatArray, tuple[str, ...]]:
    """Coin P&L of the options on the grid; linear options' USD P&L is turned into coin."""
    shape = (vol_points.size, moves.size)
    legs = _live_options(book, now)
    if not legs:
        return np.zeros(shape), ()
    size, fwd, strike, iv, tau, call_f, inverse_f = (np.asarray(c) for c in zip(*legs, strict=True))
    call, inverse = call_f.astype(bool), inverse_f.astype(bool)
    raw = iv[None, None, :] + vol_points[:, None, None] / 100.0
    sigma = np.maximum(raw, MIN_SIGMA)
    warnings: tuple[str, ...] = ()
    if (raw < MIN_SIGMA).any():
        warnings = (
            f"vol moves down to {vol_points.min():+g} points floor some IVs at {MIN_SIGMA}",
        )
    f_new = fwd[None, None, :] * (1.0 + moves[None, :, None])
    now_g = black76(fwd, strike, tau, iv, call)
    new_g = black76(f_new, strike, tau, sigma, call)
    index_new = book.index_price * (1.0 + moves)
    coin_now = np.where(inverse, now_g.price_coin, now_g.price_usd / book.index_price)
    coin_new = np.where(inverse, new_g.price_coin, new_g.price_usd / index_new[None, :, None])
    return np.asarray((coin_new - coin_now) @ size, dtype=np.float64), warnings


def _futures_pnl(book: Book, moves: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(coin P&L of inverse, USD P&L of linear) futures and perpetuals, per price move."""
    coin = np.zeros_like(moves)
    usd = np.zeros_like(moves)
    for pos in book.positions:
        inst = pos.instrument
        if inst.kind is InstrumentKind.OPTION or pos.size == 0.0:
            continue
        if inst.expiry is not None and book.as_of >= utc(inst.expiry):
            continue
        mark = book.marks.get(inst.name)
        price = mark.mark_price if mark is not None else book.hedge_quote.mark
        m0 = require_positive(f"{inst.name} mark_price", price)
        if inst.inverse:
            coin += pos.size * (1.0 / m0 - 1.0 / (m0 * (1.0 + moves)))
        else:
            usd += pos.size * m0 * moves
    return coin, usd


def _shifted(book: Book, move: float, vol_points: float, equity: float) -> Book:
    """``book`` with every price scaled by ``1 + move``, IVs raised by ``vol_points``."""
    k = 1.0 + move
    marks = {}
    for name, mark in book.marks.items():
        is_option = mark.mark_iv is not None
        marks[name] = dataclasses.replace(
            mark,
            mark_price=mark.mark_price if is_option else mark.mark_price * k,
            underlying_price=mark.underlying_price * k,
            index_price=mark.index_price * k,
            mark_iv=None
            if mark.mark_iv is None
            else max(MIN_SIGMA, mark.mark_iv + vol_points / 100),
        )
    q = book.hedge_quote
    quote = dataclasses.replace(
        q, bid=q.bid * k, ask=q.ask * k, mark=q.mark * k, index_price=q.index_price * k
    )
    account = dataclasses.replace(book.account, equity=equity)
    return dataclasses.replace(book, marks=marks, hedge_quote=quote, account=account)


def _gamma_flips(
    gamma: FloatArray, prices: FloatArray, index: float, vol_moves: tuple[float, ...]
) -> tuple[GammaFlip, ...]:
    flips = []
    for i, v in enumerate(vol_moves):
        g = gamma[i]
        for j in range(g.size - 1):
            a, b = g[j], g[j + 1]
            if a == 0.0 or (a > 0) == (b > 0) or b == 0.0:
                continue
            price = prices[j] + (prices[j + 1] - prices[j]) * a / (a - b)
            flips.append(
                GammaFlip(
                    vol_move=v,
                    index_price=float(price),
                    price_move=float(price / index - 1.0),
                    direction="negative_to_positive" if a < 0 else "positive_to_negative",
                )
            )
    return tuple(flips)


def render_risk(grid: RiskGrid) -> str:
    """The grid as terminal tables: P&L by price × vol, then the unshifted-vol row in full."""
    ccy, g = grid.currency, grid.base
    lines = [
        f"{ccy} risk at {grid.as_of:%Y-%m-%d %H:%M} UTC, index {grid.index_price:,.2f}",
        f"  now: delta {g.delta_coin:+.4f} {ccy} (usd target {g.delta_usd_target:+.4f}), "
        f"gamma {g.gamma:+.3e} {ccy}/USD, vega {g.vega:+,.2f} USD/pt, "
        f"theta {g.theta:+,.2f} USD/day",
        "",
    ]
    lines.append(
        table(
            "P&L in USD (rows: price move; columns: vol move in points)",
            ["move", "index (USD)", *(f"vol {v:+.0f}" for v in grid.vol_moves)],
            [
                (
                    f"{m:+.0%}",
                    f"{grid.index_prices[j]:,.0f}",
                    *(f"{grid.pnl_usd[i, j]:+,.0f}" for i in range(len(grid.vol_moves))),
                )
                for j, m in enumerate(grid.price_moves)
            ],
            right=range(len(grid.vol_moves) + 2),
        )
    )
    i0 = int(np.argmin(np.abs(np.asarray(grid.vol_moves))))
    v0 = grid.vol_moves[i0]
    lines.append(
        table(
            f"At vol move {v0:+g} points (hedge: {grid.hedge_instrument} order to "
            f"{grid.target:+g} {grid.target_mode.value} delta, lots of {grid.lot_step:g})",
            [
                "move",
                "index (USD)",
                f"P&L ({ccy})",
                "P&L (USD)",
                f"delta ({ccy})",
                f"usd-delta ({ccy})",
                f"gamma ({ccy}/USD)",
                "hedge order",
            ],
            [
                (
                    f"{m:+.0%}",
                    f"{grid.index_prices[j]:,.0f}",
                    f"{grid.pnl_coin[i0, j]:+.4f}",
                    f"{grid.pnl_usd[i0, j]:+,.0f}",
                    f"{grid.delta_coin[i0, j]:+.4f}",
                    f"{grid.delta_usd_target[i0, j]:+.4f}",
                    f"{grid.gamma[i0, j]:+.3e}",
                    f"{grid.hedge_amount[i0, j]:+,.0f}",
                )
                for j, m in enumerate(grid.price_moves)
            ],
            right=range(8),
        )
    )
    lines.append("")
    if grid.gamma_flips:
        lines.append("Gamma changes sign:")
        for f in grid.gamma_flips:
            lines.append(
                f"  vol {f.vol_move:+g} pts: at index {f.index_price:,.0f} ({f.price_move:+.1%}),"
                f" {f.direction.replace('_', ' ')}"
            )
    else:
        sign = (
            "negative"
            if np.all(grid.gamma < 0)
            else "positive"
            if np.all(grid.gamma > 0)
            else "mixed/zero"
        )
        lines.append(f"Gamma does not change sign on the grid ({sign}).")
    lines += [f"warning: {w}" for w in grid.warnings]
    return "\n".join(lines)


def plot_gamma_profile(grid: RiskGrid, path: str | Path) -> Path:
    """Gamma and P&L against the index, one line per vol move, gamma flips marked.

    P&L is drawn in the numeraire the hedge flattens (coin for the coin target, USD for the
    USD target): that is the curve whose shape the hedge leaves, not the collateral's delta.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig, (ax_g, ax_p) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    try:
        coin = grid.target_mode is TargetMode.COIN
        pnl, unit = (grid.pnl_coin, grid.currency) if coin else (grid.pnl_usd, "USD")
        for i, v in enumerate(grid.vol_moves):
            label = f"vol {v:+g} pts"
            ax_g.plot(grid.index_prices, grid.gamma[i], marker=".", label=label)
            ax_p.plot(grid.index_prices, pnl[i], marker=".", label=label)
        for f in grid.gamma_flips:
            ax_g.axvline(f.index_price, color="grey", linestyle=":", linewidth=0.8)
        for ax in (ax_g, ax_p):
            ax.axhline(0.0, color="black", linewidth=0.6)
            ax.axvline(grid.index_price, color="red", linewidth=0.6, label="_now")
            ax.grid(alpha=0.3)
        ax_g.set_ylabel(f"gamma ({grid.currency} per USD)")
        ax_g.set_title(
            f"{grid.currency} book under price and vol moves, {grid.as_of:%Y-%m-%d %H:%M} UTC"
        )
        ax_g.legend(fontsize=8)
        ax_p.set_ylabel(f"P&L ({unit}, the {grid.target_mode.value} target's numeraire)")
        ax_p.set_xlabel("index price (USD)")
        fig.tight_layout()
        fig.savefig(out, dpi=110)
    finally:
        plt.close(fig)
    return out
