"""The live order journal's tables (write-ahead: a row exists before its order is sent).

* ``live_orders``: one row per live order, keyed by its client order id, holding its latest
  state (``pending_new`` until the venue answered; see ``cryptoarb.execution.journal``).
* ``live_order_events``: every state change of every live order, in order (the journal proper).
* ``live_fills``: each venue trade booked once (unique per venue, symbol and trade id), so a
  fill seen twice (in an order answer, then in a reconciliation) is never booked twice.
* ``live_ledger``: the account ledger per venue and asset: the opening balance fetched from the
  venue the first time, then one row per balance change a fill makes. Its sums are compared
  with the venue's balances (drift).

Written synchronously by the journal (these rows are the source of truth across a crash), not
by the background ``StorageWriter``. Imported by ``storage/models.py`` so ``Base.metadata``
(and the migration check) holds them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cryptoarb.storage.coltypes import BigIntPK
from cryptoarb.storage.models import ID, SHORT, Base


class LiveOrderRow(Base):
    __tablename__ = "live_orders"
    client_id: Mapped[str] = mapped_column(ID, primary_key=True)
    order_id: Mapped[str] = mapped_column(ID)  # the engine's order id (orders.id)
    run_id: Mapped[str] = mapped_column(ID)
    arb_id: Mapped[int | None] = mapped_column(BigInteger)
    venue: Mapped[str] = mapped_column(ID)
    symbol: Mapped[str] = mapped_column(ID)
    side: Mapped[str] = mapped_column(SHORT)
    type: Mapped[str] = mapped_column(SHORT)  # limit_ioc / limit / market
    qty: Mapped[Decimal]
    price: Mapped[Decimal]  # limit price sent (0 for market)
    state: Mapped[str] = mapped_column(SHORT)
    venue_order_id: Mapped[str | None] = mapped_column(ID)
    filled_qty: Mapped[Decimal]
    cost: Mapped[Decimal]  # sum of price x qty over the booked fills
    reason: Mapped[str] = mapped_column(Text)
    created_ns: Mapped[int] = mapped_column(BigInteger)
    sent_ns: Mapped[int | None] = mapped_column(BigInteger)
    updated_ns: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_live_orders_state", "state"),)


class LiveOrderEventRow(Base):
    __tablename__ = "live_order_events"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(ID, ForeignKey("live_orders.client_id"), index=True)
    ts_ns: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(SHORT)
    detail: Mapped[dict[str, Any]]


class LiveFillRow(Base):
    __tablename__ = "live_fills"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(ID, ForeignKey("live_orders.client_id"), index=True)
    venue: Mapped[str] = mapped_column(ID)
    symbol: Mapped[str] = mapped_column(ID)
    trade_id: Mapped[str] = mapped_column(ID)
    side: Mapped[str] = mapped_column(SHORT)
    price: Mapped[Decimal]
    qty: Mapped[Decimal]
    fee: Mapped[Decimal]
    fee_currency: Mapped[str] = mapped_column(ID)
    ts_ns: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (UniqueConstraint("venue", "symbol", "trade_id"),)


class LiveLedgerRow(Base):
    __tablename__ = "live_ledger"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    venue: Mapped[str] = mapped_column(ID)
    asset: Mapped[str] = mapped_column(ID)
    delta: Mapped[Decimal]
    kind: Mapped[str] = mapped_column(SHORT)  # opening / fill / fee
    ref: Mapped[str] = mapped_column(String(128))  # the fill's venue trade id, or "" for the opening
    ts_ns: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_live_ledger_venue_asset", "venue", "asset"),)
