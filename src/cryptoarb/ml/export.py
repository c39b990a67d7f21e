"""Stored features to files: ``arb features export``.

Two tables: ``series`` (``spread_samples``: the documented columns of
:mod:`cryptoarb.ml.dataset`, plus ``run_id``, ``buy_key``, ``sell_key``) and ``opportunities``
(``training_features``, its JSON flattened into columns: ``buy_depth5_quote``, ``volatility_bps``,
``spread_hist_bps`` as a space-separated list, ...). CSV, Parquet (pyarrow) or NPZ (numpy).
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from cryptoarb.ml.dataset import DatasetError, Series, from_columns
from cryptoarb.storage.models import TrainingFeature
from cryptoarb.storage.models_ml import SpreadSample

FORMATS = ("csv", "parquet", "npz")
TABLES = ("series", "opportunities")
SERIES_EXPORT = ("ts_ns", "run_id", "group", "buy_key", "sell_key", "spread_bps", "mid", "imbalance",
                 "depth_quote", "book_spread_bps")
OPP_COLUMNS = ("ts_ns", "run_id", "group", "buy_key", "sell_key", "kind", "spread_bps", "net_bps",
               "buy_depth_quote", "sell_depth_quote", "label", "realised_pnl")


def parse_time(text: str, option: str) -> int:
    """Nanoseconds since the epoch from an ISO date/time (UTC unless it says otherwise) or an
    integer number of nanoseconds."""
    t = text.strip()
    if t.isdigit():
        return int(t)
    try:
        d = datetime.fromisoformat(t)
    except ValueError:
        raise DatasetError(f"{option} {text!r}: give an ISO date/time (2024-08-09T00:00:00) or nanoseconds") from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    return int(d.timestamp() * 1e9)


def _where(model: Any, since: int | None, until: int | None, group: str | None) -> list[Any]:
    conds = []
    if since is not None:
        conds.append(model.ts_ns >= since)
    if until is not None:
        conds.append(model.ts_ns < until)
    if group is not None:
        conds.append(model.group == group)
    return conds


def series_columns(db: Engine, since: int | None = None, until: int | None = None,
                   group: str | None = None) -> dict[str, list[Any]]:
    cols = [getattr(SpreadSample, c) for c in SERIES_EXPORT]
    stmt = select(*cols).where(*_where(SpreadSample, since, until, group)).order_by(SpreadSample.ts_ns,
                                                                                    SpreadSample.id)
    with db.connect() as conn:
        rows = conn.execute(stmt).all()
    return {c: [r[i] if r[i] is not None or c != "run_id" else "" for r in rows] for i, c in enumerate(SERIES_EXPORT)}


def load_series(db: Engine, since: int | None = None, until: int | None = None, group: str | None = None) -> Series:
    """The stored spread series of a range, checked (see :func:`cryptoarb.ml.dataset.from_columns`)."""
    return from_columns(series_columns(db, since, until, group), "stored spread_samples")


def opportunity_columns(db: Engine, since: int | None = None, until: int | None = None,
                        group: str | None = None) -> dict[str, list[Any]]:
    cols = [getattr(TrainingFeature, c) for c in OPP_COLUMNS]
    stmt = (select(*cols, TrainingFeature.features).where(*_where(TrainingFeature, since, until, group))
            .order_by(TrainingFeature.ts_ns, TrainingFeature.id))
    with db.connect() as conn:
        rows = conn.execute(stmt).all()
    extra: list[str] = sorted({k for r in rows for k in (r[-1] or {})})
    out: dict[str, list[Any]] = {c: [] for c in (*OPP_COLUMNS, *extra)}
    for r in rows:
        for i, c in enumerate(OPP_COLUMNS):
            out[c].append(r[i])
        feats = r[-1] or {}
        for k in extra:
            v = feats.get(k)
            out[k].append(" ".join(f"{x:g}" for x in v) if isinstance(v, list) else v)
    return out


def write(cols: dict[str, list[Any]], path: Path, fmt: str) -> int:
    """Write columns to ``path``; returns the row count."""
    if fmt not in FORMATS:
        raise DatasetError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    names = list(cols)
    n = len(cols[names[0]]) if names else 0
    if fmt == "csv":
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(names)
            for i in range(n):
                w.writerow(["" if cols[c][i] is None else cols[c][i] for c in names])
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({c: cols[c] for c in names}), path)
    else:
        arrays = {c: _array(cols[c]) for c in names}
        with path.open("wb") as f:
            np.savez_compressed(f, **arrays)  # type: ignore[arg-type]
    return n


def _array(values: list[Any]) -> np.ndarray:
    """An NPZ column: numbers as int64/float64 (None -> NaN), anything else as text."""
    if all(isinstance(v, bool | int) and not isinstance(v, bool) for v in values):
        return np.asarray(values, np.int64)
    if all(v is None or isinstance(v, int | float) for v in values):
        return np.asarray([np.nan if v is None else v for v in values], np.float64)
    return np.asarray(["" if v is None else str(v) for v in values])
