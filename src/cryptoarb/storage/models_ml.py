"""Tables of the model lifecycle (docs/ml.md): the per-group spread time series the
FeatureLogger samples at a fixed interval, and shadow tests with both models' scores.
Imported by :mod:`cryptoarb.storage.models`, so they are part of ``Base.metadata``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cryptoarb.storage.coltypes import BigIntPK, UTCDateTime
from cryptoarb.storage.models import ID, SHORT, Base, utcnow


class SpreadSample(Base):
    """A group's best cross spread at one step of the sampling grid (event time)."""

    __tablename__ = "spread_samples"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    run_id: Mapped[str | None] = mapped_column(ID)
    ts_ns: Mapped[int] = mapped_column(BigInteger)
    group: Mapped[str] = mapped_column(ID)
    buy_key: Mapped[str] = mapped_column(String(128))
    sell_key: Mapped[str] = mapped_column(String(128))
    spread_bps: Mapped[float]
    mid: Mapped[float]
    imbalance: Mapped[float]
    depth_quote: Mapped[float]
    book_spread_bps: Mapped[float]

    __table_args__ = (Index("ix_spread_samples_group_ts_ns", "group", "ts_ns"),)


class ShadowTest(Base):
    """A candidate scored beside the live model over one window; the decision taken."""

    __tablename__ = "shadow_tests"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    candidate: Mapped[str] = mapped_column(String(64))
    live: Mapped[str | None] = mapped_column(String(64))  # None: no live model (baseline: persistence)
    metric: Mapped[str] = mapped_column(SHORT)
    window: Mapped[int]
    candidate_value: Mapped[float | None]
    live_value: Mapped[float | None]
    promoted: Mapped[bool]
    note: Mapped[str] = mapped_column(Text)


class ShadowScore(Base):
    """One model's score of one step of the stream during a shadow test."""

    __tablename__ = "shadow_scores"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    test_id: Mapped[int] = mapped_column(index=True)
    model: Mapped[str] = mapped_column(String(64))  # sha256, or "persistence"
    ts_ns: Mapped[int] = mapped_column(BigInteger)
    group: Mapped[str] = mapped_column(ID)
    predicted_bps: Mapped[float]
    survival: Mapped[float | None]
    actual_bps: Mapped[float]
