"""Leg risk: incidents (a failed or partial leg and what closed it) and one-legged exposure.

Revision ID: 0004_legrisk
Revises: 0003_journal (0002_pnl before the live branch was merged)
Create Date: 2026-11-30

Written by hand and frozen, like 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_legrisk"
down_revision: str | None = "0003_journal"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EXACT = sa.Numeric(38, 18).with_variant(sa.String(40), "sqlite")
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "leg_incidents",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("trade_id", sa.BigInteger(), nullable=False),
        sa.Column("asset", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("steps", sa.String(64), nullable=False),
        sa.Column("filled_key", sa.String(128), nullable=False),
        sa.Column("missing_key", sa.String(128), nullable=False),
        sa.Column("start_qty", EXACT, nullable=False),
        sa.Column("open_qty", EXACT, nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("realised", EXACT, nullable=False),
        sa.Column("fees_quote", EXACT, nullable=False),
        sa.Column("slippage_quote", EXACT, nullable=False),
        sa.Column("opened_ns", sa.BigInteger(), nullable=False),
        sa.Column("closed_ns", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "trade_id", name="pk_leg_incidents"),
    )
    op.create_table(
        "leg_exposure",
        sa.Column("id", BIGID, nullable=False, autoincrement=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("asset", sa.String(64), nullable=False),
        sa.Column("qty", EXACT, nullable=False),
        sa.Column("mark", EXACT, nullable=False),
        sa.Column("total_quote", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_leg_exposure"),
    )
    op.create_index("ix_leg_exposure_run_id_ts_ns", "leg_exposure", ["run_id", "ts_ns"])


def downgrade() -> None:
    op.drop_index("ix_leg_exposure_run_id_ts_ns", table_name="leg_exposure")
    op.drop_table("leg_exposure")
    op.drop_table("leg_incidents")
