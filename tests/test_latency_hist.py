"""The latency recorder is a fixed-size histogram: bounded memory, percentiles within its precision."""

from __future__ import annotations

import random

import pytest

from cryptoarb.engine.latency import BUCKETS, FOLD_AT, PRECISION, LatencyRecorder, bucket_bounds, bucket_of, percentile


def test_the_vectorised_fold_puts_each_sample_in_its_bucket() -> None:
    values = [*range(0, 600), *(int(1.37**k) for k in range(20, 90)), 2**37, 10**15, -3]
    rec = LatencyRecorder()
    for v in values:
        rec.append(v)
    expected = [0] * BUCKETS
    for v in values:
        expected[bucket_of(v)] += 1
    assert rec.counts.tolist() == expected


def test_buckets_tile_the_range_without_gaps_or_overlaps() -> None:
    prev_hi = 0
    for i in range(BUCKETS):
        lo, hi = bucket_bounds(i)
        assert lo == prev_hi and hi > lo
        assert bucket_of(lo) == i and bucket_of(hi - 1) == i
        assert (hi - lo) <= max(1, lo * 2 * PRECISION)  # a bucket is at most 1/128 of its values wide
        prev_hi = hi
    assert bucket_of(-5) == 0 and bucket_of(10**15) == BUCKETS - 1


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_percentiles_match_the_exact_ones_within_the_bucket_precision(seed: int) -> None:
    rnd = random.Random(seed)
    # a latency-like mix: a lognormal body around 20 µs and a tail of ms-long stalls
    data = [int(rnd.lognormvariate(10, 0.6)) for _ in range(20_000)] + [rnd.randrange(10**6, 10**8) for _ in range(300)]
    rec = LatencyRecorder()
    for v in data:
        rec.append(v)
    ref = sorted(data)
    assert len(rec) == len(data) and rec.total_ns == sum(data)
    for q in (0, 50, 90, 99, 99.9, 100):
        exact = percentile(ref, q)
        assert rec.value_at(q) == pytest.approx(exact, rel=PRECISION, abs=0.5), q
    s = rec.summary_us()
    assert set(s) == {"p50", "p99", "p999"}
    assert s["p99"] == pytest.approx(percentile(ref, 99) / 1e3, rel=PRECISION, abs=1e-3)


def test_small_values_are_exact_and_memory_does_not_grow() -> None:
    rec = LatencyRecorder()
    for v in range(200):
        rec.append(v)
    assert rec.value_at(50) == percentile(list(range(200)), 50)
    for v in range(0, 10**9, 9973):
        rec.append(v)
        rec.maybe_fold()  # as the live ticker and the replay loop do
        assert len(rec._buf) < FOLD_AT  # the buffer never outgrows its fold threshold
    assert len(rec) == 200 + len(range(0, 10**9, 9973))
    assert rec.counts.shape == (BUCKETS,) and not len(rec._buf)  # fixed size, whatever the count


def test_merge_adds_the_samples_of_another_recorder() -> None:
    a, b, both = LatencyRecorder(), LatencyRecorder(), LatencyRecorder()
    for v in range(1000, 50_000, 7):
        (a if v % 2 else b).append(v)
        both.append(v)
    a.merge(b)
    assert (a.counts == both.counts).all() and len(a) == len(both) and a.total_ns == both.total_ns


def test_an_empty_recorder_reports_zeros() -> None:
    assert LatencyRecorder().summary_us() == {"p50": 0.0, "p99": 0.0, "p999": 0.0}
