"""The compiled step bookkeeping does the numpy loop's arithmetic, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from bot.backtest.accounts import book_delta, settle

KEYS = ("hedge", "fees", "spread", "funding", "turn")


def numpy_step(
    state: dict[str, np.ndarray],
    amount: np.ndarray,
    delta_change: np.ndarray,
    price: np.ndarray,
    move: np.ndarray,
    now: float,
    disc: float,
    inverse: bool,
    fee_rate: float,
    half_spread: float,
    funding_rate: float,
) -> None:
    """The loop's bookkeeping as it was written in numpy (the reference)."""
    traded = amount != 0
    if traded.any():
        state["coin"] += delta_change
        state["position"] += amount
        state["last"][traded] = now
        notional = np.abs(amount) if inverse else np.abs(amount) * price
        if disc != 1.0:
            notional = notional * disc
        if fee_rate + half_spread:
            state["fees"] += fee_rate * notional
            state["spread"] += half_spread * notional
        state["turn"] += notional
        state["trades"] += traded
    state["hedge"] += state["coin"] * move
    if funding_rate:
        usd = state["position"] if inverse else state["position"] * price
        state["funding"] += funding_rate * usd


def fresh(n: int) -> dict[str, np.ndarray]:
    state = {k: np.zeros(n) for k in (*KEYS, "coin", "position")}
    state["last"] = np.full(n, -np.inf)
    state["trades"] = np.zeros(n, dtype=np.int64)
    return state


@pytest.mark.parametrize(
    ("inverse", "disc", "fee_rate", "half_spread", "funding_rate"),
    [
        (True, 1.0, 0.0005, 0.0001, 1e-6),
        (False, 0.97, 0.0, 0.0, 0.0),
        (False, 1.0, 0.001, 0.0, 0.0),
    ],
)
def test_settle_gives_the_numpy_bookkeepings_bits_over_many_steps(
    inverse: bool, disc: float, fee_rate: float, half_spread: float, funding_rate: float
) -> None:
    rng = np.random.default_rng(11)
    n = 257
    ours, ref = fresh(n), fresh(n)
    for step in range(40):
        price = 90_000.0 * np.exp(rng.normal(0.0, 0.01, n))
        amount = np.where(rng.random(n) < 0.3, np.round(rng.normal(0, 50, n)) * 10.0, 0.0)
        if step % 7 == 0:
            amount[:] = 0.0  # a step where no path trades: nothing is added, not even zeros
        change = amount / price
        move = rng.normal(0.0, 100.0, n)
        args = (amount, change, price, move)
        knobs = dict(
            now=900.0 * step,
            disc=disc,
            fee_rate=fee_rate,
            half_spread=half_spread,
            inverse=inverse,
            funding_rate=funding_rate,
        )
        numpy_step(ref, *args, **knobs)  # type: ignore[arg-type]
        out = {k: ours[k] for k in KEYS}
        settle(
            *args,
            **knobs,
            coin=ours["coin"],
            position=ours["position"],  # type: ignore[arg-type]
            last=ours["last"],
            trades=ours["trades"],
            out=out,
        )
    for key, want in ref.items():
        np.testing.assert_array_equal(ours[key], want, err_msg=key)
    assert ours["trades"].sum() > 0


def test_settle_with_the_move_as_two_prices_gives_the_bits_of_the_move_taken_first() -> None:
    rng = np.random.default_rng(12)
    n = 300
    given, fused = fresh(n), fresh(n)
    price = 90_000.0 * np.exp(rng.normal(0.0, 0.01, n))
    for step in range(30):
        after = price * np.exp(rng.normal(0.0, 0.01, n))
        amount = np.where(rng.random(n) < 0.5, np.round(rng.normal(0, 50, n)) * 10.0, 0.0)
        knobs = dict(now=900.0 * step, disc=1.0, fee_rate=0.0005, half_spread=0.0, inverse=True)
        for state, move, move_from in ((given, after - price, None), (fused, after, price)):
            settle(
                amount,
                amount / price,
                price,
                move,
                **knobs,  # type: ignore[arg-type]
                funding_rate=1e-6,
                coin=state["coin"],
                position=state["position"],
                last=state["last"],
                trades=state["trades"],
                out={k: state[k] for k in KEYS},
                move_from=move_from,
            )
        price = after
    for key, want in given.items():
        np.testing.assert_array_equal(fused[key], want, err_msg=key)
    assert np.abs(fused["hedge"]).sum() > 0


def test_book_delta_adds_the_hedge_and_says_whether_the_books_delta_is_finite() -> None:
    rng = np.random.default_rng(13)
    book, coin, out = rng.normal(0.0, 1.0, 1000), rng.normal(0.0, 1.0, 1000), np.empty(1000)
    assert book_delta(book, coin, out)
    assert out.tobytes() == (book + coin).tobytes()
    for bad in (np.nan, np.inf, -np.inf):
        spoilt = book.copy()
        spoilt[997] = bad
        assert not book_delta(spoilt, coin, out)
    assert book_delta(np.asarray(0.25), coin, out)  # a book delta that broadcasts
    assert out.tobytes() == (0.25 + coin).tobytes()
    assert not book_delta(np.asarray(np.nan), coin, out)
