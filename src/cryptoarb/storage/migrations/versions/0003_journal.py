"""The live order journal: orders (write-ahead), their events, fills booked once, the ledger.

Revision ID: 0003_journal
Revises: 0002_pnl
Create Date: 2026-11-30

Written by hand and frozen, like 0001 (see storage/journal_models.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_journal"
down_revision: str | None = "0002_pnl"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EXACT = sa.Numeric(38, 18).with_variant(sa.String(40), "sqlite")
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _req(name: str, type_: sa.types.TypeEngine) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, type_, nullable=False)


def upgrade() -> None:
    op.create_table(
        "live_orders",
        _req("client_id", sa.String(64)),
        _req("order_id", sa.String(64)),
        _req("run_id", sa.String(64)),
        sa.Column("arb_id", sa.BigInteger(), nullable=True),
        _req("venue", sa.String(64)),
        _req("symbol", sa.String(64)),
        _req("side", sa.String(16)),
        _req("type", sa.String(16)),
        _req("qty", EXACT),
        _req("price", EXACT),
        _req("state", sa.String(16)),
        sa.Column("venue_order_id", sa.String(64), nullable=True),
        _req("filled_qty", EXACT),
        _req("cost", EXACT),
        _req("reason", sa.Text()),
        _req("created_ns", sa.BigInteger()),
        sa.Column("sent_ns", sa.BigInteger(), nullable=True),
        _req("updated_ns", sa.BigInteger()),
        sa.PrimaryKeyConstraint("client_id", name="pk_live_orders"),
    )
    op.create_index("ix_live_orders_state", "live_orders", ["state"])
    op.create_table(
        "live_order_events",
        sa.Column("id", BIGID, nullable=False, autoincrement=True),
        _req("client_id", sa.String(64)),
        _req("ts_ns", sa.BigInteger()),
        _req("state", sa.String(16)),
        _req("detail", sa.JSON()),
        sa.PrimaryKeyConstraint("id", name="pk_live_order_events"),
        sa.ForeignKeyConstraint(["client_id"], ["live_orders.client_id"],
                                name="fk_live_order_events_client_id_live_orders"),
    )
    op.create_index("ix_live_order_events_client_id", "live_order_events", ["client_id"])
    op.create_table(
        "live_fills",
        sa.Column("id", BIGID, nullable=False, autoincrement=True),
        _req("client_id", sa.String(64)),
        _req("venue", sa.String(64)),
        _req("symbol", sa.String(64)),
        _req("trade_id", sa.String(64)),
        _req("side", sa.String(16)),
        _req("price", EXACT),
        _req("qty", EXACT),
        _req("fee", EXACT),
        _req("fee_currency", sa.String(64)),
        _req("ts_ns", sa.BigInteger()),
        sa.PrimaryKeyConstraint("id", name="pk_live_fills"),
        sa.ForeignKeyConstraint(["client_id"], ["live_orders.client_id"], name="fk_live_fills_client_id_live_orders"),
        sa.UniqueConstraint("venue", "symbol", "trade_id", name="uq_live_fills_venue_symbol_trade_id"),
    )
    op.create_index("ix_live_fills_client_id", "live_fills", ["client_id"])
    op.create_table(
        "live_ledger",
        sa.Column("id", BIGID, nullable=False, autoincrement=True),
        _req("venue", sa.String(64)),
        _req("asset", sa.String(64)),
        _req("delta", EXACT),
        _req("kind", sa.String(16)),
        _req("ref", sa.String(128)),
        _req("ts_ns", sa.BigInteger()),
        sa.PrimaryKeyConstraint("id", name="pk_live_ledger"),
    )
    op.create_index("ix_live_ledger_venue_asset", "live_ledger", ["venue", "asset"])


def downgrade() -> None:
    op.drop_index("ix_live_ledger_venue_asset", table_name="live_ledger")
    op.drop_table("live_ledger")
    op.drop_index("ix_live_fills_client_id", table_name="live_fills")
    op.drop_table("live_fills")
    op.drop_index("ix_live_order_events_client_id", table_name="live_order_events")
    op.drop_table("live_order_events")
    op.drop_index("ix_live_orders_state", table_name="live_orders")
    op.drop_table("live_orders")
