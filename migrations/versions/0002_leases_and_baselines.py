"""Book leases and hedge baselines.

``book_leases``: one writer per book (venue account and currency), held in the ledger itself.
``hedge_baselines``: a hedge position read and our fills' total then, so every later read can
be checked against the fills recorded since.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 06:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "book_leases",
        sa.Column("book", sa.String(255), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        _time("acquired_at"),
        _time("renewed_at"),
        _time("expires_at"),
        sa.PrimaryKeyConstraint("book", name=op.f("pk_book_leases")),
    )
    op.create_table(
        "hedge_baselines",
        sa.Column("instrument", sa.String(64), nullable=False),
        sa.Column("position", sa.Numeric(36, 18), nullable=False),
        sa.Column("fills_total", sa.Numeric(36, 18), nullable=False),
        _time("ts"),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("instrument", name=op.f("pk_hedge_baselines")),
    )


def downgrade() -> None:
    op.drop_table("hedge_baselines")
    op.drop_table("book_leases")
