"""Cycles: triangular / cyclic arbitrage attempts within one venue (issue 14).

Revision ID: 0008_cycles
Revises: 0002_pnl
Create Date: 2026-11-30

Written by hand and frozen, like 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_cycles"
down_revision: str | None = "0007_ml"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EXACT = sa.Numeric(38, 18).with_variant(sa.String(40), "sqlite")


def upgrade() -> None:
    op.create_table(
        "cycles",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("id", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("venue", sa.String(64), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("start", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("expected_in", EXACT, nullable=False),
        sa.Column("expected_pnl", EXACT, nullable=False),
        sa.Column("realized_pnl", EXACT, nullable=False),
        sa.Column("fees_quote", EXACT, nullable=False),
        sa.Column("residual", sa.JSON(), nullable=False),
        sa.Column("orders", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.Column("closed_ns", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "id", name="pk_cycles"),
    )


def downgrade() -> None:
    op.drop_table("cycles")
