"""The hedge account's bookkeeping of one step, compiled: one pass over the paths.

After a policy answers, the loop of :mod:`bot.backtest.loop` adds the trade to the hedge,
stamps the trade time, pays fees and spread on the notional, counts the trade, then earns
the move and funding: in numpy a dozen passes over memory and as many temporary arrays per
step and policy. This kernel does the same arithmetic, operation for operation (so the same
bits), in a few short compiled loops without allocating. numba compiles it once, cached.

:func:`book_delta` is the other per-step pass: the book's delta plus a hedge's, into a buffer
the loop reuses, while it checks that the book's delta is finite.
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
    move_from: Array,
    from_price: bool,
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
    # Short loops over a few arrays each, every condition decided once outside them: with ten
    # arrays in one loop the compiler cannot rule out that they overlap and leaves it scalar;
    # these it vectorises. Each element sees the same operations in the same order.
    if traded:
        for p in range(n):
            coin[p] += delta_change[p]
        for p in range(n):
            position[p] += amount[p]
        for p in range(n):
            last[p] = now if amount[p] != 0.0 else last[p]
        for p in range(n):
            trades[p] += 1 if amount[p] != 0.0 else 0
        for p in range(n):
            notional = abs(amount[p]) if inverse else abs(amount[p]) * price[p]
            if disc != 1.0:
                notional = notional * disc
            turn[p] += notional
            if charged:
                fees[p] += fee_rate * notional
                spread[p] += half_spread * notional
    if from_price:
        for p in range(n):
            hedge[p] += coin[p] * (move[p] - move_from[p])
    else:
        for p in range(n):
            hedge[p] += coin[p] * move[p]
    if funding_rate != 0.0:
        for p in range(n):
            usd = position[p] if inverse else position[p] * price[p]
            funding[p] += funding_rate * usd


@numba.njit(cache=True, nogil=True)
def _add_checked(book: Array, coin: Array, out: Array) -> bool:
    """``out = book + coin``; whether every ``book`` value is finite (``x − x`` is 0 for a
    finite ``x`` and NaN for an infinite or NaN one: a test the compiler turns into a select
    and vectorises, where ``math.isfinite`` per value would branch)."""
    finite = True
    for p in range(out.shape[0]):
        x = book[p]
        if x - x != 0.0:
            finite = False
        out[p] = x + coin[p]
    return finite


def book_delta(book: Array, coin: Array, out: Array) -> bool:
    """``out = book + coin`` (``out`` and ``coin`` of shape ``(n,)``; ``book`` broadcasts) and
    whether ``book`` is finite everywhere; the same sums as ``np.add``."""
    kernel: Any = _add_checked
    if _is_column(book, out.shape[0]):
        return bool(kernel(book, coin, out))
    np.add(book, coin, out=out)
    return bool(np.isfinite(book).all())


def _is_column(x: object, n: int) -> bool:
    """Whether ``x`` is already what the kernels take: a contiguous float64 array ``(n,)``."""
    return (
        type(x) is np.ndarray and x.dtype == np.float64 and x.shape == (n,) and x.flags.c_contiguous
    )


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
    move_from: Array | None = None,
) -> None:
    """One step of one policy's account over every path, in place.

    When any path trades: ``coin += delta_change``, ``position += amount``, ``last = now``
    where it traded, and the trade's notional (``|amount|``, times ``price`` unless
    ``inverse``, times ``disc``) is charged ``fee_rate`` and ``half_spread`` and counted in
    ``turn``. Every path then earns ``coin · move`` and pays ``funding_rate`` (already the
    step's share, discounted) on the position's USD value. ``out`` holds the ``hedge``,
    ``fees``, ``spread``, ``funding`` and ``turn`` columns. With ``move_from``, ``move`` is the
    price the move ends at and the move is ``move − move_from``, taken in the same pass (the
    same subtraction, without a pass and a buffer of its own)."""
    n = coin.shape[0]

    def column(x: Array) -> Array:
        if _is_column(x, n):  # most calls: no broadcast view, no copy
            return x
        return np.ascontiguousarray(np.broadcast_to(np.asarray(x, dtype=np.float64), (n,)))

    kernel: Any = _settle
    moved = column(move)
    kernel(
        column(amount),
        column(delta_change),
        column(price),
        moved,
        moved if move_from is None else column(move_from),
        move_from is not None,
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
