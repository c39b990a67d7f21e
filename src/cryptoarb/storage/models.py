"""Database tables, as SQLAlchemy 2 declarative models.

The schema itself is created by the Alembic migrations in ``migrations/versions``; these models
must describe exactly the same schema (a test compares them). Change both together.

Money and quantities that come from the exact-decimal core (orders, fills, arbitrage trades,
balances) use ``ExactDecimal``; detector output (opportunities, training features) is float
because that is what the detector computes. Event times are integer nanoseconds (BigInteger);
human-facing records (users, models, audit) use timezone-aware UTC datetimes.

Opportunity and arbitrage-trade ids are counters that restart with every run, so their primary
key is ``(run_id, id)``; ``orders.arb_id`` refers to ``arb_trades.id`` within the same run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, Double, ForeignKey, Index, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from cryptoarb.storage.coltypes import BigIntPK, ExactDecimal, UTCDateTime

# Deterministic constraint names, so migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID = String(64)  # venue, symbol, run, order and other identifiers
SHORT = String(16)  # enum-like values: side, status, mode, role


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {Decimal: ExactDecimal(), float: Double(), dict[str, Any]: JSON()}  # noqa: RUF012


class Run(Base):
    __tablename__ = "runs"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    mode: Mapped[str] = mapped_column(SHORT)  # replay / demo / paper / live
    started_ns: Mapped[int] = mapped_column(BigInteger)
    ended_ns: Mapped[int | None] = mapped_column(BigInteger)
    config: Mapped[dict[str, Any]]


class OpportunityRow(Base):
    __tablename__ = "opportunities"
    run_id: Mapped[str] = mapped_column(ID, primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    group: Mapped[str] = mapped_column(ID)
    label: Mapped[str] = mapped_column(ID)
    buy_key: Mapped[str] = mapped_column(String(128))
    sell_key: Mapped[str] = mapped_column(String(128))
    qty_base: Mapped[float]
    buy_vwap: Mapped[float]
    sell_vwap: Mapped[float]
    cost_quote: Mapped[float]
    fees_quote: Mapped[float]
    profit_quote: Mapped[float]
    profit_bps: Mapped[float]
    exchange_ns: Mapped[int] = mapped_column(BigInteger)
    local_ns: Mapped[int] = mapped_column(BigInteger)


class OrderRow(Base):
    """Latest known state of an order; rewritten (upserted) on every status change."""

    __tablename__ = "orders"
    id: Mapped[str] = mapped_column(ID, primary_key=True)  # client order id
    run_id: Mapped[str] = mapped_column(ID)
    arb_id: Mapped[int | None] = mapped_column(BigInteger)
    venue: Mapped[str] = mapped_column(ID)
    symbol: Mapped[str] = mapped_column(ID)
    side: Mapped[str] = mapped_column(SHORT)
    type: Mapped[str] = mapped_column(SHORT)
    qty: Mapped[Decimal]
    limit_price: Mapped[Decimal]
    expected_price: Mapped[Decimal]
    status: Mapped[str] = mapped_column(SHORT)
    filled_qty: Mapped[Decimal]
    avg_price: Mapped[Decimal]
    fee: Mapped[Decimal]
    fee_currency: Mapped[str] = mapped_column(ID)
    reason: Mapped[str] = mapped_column(Text)
    created_ns: Mapped[int] = mapped_column(BigInteger)
    updated_ns: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_orders_run_id_arb_id", "run_id", "arb_id"),)


class FillRow(Base):
    __tablename__ = "fills"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ID)
    order_id: Mapped[str] = mapped_column(ID, ForeignKey("orders.id"), index=True)
    venue: Mapped[str] = mapped_column(ID)
    symbol: Mapped[str] = mapped_column(ID)
    side: Mapped[str] = mapped_column(SHORT)
    price: Mapped[Decimal]
    qty: Mapped[Decimal]
    fee: Mapped[Decimal]
    fee_currency: Mapped[str] = mapped_column(ID)
    liquidity: Mapped[str] = mapped_column(SHORT)
    ts_ns: Mapped[int] = mapped_column(BigInteger)


class ArbTradeRow(Base):
    """Latest known state of an arbitrage attempt; ``closed_ns`` is NULL until it settles.

    ``realized_pnl`` is what the trade's fills closed (fees included; see docs/pnl.md): the
    positions a failed leg or a basis trade leaves open are valued in the ``pnl`` table."""

    __tablename__ = "arb_trades"
    run_id: Mapped[str] = mapped_column(ID, primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    opportunity_id: Mapped[int] = mapped_column(BigInteger)
    group: Mapped[str] = mapped_column(ID)
    status: Mapped[str] = mapped_column(SHORT)
    expected_pnl: Mapped[Decimal]
    realized_pnl: Mapped[Decimal]
    fees_quote: Mapped[Decimal]
    expected_qty_base: Mapped[Decimal]
    matched_qty_base: Mapped[Decimal]
    unhedged_qty_base: Mapped[Decimal]
    created_ns: Mapped[int] = mapped_column(BigInteger)
    closed_ns: Mapped[int | None] = mapped_column(BigInteger)


class BalanceRow(Base):
    """One line of ``Portfolio.snapshot()``: a currency balance or a derivative position."""

    __tablename__ = "balances"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ID)
    ts_ns: Mapped[int] = mapped_column(BigInteger)
    venue: Mapped[str] = mapped_column(ID)
    asset: Mapped[str] = mapped_column(ID)  # currency, or symbol for a position
    amount: Mapped[Decimal]

    __table_args__ = (Index("ix_balances_run_id_ts_ns", "run_id", "ts_ns"),)


class PnlRow(Base):
    """The run's PnL at a moment (every settled trade, and the end of the run): realised,
    unrealised at the books' mids then, their total, and the net exposure (see docs/pnl.md)."""

    __tablename__ = "pnl"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ID)
    ts_ns: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(ID)
    realised: Mapped[Decimal]
    unrealised: Mapped[Decimal]
    total: Mapped[Decimal]
    unhedged_quote: Mapped[float]
    max_unhedged_quote: Mapped[float]

    __table_args__ = (Index("ix_pnl_run_id_ts_ns", "run_id", "ts_ns"),)


class TrainingFeature(Base):
    """A detector observation for model training; ``label`` is filled in once known."""

    __tablename__ = "training_features"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    run_id: Mapped[str | None] = mapped_column(ID)
    ts_ns: Mapped[int] = mapped_column(BigInteger, index=True)
    group: Mapped[str] = mapped_column(ID)
    buy_key: Mapped[str] = mapped_column(String(128))
    sell_key: Mapped[str] = mapped_column(String(128))
    spread_bps: Mapped[float]
    net_bps: Mapped[float]
    buy_depth_quote: Mapped[float]
    sell_depth_quote: Mapped[float]
    features: Mapped[dict[str, Any]]
    label: Mapped[float | None]


class ModelMetadata(Base):
    __tablename__ = "model_metadata"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(ID)
    version: Mapped[str] = mapped_column(ID)
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(Text)
    metrics: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(SHORT, default="candidate")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    promoted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("name", "version"),)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(ID, unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(SHORT)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    disabled: Mapped[bool] = mapped_column(default=False)
    # tokens issued before this moment are refused (a password change, a removal); 0005_api
    tokens_after: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AuditLog(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(ID)
    action: Mapped[str] = mapped_column(ID)
    detail: Mapped[dict[str, Any]]


class BusEvent(Base):
    """A bus event the recorder applied (``run:seq``); its rows were written in the same
    transaction, so a second delivery writes nothing (docs/distributed.md)."""

    __tablename__ = "bus_events"
    key: Mapped[str] = mapped_column(String(96), primary_key=True)
    kind: Mapped[str] = mapped_column(SHORT)
    applied_ns: Mapped[int] = mapped_column(BigInteger)


from cryptoarb.storage import models_api as _models_api  # noqa: E402, F401  (API token tables on Base)
