"""The model lifecycle: spread samples, shadow tests and scores; labels and lineage columns.

Revision ID: 0007_ml
Revises: 0002_pnl
Create Date: 2026-11-30

Written by hand and frozen, like 0001: types are spelled out, not imported from the models.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_ml"
down_revision: str | None = "0006_bus"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ID = sa.String(64)
SHORT = sa.String(16)
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("training_features") as t:
        t.add_column(sa.Column("kind", SHORT, nullable=True))
        t.add_column(sa.Column("realised_pnl", sa.Double(), nullable=True))
    with op.batch_alter_table("model_metadata") as t:
        t.add_column(sa.Column("trained_at", TS, nullable=True))
        t.add_column(sa.Column("data_from_ns", sa.BigInteger(), nullable=True))
        t.add_column(sa.Column("data_to_ns", sa.BigInteger(), nullable=True))
        t.add_column(sa.Column("feature_schema", sa.JSON(), nullable=True))
        t.add_column(sa.Column("parent", sa.String(64), nullable=True))
        t.add_column(sa.Column("reason", sa.Text(), nullable=True))
    op.create_table(
        "spread_samples",
        sa.Column("id", BIGID, nullable=False, autoincrement=True),
        sa.Column("run_id", ID, nullable=True),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("group", ID, nullable=False),
        sa.Column("buy_key", sa.String(128), nullable=False),
        sa.Column("sell_key", sa.String(128), nullable=False),
        *[sa.Column(n, sa.Double(), nullable=False)
          for n in ("spread_bps", "mid", "imbalance", "depth_quote", "book_spread_bps")],
        sa.PrimaryKeyConstraint("id", name="pk_spread_samples"),
    )
    op.create_index("ix_spread_samples_group_ts_ns", "spread_samples", ["group", "ts_ns"])
    op.create_table(
        "shadow_tests",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("candidate", sa.String(64), nullable=False),
        sa.Column("live", sa.String(64), nullable=True),
        sa.Column("metric", SHORT, nullable=False),
        sa.Column("window", sa.Integer(), nullable=False),
        sa.Column("candidate_value", sa.Double(), nullable=True),
        sa.Column("live_value", sa.Double(), nullable=True),
        sa.Column("promoted", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_shadow_tests"),
    )
    op.create_table(
        "shadow_scores",
        sa.Column("id", BIGID, nullable=False, autoincrement=True),
        sa.Column("test_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("group", ID, nullable=False),
        sa.Column("predicted_bps", sa.Double(), nullable=False),
        sa.Column("survival", sa.Double(), nullable=True),
        sa.Column("actual_bps", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_shadow_scores"),
    )
    op.create_index("ix_shadow_scores_test_id", "shadow_scores", ["test_id"])


def downgrade() -> None:
    op.drop_index("ix_shadow_scores_test_id", table_name="shadow_scores")
    op.drop_table("shadow_scores")
    op.drop_table("shadow_tests")
    op.drop_index("ix_spread_samples_group_ts_ns", table_name="spread_samples")
    op.drop_table("spread_samples")
    with op.batch_alter_table("model_metadata") as t:
        for name in ("reason", "parent", "feature_schema", "data_to_ns", "data_from_ns", "trained_at"):
            t.drop_column(name)
    with op.batch_alter_table("training_features") as t:
        t.drop_column("realised_pnl")
        t.drop_column("kind")
