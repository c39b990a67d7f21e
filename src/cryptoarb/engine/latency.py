"""Latency samples in integer nanoseconds, summarised as percentiles.

A recorder is a fixed-size log-linear histogram (the layout of HdrHistogram): values below 256 ns
each have their own bucket; above, every power of two is split into 128 equal buckets, so a
bucket is at most 1/128 of its values wide and a percentile, reported at the bucket's middle, is
within 0.4 % of the exact sample. It spans 0 ns to ~275 s (larger values count in the last
bucket) in 4,096 counters: 32 KB per recorder, whatever the number of messages. The previous
recorder kept every sample (16 bytes a message: ~16 GB a day at typical-hour whole-market rates,
issue #15).
"""

from __future__ import annotations

from array import array

#: values below this many ns have a bucket each; above, 2**(SUB_BITS - 1) buckets per octave
SUB_BITS = 8
_SUB = 1 << SUB_BITS
_HALF_BITS = SUB_BITS - 1
#: buckets: enough octaves for ~275 s (2**38 ns)
BUCKETS = 4096
#: the relative error bound of a reported percentile (half a bucket's width, relative)
PRECISION = 1 / (1 << SUB_BITS)


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

    __slots__ = ("counts", "n", "total_ns")

    def __init__(self) -> None:
        self.counts = array("q", bytes(8 * BUCKETS))
        self.n = 0
        self.total_ns = 0  # exact sum of the samples (the bench's messages/s)

    def append(self, v: int) -> None:
        """Count one sample (ns). On the hot path: a few integer operations, no allocation."""
        self.n += 1
        self.total_ns += v
        if v < _SUB:
            self.counts[v if v > 0 else 0] += 1
            return
        s = v.bit_length() - SUB_BITS
        i = (s << _HALF_BITS) + (v >> s)
        self.counts[i if i < BUCKETS else BUCKETS - 1] += 1

    def __len__(self) -> int:
        return self.n

    def value_at(self, q: float) -> float:
        """The nearest-rank ``q``-th percentile (ns), at the middle of its bucket; 0 when empty."""
        n = self.n
        if not n:
            return 0.0
        rank = max(1, min(n, round(q / 100 * n + 0.5)))
        seen = 0
        for i, c in enumerate(self.counts):
            if c:
                seen += c
                if seen >= rank:
                    lo, hi = bucket_bounds(i)
                    return float(lo) if hi - lo == 1 else (lo + hi - 1) / 2
        return float(bucket_bounds(BUCKETS - 1)[0])  # unreachable while counts sum to n

    def percentiles_us(self, *qs: float) -> dict[str, float]:
        out: dict[str, float] = {}
        for q in qs:
            name = "p" + f"{q:g}".replace(".", "")
            out[name] = round(self.value_at(q) / 1e3, 3) if self.n else 0.0
        return out

    def summary_us(self) -> dict[str, float]:
        return self.percentiles_us(50, 99, 99.9)

    def merge(self, other: LatencyRecorder) -> None:
        """Add ``other``'s samples to this recorder (several connections or processes)."""
        counts = self.counts
        for i, c in enumerate(other.counts):
            if c:
                counts[i] += c
        self.n += other.n
        self.total_ns += other.total_ns


def percentile(sorted_data: list[int], q: float) -> float:
    """Nearest-rank percentile."""
    n = len(sorted_data)
    k = max(0, min(n - 1, round(q / 100 * n + 0.5) - 1))
    return float(sorted_data[k])
