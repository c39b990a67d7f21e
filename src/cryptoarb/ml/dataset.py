"""The spread series as arrays, checked, and cut into model windows.

The documented columns of a series file (``arb features export --table series`` writes them;
``arb retrain --from FILE`` reads them): ``ts_ns`` (int, event time), ``group`` (str),
``spread_bps``, ``mid``, ``imbalance``, ``depth_quote``, ``book_spread_bps`` (floats);
optional ``run_id`` (rows of one group from different runs are separate streams). CSV, Parquet
and NPZ hold the same columns.

A window is ``window`` consecutive samples of one stream; its targets are the spread
``horizon`` steps after its last sample and whether that spread is above the edge.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

SERIES_COLUMNS = ("ts_ns", "group", "spread_bps", "mid", "imbalance", "depth_quote", "book_spread_bps")
FLOAT_COLUMNS = SERIES_COLUMNS[2:]
#: what the model sees per step, in this order (the feature schema stored with every model)
STEP_FEATURES = ("spread_bps", "spread_change_bps", "mid_return_bps", "imbalance", "log_depth_quote",
                 "book_spread_bps")
FArray = npt.NDArray[np.float64]
IArray = npt.NDArray[np.int64]


class DatasetError(ValueError):
    """The data cannot train or score a model: the message says what is wrong."""


@dataclass
class Series:
    """Column arrays of spread samples (any order; :func:`windows` sorts them)."""

    ts_ns: IArray
    group: npt.NDArray[np.str_]
    stream: npt.NDArray[np.str_]  # run_id + group: samples of one stream are consecutive in time
    values: dict[str, FArray]

    def __len__(self) -> int:
        return len(self.ts_ns)

    @property
    def range_ns(self) -> tuple[int, int]:
        return (int(self.ts_ns.min()), int(self.ts_ns.max())) if len(self) else (0, 0)


def from_columns(cols: dict[str, Any], source: str) -> Series:
    """Check and convert columns (lists or arrays). Missing columns, non-numbers and NaN or
    infinite values are errors naming the column and the first bad row."""
    missing = [c for c in SERIES_COLUMNS if c not in cols]
    if missing:
        raise DatasetError(f"{source}: missing column(s) {', '.join(missing)} "
                           f"(a series file has {', '.join(SERIES_COLUMNS)})")
    n = len(cols["ts_ns"])
    if n == 0:
        raise DatasetError(f"{source}: no rows (empty dataset)")
    try:
        ts = np.asarray(cols["ts_ns"], dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise DatasetError(f"{source}: column ts_ns must be integer nanoseconds") from None
    values: dict[str, FArray] = {}
    for c in FLOAT_COLUMNS:
        try:
            arr = np.asarray(cols[c], dtype=np.float64)
        except (TypeError, ValueError):
            raise DatasetError(f"{source}: column {c} holds a value that is not a number") from None
        if len(arr) != n:
            raise DatasetError(f"{source}: column {c} has {len(arr)} rows, ts_ns has {n}")
        bad = ~np.isfinite(arr)
        if bad.any():
            raise DatasetError(f"{source}: column {c} has {int(bad.sum())} NaN/infinite value(s), "
                               f"first at row {int(np.argmax(bad))}")
        values[c] = arr
    group = np.asarray([str(g) for g in cols["group"]])
    run = cols.get("run_id")
    stream = group if run is None else np.char.add(np.char.add(np.asarray([str(r) for r in run]), "|"), group)
    return Series(ts, group, stream, values)


def load(path: Path) -> Series:
    """A series file by its extension: .csv, .parquet or .npz."""
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    ext = path.suffix.lower()
    try:
        if ext == ".csv":
            with path.open(newline="") as f:
                rows = list(csv.DictReader(f))
            header = list(rows[0]) if rows else _csv_header(path)
            cols: dict[str, Any] = {h: [r[h] for r in rows] for h in header}
            if "ts_ns" in cols:
                cols["ts_ns"] = [int(v) for v in cols["ts_ns"]]
            return from_columns(cols, str(path))
        if ext == ".parquet":
            import pyarrow.parquet as pq

            return from_columns(pq.read_table(path).to_pydict(), str(path))
        if ext == ".npz":
            with np.load(path, allow_pickle=False) as z:
                return from_columns({k: z[k] for k in z.files}, str(path))
    except DatasetError:
        raise
    except Exception as e:  # a damaged file: one line naming it
        raise DatasetError(f"{path}: cannot read it as {ext[1:]}: {type(e).__name__}: {e}") from None
    raise DatasetError(f"{path}: unknown format {ext or '(no extension)'}; use .csv, .parquet or .npz")


def _csv_header(path: Path) -> list[str]:
    with path.open(newline="") as f:
        return next(csv.reader(f), [])


@dataclass
class Windows:
    """Model inputs and targets, ordered by the time of the window's last sample."""

    x: npt.NDArray[np.float32]  # (n, window, len(STEP_FEATURES)), not normalised
    spread_now: FArray  # spread at the window's last sample
    spread_future: FArray  # spread `horizon` steps later
    ts_ns: IArray  # time of the window's last sample
    target_ns: IArray  # time of the target sample
    group: npt.NDArray[np.str_]

    def __len__(self) -> int:
        return len(self.ts_ns)

    def take(self, idx: npt.NDArray[np.int64] | slice) -> Windows:
        return Windows(self.x[idx], self.spread_now[idx], self.spread_future[idx], self.ts_ns[idx],
                       self.target_ns[idx], self.group[idx])


def step_features(spread: FArray, mid: FArray, imbalance: FArray, depth: FArray, book_spread: FArray) -> FArray:
    """Per-step model inputs of one stream, in time order: (n, len(STEP_FEATURES)). The first
    step's changes are 0 (scoring does the same with the samples it holds)."""
    d_spread = np.diff(spread, prepend=spread[:1])
    logmid = np.log(np.maximum(mid, 1e-12))
    ret = np.diff(logmid, prepend=logmid[:1]) * 1e4
    return np.stack([spread, d_spread, ret, imbalance, np.log1p(np.maximum(depth, 0.0)), book_spread], axis=1)


def windows(s: Series, window: int, horizon: int, max_gap_steps: float = 10.0) -> Windows:
    """Every window of ``window`` consecutive samples of one stream with a target ``horizon``
    steps later. A stream is cut where time jumps back or leaps more than ``max_gap_steps``
    times its median step (a pause or another run), so no window spans a hole."""
    xs: list[npt.NDArray[np.float32]] = []
    now: list[FArray] = []
    fut: list[FArray] = []
    ts: list[IArray] = []
    tts: list[IArray] = []
    grp: list[npt.NDArray[np.str_]] = []
    v = s.values
    need = window + horizon
    for stream in np.unique(s.stream):
        idx = np.flatnonzero(s.stream == stream)
        idx = idx[np.argsort(s.ts_ns[idx], kind="stable")]
        t = s.ts_ns[idx]
        steps = np.diff(t)
        pos = steps[steps > 0]
        limit = (np.median(pos) if len(pos) else 1) * max_gap_steps
        cuts = np.flatnonzero((steps <= 0) | (steps > limit)) + 1
        for seg in np.split(idx, cuts):
            if len(seg) < need:
                continue
            f = step_features(v["spread_bps"][seg], v["mid"][seg], v["imbalance"][seg], v["depth_quote"][seg],
                              v["book_spread_bps"][seg]).astype(np.float32)
            n = len(seg) - need + 1
            view = np.lib.stride_tricks.sliding_window_view(f, (window, f.shape[1]))[:n, 0]
            xs.append(np.ascontiguousarray(view))
            sp = v["spread_bps"][seg]
            now.append(sp[window - 1:window - 1 + n])
            fut.append(sp[need - 1:need - 1 + n])
            ts.append(s.ts_ns[seg][window - 1:window - 1 + n])
            tts.append(s.ts_ns[seg][need - 1:need - 1 + n])
            grp.append(s.group[seg][:n])
    if not xs:
        return Windows(np.zeros((0, window, len(STEP_FEATURES)), np.float32), np.zeros(0), np.zeros(0),
                       np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, dtype=str))
    out = Windows(np.concatenate(xs), np.concatenate(now), np.concatenate(fut), np.concatenate(ts),
                  np.concatenate(tts), np.concatenate(grp))
    order = np.lexsort((out.group, out.ts_ns))
    return out.take(order)


def split_by_time(w: Windows, val_fraction: float, min_train: int, min_val: int) -> tuple[Windows, Windows]:
    """Train on the earlier windows, validate on the later ones (no target of a training window
    falls inside the validation range)."""
    if len(w) < min_train + min_val:
        raise DatasetError(f"too small: {len(w)} window(s), training needs at least {min_train + min_val}; "
                           "record or export a longer range")
    cut = int(len(w) * (1 - val_fraction))
    cut = min(max(cut, min_train), len(w) - min_val)
    val_start = int(w.ts_ns[cut])
    train_idx = np.flatnonzero(w.target_ns < val_start)
    val = w.take(slice(cut, None))
    if len(train_idx) < min_train:
        raise DatasetError(f"too small: {len(train_idx)} training window(s) end before the validation range, "
                           f"at least {min_train} needed")
    return w.take(train_idx), val
