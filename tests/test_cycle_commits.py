"""A cycle's ledger writes share one transaction up to its first order (issue 13): an idle cycle
commits once; a traded one commits its greeks, rebalance and first order together, the order
before it is sent, and each later write as before. Commits are counted on the ledger's engine
with SQLAlchemy's ``commit`` event."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, event

from bot.cycle import rebalance_once
from bot.domain import OrderRequest, OrderState
from bot.reconcile import reconcile
from bot.store.db import open_ledger
from bot.store.ledger import Ledger
from bot.store.records import TradingState
from tests.support.books import NOW
from tests.support.harness import Passthrough, stack

TIGHT = {
    "policy": {"kind": "delta_band", "delta_band": {"band": 0.05}},
    "hedge": {"target_delta": 0.5},
}


@contextmanager
def commits(engine: Engine) -> Iterator[list[int]]:
    seen: list[int] = []

    def count(_conn: object) -> None:
        seen.append(1)

    event.listen(engine, "commit", count)
    try:
        yield seen
    finally:
        event.remove(engine, "commit", count)


class OrderSeesItsRecord(Passthrough):
    """A venue that, when an order arrives, checks that its label is already committed in the
    ledger, read through a connection of its own."""

    def __init__(self, inner: object, ledger_url: str) -> None:
        super().__init__(inner)  # type: ignore[arg-type]
        self.ledger_url = ledger_url
        self.recorded_before_send: list[bool] = []

    async def place_order(self, req: OrderRequest) -> OrderState:
        other = open_ledger(self.ledger_url)
        try:
            self.recorded_before_send.append(other.order(req.label) is not None)
        finally:
            other.close()
        return await super().place_order(req)


async def test_an_idle_cycle_commits_its_greeks_and_rebalance_in_one_transaction(
    tmp_path: Path,
) -> None:
    app = stack(tmp_path, policy={"delta_band": {"band": 1000.0}})
    await reconcile(app.ctx, "BTC")  # as the daemon does first: the position baseline is set
    with commits(app.ledger.engine) as seen:
        result = await rebalance_once(app.ctx, "BTC")
    assert result.status == "no_trade"
    assert len(seen) == 1
    assert app.ledger.last_rebalances(1)[0].cycle_id == result.cycle_id
    assert app.ledger.last_greeks_snapshot("BTC") is not None


async def test_a_traded_cycle_commits_its_first_order_with_the_rebalance_before_sending_it(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/paper_ledger.db"
    venues: list[OrderSeesItsRecord] = []

    def wrap(inner: object) -> OrderSeesItsRecord:
        venues.append(OrderSeesItsRecord(inner, url))
        return venues[0]

    app = stack(tmp_path, wrap=wrap, database={"paper_url": url}, **TIGHT)
    await reconcile(app.ctx, "BTC")  # as the daemon does first: the position baseline is set
    with commits(app.ledger.engine) as batched:
        result = await rebalance_once(app.ctx, "BTC")
    assert result.status == "traded", result.reason
    assert venues[0].recorded_before_send
    assert all(venues[0].recorded_before_send)
    # The same writes, one transaction each, as a cycle made them before batching.
    orders = app.ledger.orders(cycle_id=result.cycle_id)
    events = sum(len(app.ledger.order_events(o.label)) for o in orders)
    fills = [f for f in app.ledger.fills() if f.label in {o.label for o in orders}]
    one_by_one = 2 + events + len(fills) + sum(1 for o in orders if o.venue_order_id)
    assert len(batched) <= one_by_one - 2
    assert len(batched) >= 1 + len(orders)  # every order is committed before it is sent


def test_a_nested_batch_commits_once_with_the_outer_one(tmp_path: Path) -> None:
    ledger: Ledger = open_ledger(f"sqlite:///{tmp_path}/l.db", create=True)

    with commits(ledger.engine) as seen:
        with ledger.batch():
            ledger.set_trading_state(TradingState.REDUCING, "a", NOW)
            with ledger.batch():
                ledger.set_trading_state(TradingState.HALTED, "b", NOW)
            assert seen == []
            assert ledger.get_trading_state().state is TradingState.HALTED  # reads see the batch
        assert len(seen) == 1
    assert ledger.get_trading_state().reason == "b"


def test_an_error_inside_a_batch_keeps_the_writes_made_before_it(tmp_path: Path) -> None:
    ledger = open_ledger(f"sqlite:///{tmp_path}/l.db", create=True)

    def cycle_that_fails() -> None:
        with ledger.batch():
            ledger.set_trading_state(TradingState.HALTED, "before the error", NOW)
            raise RuntimeError("venue went away")

    with pytest.raises(RuntimeError):
        cycle_that_fails()
    assert ledger.get_trading_state().reason == "before the error"
