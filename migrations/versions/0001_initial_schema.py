"""Initial schema: ledger and paper venue tables.

The ledger: rebalances, orders, order events, fills, greeks snapshots, trading state. The paper
venue's own account: balances, positions, orders, trades.

Types are written out here rather than imported from bot.store.models, so this revision stays
what it was when later revisions change the models: NUMERIC(36, 18) for money, prices,
quantities and greeks; TIMESTAMP WITH TIME ZONE for times (UTC text on SQLite).

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _number(name: str, *, nullable: bool = False) -> sa.Column[float]:
    return sa.Column(name, sa.Numeric(36, 18), nullable=nullable)


def _time(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def _text(name: str, length: int, *, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(length), nullable=nullable)


def _index(table: str, *columns: str) -> None:
    for column in columns:
        op.create_index(op.f(f"ix_{table}_{column}"), table, [column], unique=False)


def upgrade() -> None:
    op.create_table(
        "rebalances",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _text("cycle_id", 64),
        _time("ts"),
        _text("currency", 16),
        _text("mode", 16),
        _text("policy", 64),
        sa.Column("params", sa.Text(), nullable=False),
        _text("target_mode", 8),
        _text("status", 16),
        sa.Column("reason", sa.Text(), nullable=False),
        *(
            _number(name, nullable=True)
            for name in (
                "index_price",
                "hedge_bid",
                "hedge_ask",
                "hedge_mid",
                "delta_before",
                "target",
                "band_low",
                "band_high",
                "gamma",
                "vega",
                "theta",
                "equity",
                "trade_amount",
                "trade_delta",
                "expected_delta_after",
                "est_cost_usd",
            )
        ),
        sa.Column("greeks", sa.Text(), nullable=True),
        _text("instrument", 64, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rebalances")),
        sa.UniqueConstraint("cycle_id", name=op.f("uq_rebalances_cycle_id")),
    )
    _index("rebalances", "status", "ts")

    op.create_table(
        "orders",
        _text("label", 64),
        _text("cycle_id", 64),
        sa.Column("rebalance_id", sa.Integer(), nullable=True),
        _text("venue_order_id", 128, nullable=True),
        _text("instrument", 64),
        _text("side", 4),
        _number("amount"),
        _number("price", nullable=True),
        _text("order_type", 16),
        sa.Column("post_only", sa.Boolean(), nullable=False),
        sa.Column("reduce_only", sa.Boolean(), nullable=False),
        _text("time_in_force", 32),
        _text("status", 16),
        _number("filled_amount"),
        _number("average_price", nullable=True),
        _number("decision_mid", nullable=True),
        _time("created_at"),
        _time("updated_at"),
        sa.ForeignKeyConstraint(
            ["rebalance_id"], ["rebalances.id"], name=op.f("fk_orders_rebalance_id_rebalances")
        ),
        sa.PrimaryKeyConstraint("label", name=op.f("pk_orders")),
    )
    _index("orders", "cycle_id", "rebalance_id", "status", "venue_order_id")

    op.create_table(
        "order_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _text("label", 64),
        _time("ts"),
        _text("status", 16),
        _number("filled_amount", nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["label"], ["orders.label"], name=op.f("fk_order_events_label_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_events")),
    )
    _index("order_events", "label")

    op.create_table(
        "fills",
        _text("trade_id", 128),
        _text("label", 64),
        _text("venue_order_id", 128),
        _text("instrument", 64),
        _text("side", 4),
        _number("amount"),
        _number("price"),
        _number("fee"),
        _text("fee_currency", 16),
        _text("liquidity", 8),
        _time("ts"),
        _number("index_price", nullable=True),
        sa.PrimaryKeyConstraint("trade_id", name=op.f("pk_fills")),
    )
    _index("fills", "instrument", "label", "ts", "venue_order_id")

    op.create_table(
        "greeks_snapshots",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _text("cycle_id", 64),
        _time("ts"),
        _text("currency", 16),
        *(
            _number(name)
            for name in (
                "index_price",
                "delta_coin",
                "delta_usd_target",
                "gamma",
                "dollar_gamma",
                "vega",
                "theta",
                "equity",
                "hedge_position",
            )
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_greeks_snapshots")),
    )
    _index("greeks_snapshots", "cycle_id", "ts")

    op.create_table(
        "trading_state",
        _text("scope", 32),
        _text("state", 16),
        sa.Column("reason", sa.Text(), nullable=False),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_trading_state")),
    )

    op.create_table(
        "paper_balances",
        _text("currency", 16),
        _number("balance"),
        sa.PrimaryKeyConstraint("currency", name=op.f("pk_paper_balances")),
    )

    op.create_table(
        "paper_positions",
        _text("instrument", 64),
        _number("size"),
        _number("average_price"),
        sa.PrimaryKeyConstraint("instrument", name=op.f("pk_paper_positions")),
    )

    op.create_table(
        "paper_orders",
        _text("venue_order_id", 128),
        _text("label", 64),
        _text("instrument", 64),
        _text("side", 4),
        _number("amount"),
        _number("filled_amount"),
        _text("status", 16),
        _number("price", nullable=True),
        _number("average_price", nullable=True),
        _text("order_type", 16),
        _time("ts"),
        sa.Column("post_only", sa.Boolean(), nullable=False),
        sa.Column("reduce_only", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("venue_order_id", name=op.f("pk_paper_orders")),
    )
    _index("paper_orders", "label")

    op.create_table(
        "paper_trades",
        _text("trade_id", 128),
        _text("venue_order_id", 128),
        _text("label", 64),
        _text("instrument", 64),
        _text("side", 4),
        _number("amount"),
        _number("price"),
        _number("fee"),
        _text("fee_currency", 16),
        _text("liquidity", 8),
        _time("ts"),
        _number("index_price", nullable=True),
        sa.PrimaryKeyConstraint("trade_id", name=op.f("pk_paper_trades")),
    )


def downgrade() -> None:
    for table in (
        "paper_trades",
        "paper_orders",
        "paper_positions",
        "paper_balances",
        "trading_state",
        "greeks_snapshots",
        "fills",
        "order_events",
        "orders",
        "rebalances",
    ):
        op.drop_table(table)
