"""Initial schema: runs, opportunities, orders, fills, arbitrage trades, balances,
training features, model metadata, users and the audit log.

Revision ID: 0001
Revises:
Create Date: 2024-06-01

Written by hand and frozen: types are spelled out here rather than imported from the models,
so later model changes cannot silently change what this revision creates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Exact decimals: NUMERIC on PostgreSQL, fixed-point text on SQLite (see storage/coltypes.py).
EXACT = sa.Numeric(38, 18).with_variant(sa.String(40), "sqlite")
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # autoincrementing 64-bit id
ID = sa.String(64)
SHORT = sa.String(16)
NS = sa.BigInteger()
TS = sa.DateTime(timezone=True)


def _req(name: str, type_: sa.types.TypeEngine[Any], autoincrement: bool | None = None) -> sa.Column[Any]:
    if autoincrement is None:
        return sa.Column(name, type_, nullable=False)
    return sa.Column(name, type_, nullable=False, autoincrement=autoincrement)


def _opt(name: str, type_: sa.types.TypeEngine[Any]) -> sa.Column[Any]:
    return sa.Column(name, type_, nullable=True)


def _floats(*names: str) -> list[sa.Column[Any]]:
    return [_req(n, sa.Double()) for n in names]


def upgrade() -> None:
    op.create_table(
        "runs",
        _req("id", ID),
        _req("mode", SHORT),
        _req("started_ns", NS),
        _opt("ended_ns", NS),
        _req("config", sa.JSON()),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )
    op.create_table(
        "opportunities",
        _req("run_id", ID),
        _req("id", sa.BigInteger(), autoincrement=False),
        _req("group", ID),
        _req("label", ID),
        _req("buy_key", sa.String(128)),
        _req("sell_key", sa.String(128)),
        *_floats("qty_base", "buy_vwap", "sell_vwap", "cost_quote", "fees_quote", "profit_quote"),
        *_floats("profit_bps"),
        _req("exchange_ns", NS),
        _req("local_ns", NS),
        sa.PrimaryKeyConstraint("run_id", "id", name="pk_opportunities"),
    )
    op.create_table(
        "orders",
        _req("id", ID),
        _req("run_id", ID),
        _opt("arb_id", sa.BigInteger()),
        _req("venue", ID),
        _req("symbol", ID),
        _req("side", SHORT),
        _req("type", SHORT),
        _req("qty", EXACT),
        _req("limit_price", EXACT),
        _req("expected_price", EXACT),
        _req("status", SHORT),
        _req("filled_qty", EXACT),
        _req("avg_price", EXACT),
        _req("fee", EXACT),
        _req("fee_currency", ID),
        _req("reason", sa.Text()),
        _req("created_ns", NS),
        _req("updated_ns", NS),
        sa.PrimaryKeyConstraint("id", name="pk_orders"),
    )
    op.create_index("ix_orders_run_id_arb_id", "orders", ["run_id", "arb_id"])
    op.create_table(
        "fills",
        _req("id", BIGID, autoincrement=True),
        _req("run_id", ID),
        _req("order_id", ID),
        _req("venue", ID),
        _req("symbol", ID),
        _req("side", SHORT),
        _req("price", EXACT),
        _req("qty", EXACT),
        _req("fee", EXACT),
        _req("fee_currency", ID),
        _req("liquidity", SHORT),
        _req("ts_ns", NS),
        sa.PrimaryKeyConstraint("id", name="pk_fills"),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name="fk_fills_order_id_orders"),
    )
    op.create_index("ix_fills_order_id", "fills", ["order_id"])
    op.create_table(
        "arb_trades",
        _req("run_id", ID),
        _req("id", sa.BigInteger(), autoincrement=False),
        _req("opportunity_id", sa.BigInteger()),
        _req("group", ID),
        _req("status", SHORT),
        *[_req(n, EXACT) for n in ("expected_pnl", "realized_pnl", "fees_quote")],
        *[_req(n, EXACT) for n in ("expected_qty_base", "matched_qty_base", "unhedged_qty_base")],
        _req("created_ns", NS),
        _opt("closed_ns", NS),
        sa.PrimaryKeyConstraint("run_id", "id", name="pk_arb_trades"),
    )
    op.create_table(
        "balances",
        _req("id", BIGID, autoincrement=True),
        _req("run_id", ID),
        _req("ts_ns", NS),
        _req("venue", ID),
        _req("asset", ID),
        _req("amount", EXACT),
        sa.PrimaryKeyConstraint("id", name="pk_balances"),
    )
    op.create_index("ix_balances_run_id_ts_ns", "balances", ["run_id", "ts_ns"])
    op.create_table(
        "training_features",
        _req("id", BIGID, autoincrement=True),
        _opt("run_id", ID),
        _req("ts_ns", NS),
        _req("group", ID),
        _req("buy_key", sa.String(128)),
        _req("sell_key", sa.String(128)),
        *_floats("spread_bps", "net_bps", "buy_depth_quote", "sell_depth_quote"),
        _req("features", sa.JSON()),
        _opt("label", sa.Double()),
        sa.PrimaryKeyConstraint("id", name="pk_training_features"),
    )
    op.create_index("ix_training_features_ts_ns", "training_features", ["ts_ns"])
    op.create_table(
        "model_metadata",
        _req("id", sa.Integer(), autoincrement=True),
        _req("name", ID),
        _req("version", ID),
        _req("sha256", sa.String(64)),
        _req("path", sa.Text()),
        _req("metrics", sa.JSON()),
        _req("status", SHORT),
        _req("created_at", TS),
        _opt("promoted_at", TS),
        sa.PrimaryKeyConstraint("id", name="pk_model_metadata"),
        sa.UniqueConstraint("name", "version", name="uq_model_metadata_name_version"),
    )
    op.create_table(
        "users",
        _req("id", sa.Integer(), autoincrement=True),
        _req("username", ID),
        _req("password_hash", sa.String(255)),
        _req("role", SHORT),
        _req("created_at", TS),
        _req("disabled", sa.Boolean()),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("username", name="uq_users_username"),
    )
    op.create_table(
        "audit_log",
        _req("id", BIGID, autoincrement=True),
        _req("ts", TS),
        _req("actor", ID),
        _req("action", ID),
        _req("detail", sa.JSON()),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_ts", "audit_log", ["ts"])


def downgrade() -> None:
    for table in ("audit_log", "users", "model_metadata", "training_features", "balances"):
        op.drop_table(table)
    for table in ("arb_trades", "fills", "orders", "opportunities", "runs"):
        op.drop_table(table)
