"""The hedge account's bookkeeping of one step, compiled: one pass over the paths.

After a policy answers, the loop of :mod:`bot.backtest.loop` adds the trade to the hedge,
stamps the trade time, pays fees and spread on the notional, counts the trade, then earns
the move and funding: in numpy a dozen passes over memory and as many temporary arrays per
step and policy. This kernel does the same arithmetic, operation for operation (so the same
bits), in one pass without allocating. numba compiles it once, cached.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]


@numba.njit(cache=True, nogil=True)
def _settle(
    amount: Array,
    delta_change: Array,
    price: Array,
    move: Array,
    now: float,
    disc: float,
    fee_rate: float,
    half_spread: float,
    inverse: bool,
    funding_rate: float,
    coin: Array,
    position: Array,
    last: Array,
    trades: npt.NDArray[np.int64],
    hedge: Array,
    fees: Array,
    spread: Array,
    funding: Array,
    turn: Array,
) -> None:
    n = amount.shape[0]
    traded = False
    for p in range(n):
        if amount[p] != 0.0:
            traded = True
            break
    charged = fee_rate != 0.0 or half_spread != 0.0
    for p in range(n):
        a = amount[p]
        if traded:
            coin[p] += delta_change[p]
            position[p] += a
            if a != 0.0:
                last[p] = now
            notional = abs(a) if inverse else abs(a) * price[p]
            if disc != 1.0:
                notional = notional * disc
            if charged:
                fees[p] += fee_rate * notional
                spread[p] += half_spread * notional
            turn[p] += notional
            if a != 0.0:
                trades[p] += 1
        hedge[p] += coin[p] * move[p]
        if funding_rate != 0.0:
            usd = position[p] if inverse else position[p] * price[p]
            funding[p] += funding_rate * usd


def settle(
    amount: Array,
    delta_change: Array,
    price: Array,
    move: Array,
    *,
    now: float,
    disc: float,
    fee_rate: float,
    half_spread: float,
    inverse: bool,
    funding_rate: float,
    coin: Array,
    position: Array,
    last: Array,
    trades: npt.NDArray[np.int64],
    out: dict[str, Array],
) -> None:
    """One step of one policy's account over every path, in place.

    When any path trades: ``coin += delta_change``, ``position += amount``, ``last = now``
    where it traded, and the trade's notional (``|amount|``, times ``price`` unless
    ``inverse``, times ``disc``) is charged ``fee_rate`` and ``half_spread`` and counted in
    ``turn``. Every path then earns ``coin · move`` and pays ``funding_rate`` (already the
    step's share, discounted) on the position's USD value. ``out`` holds the ``hedge``,
    ``fees``, ``spread``, ``funding`` and ``turn`` columns."""
    n = coin.shape[0]

    def column(x: Array) -> Array:
        return np.ascontiguousarray(np.broadcast_to(np.asarray(x, dtype=np.float64), (n,)))

    kernel: Any = _settle
    kernel(
        column(amount),
        column(delta_change),
        column(price),
        column(move),
        float(now),
        float(disc),
        float(fee_rate),
        float(half_spread),
        bool(inverse),
        float(funding_rate),
        coin,
        position,
        last,
        trades,
        out["hedge"],
        out["fees"],
        out["spread"],
        out["funding"],
        out["turn"],
    )
