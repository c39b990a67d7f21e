"""Latency samples in integer nanoseconds, summarised as percentiles.

A recorder is a fixed-size log-linear histogram (the layout of HdrHistogram): values below 256 ns
each have their own bucket; above, every power of two is split into 128 equal buckets, so a
bucket is at most 1/128 of its values wide and a percentile, reported at the bucket's middle, is
within 0.4 % of the exact sample. It spans 0 ns to ~275 s (larger values count in the last
bucket) in 4,096 counters: 32 KB per recorder, whatever the number of messages. The previous
recorder kept every sample (16 bytes a message: ~16 GB a day at typical-hour whole-market rates,
issue #15).

On the hot path a sample is only appended to a small buffer (``array.append``, a C call: the
histogram arithmetic in Python cost ~0.5 µs a sample); the buffer is folded into the histogram,
vectorised, by every read and by :meth:`maybe_fold`, which long runs call periodically (the live
runner's ticker, the replay loop), so it never holds more than a few thousand samples.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable

import numpy as np

#: values below this many ns have a bucket each; above, 2**(SUB_BITS - 1) buckets per octave
SUB_BITS = 8
_SUB = 1 << SUB_BITS
_HALF_BITS = SUB_BITS - 1
#: buckets: enough octaves for ~275 s (2**38 ns)
BUCKETS = 4096
#: the relative error bound of a reported percentile (half a bucket's width, relative)
PRECISION = 1 / (1 << SUB_BITS)
#: samples buffered before :meth:`LatencyRecorder.maybe_fold` folds them
FOLD_AT = 4096


def bucket_of(v: int) -> int:
    """The histogram bucket counting value ``v`` (ns; negative counts as 0)."""
    if v < _SUB:
        return v if v > 0 else 0
    s = v.bit_length() - SUB_BITS
    return min((s << _HALF_BITS) + (v >> s), BUCKETS - 1)


def bucket_bounds(i: int) -> tuple[int, int]:
    """The values ``[lo, hi)`` bucket ``i`` counts."""
    if i < _SUB:
        return i, i + 1
    s = (i >> _HALF_BITS) - 1
    m = i - (s << _HALF_BITS)
    return m << s, (m + 1) << s


class LatencyRecorder:
    """Counts samples into a fixed-size histogram; percentiles are computed on demand."""

    __slots__ = ("_buf", "_counts", "_last", "_n", "_total", "append", "on_fold")

    def __init__(self) -> None:
        self._counts = np.zeros(BUCKETS, dtype=np.int64)
        self._n = 0
        self._total = 0
        self._last = 0
        self._buf = array("q")
        #: listeners of each folded batch of raw samples (ns), e.g. a Prometheus histogram; they
        #: run where the fold runs (a tick, a read, every FOLD_AT messages), never per message
        self.on_fold: list[Callable[[np.ndarray], None]] = []
        #: count one sample (ns); the hot path's only cost
        self.append = self._buf.append

    def fold(self) -> None:
        """Move the buffered samples into the histogram."""
        buf = self._buf
        if not buf:
            return
        v = np.maximum(np.array(buf, dtype=np.int64), 0)
        self._last = int(buf[-1])
        del buf[:]  # in place: ``append`` stays bound to it
        for fn in self.on_fold:
            fn(v)
        self._n += len(v)
        self._total += int(v.sum())
        big = v >= _SUB
        idx = v.copy()
        if big.any():
            w = v[big]
            s = np.frexp(w.astype(np.float64))[1].astype(np.int64) - SUB_BITS  # bit_length - SUB_BITS
            idx[big] = np.minimum((s << _HALF_BITS) + (w >> s), BUCKETS - 1)
        self._counts += np.bincount(idx, minlength=BUCKETS)

    def maybe_fold(self) -> None:
        """Fold when enough samples are buffered (cheap to call often)."""
        if len(self._buf) >= FOLD_AT:
            self.fold()

    @property
    def counts(self) -> np.ndarray:
        self.fold()
        return self._counts

    @property
    def last(self) -> int:
        """The latest sample (ns; 0 before any)."""
        buf = self._buf
        return buf[-1] if buf else self._last

    @property
    def n(self) -> int:
        return self._n + len(self._buf)

    @property
    def total_ns(self) -> int:
        """The exact sum of the samples (the bench's messages/s)."""
        self.fold()
        return self._total

    def __len__(self) -> int:
        return self._n + len(self._buf)

    def value_at(self, q: float) -> float:
        """The nearest-rank ``q``-th percentile (ns), at the middle of its bucket; 0 when empty."""
        self.fold()
        n = self._n
        if not n:
            return 0.0
        rank = max(1, min(n, round(q / 100 * n + 0.5)))
        i = int(np.searchsorted(np.cumsum(self._counts), rank))
        lo, hi = bucket_bounds(min(i, BUCKETS - 1))
        return float(lo) if hi - lo == 1 else (lo + hi - 1) / 2

    def percentiles_us(self, *qs: float) -> dict[str, float]:
        out: dict[str, float] = {}
        for q in qs:
            name = "p" + f"{q:g}".replace(".", "")
            out[name] = round(self.value_at(q) / 1e3, 3) if len(self) else 0.0
        return out

    def summary_us(self) -> dict[str, float]:
        return self.percentiles_us(50, 99, 99.9)

    def merge(self, other: LatencyRecorder) -> None:
        """Add ``other``'s samples to this recorder (several connections or processes)."""
        self.fold()
        self._counts += other.counts
        self._n += other._n
        self._total += other._total


def percentile(sorted_data: list[int], q: float) -> float:
    """Nearest-rank percentile."""
    n = len(sorted_data)
    k = max(0, min(n - 1, round(q / 100 * n + 0.5) - 1))
    return float(sorted_data[k])
