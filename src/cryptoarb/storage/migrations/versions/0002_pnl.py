"""PnL snapshots: realised, unrealised (marked at the books' mids) and total, with exposure.

Revision ID: 0002_pnl
Revises: 0001
Create Date: 2026-11-30

Written by hand and frozen, like 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_pnl"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EXACT = sa.Numeric(38, 18).with_variant(sa.String(40), "sqlite")
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "pnl",
        sa.Column("id", BIGID, nullable=False, autoincrement=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(64), nullable=False),
        sa.Column("realised", EXACT, nullable=False),
        sa.Column("unrealised", EXACT, nullable=False),
        sa.Column("total", EXACT, nullable=False),
        sa.Column("unhedged_quote", sa.Double(), nullable=False),
        sa.Column("max_unhedged_quote", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_pnl"),
    )
    op.create_index("ix_pnl_run_id_ts_ns", "pnl", ["run_id", "ts_ns"])


def downgrade() -> None:
    op.drop_index("ix_pnl_run_id_ts_ns", table_name="pnl")
    op.drop_table("pnl")
