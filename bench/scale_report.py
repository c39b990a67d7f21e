"""What the load harness reports (issue #15): windows of the probes' cumulative lines, merged
across engine processes (histograms add; percentiles come from the sum, never averaged), and
the knee rule."""

from __future__ import annotations

import statistics
from typing import Any

KNEE_P99_MS = 10.0
KNEE_PROCESSED = 0.9  # a rate is kept up with when at least this share of it is processed
#: a run is invalid when its venues sent more than this share of frames > 5 ms late: its p99
#: would be the venue's lateness, not the engine's
LATE_SHARE = 0.01


def venue_valid(late: int, sent: int) -> bool:
    return late <= LATE_SHARE * max(1, sent)


def bucket_us(idx: int) -> float:
    """The middle of a probe histogram bucket, µs (see scale_probe/sitecustomize.py)."""
    if idx < 64:
        return float(idx)
    e = idx // 32 - 1
    return float(((32 + idx % 32) << e) + (1 << e) / 2)


def percentile_ms(hist: dict[int, int], q: float) -> float | None:
    n = sum(hist.values())
    if not n:
        return None
    rank, seen = q * n, 0
    for idx in sorted(hist):
        seen += hist[idx]
        if seen >= rank:
            return round(bucket_us(idx) / 1000, 3)
    return round(bucket_us(max(hist)) / 1000, 3)


def _at(rows: list[dict[str, Any]], t: int) -> dict[str, Any] | None:
    """The last line written at or before ``t`` (None: none yet)."""
    best = None
    for r in rows:
        if r["t"] > t:
            break
        best = r
    return best


def window(probes: dict[int, list[dict[str, Any]]], start: int, end: int) -> dict[str, Any]:
    """Every process's counters between ``start`` and ``end`` (ns), summed; the histogram merged."""
    hist: dict[int, int] = {}
    n = frames = 0
    cpu = 0.0
    # rates are summed per process over each process's own span: the probes write at different
    # moments, so the union of the spans is longer than any one (up to a write interval), and
    # dividing the summed counts by it under-reported what several processes did together
    n_s = frames_s = cpu_s = 0.0
    t0, t1 = end, start
    for rows in probes.values():
        a, b = _at(rows, start), _at(rows, end)
        if b is None:
            continue
        a = a or {"t": rows[0]["t"], "n": 0, "all": 0, "cpu": 0.0, "hist": {}}
        t0, t1 = min(t0, a["t"]), max(t1, b["t"])
        n += b["n"] - a["n"]
        frames += b["all"] - a["all"]
        cpu += b["cpu"] - a["cpu"]
        span = (b["t"] - a["t"]) / 1e9
        if span > 0:
            n_s += (b["n"] - a["n"]) / span
            frames_s += (b["all"] - a["all"]) / span
            cpu_s += (b["cpu"] - a["cpu"]) / span
        for k, c in b["hist"].items():
            d = c - a["hist"].get(k, 0)
            if d:
                hist[int(k)] = hist.get(int(k), 0) + d
    return {"n": n, "frames": frames, "cpu": cpu, "hist": hist, "wall": max(1e-9, (t1 - t0) / 1e9),
            "n_per_s": n_s, "frames_per_s": frames_s, "cpu_per_s": cpu_s}


def cold_start(probes: dict[int, list[dict[str, Any]]], books: int, since: int) -> float | None:
    """Seconds from ``since`` to the first moment every expected book was valid."""
    latest: dict[int, int] = {}
    for t, pid, valid in sorted((r["t"], pid, r["valid"]) for pid, rows in probes.items() for r in rows):
        latest[pid] = valid
        if sum(latest.values()) >= books:
            return round((t - since) / 1e9, 2)
    return None


def caught_up(probes: dict[int, list[dict[str, Any]]], t0: int, rate: float, after: int) -> int | None:
    """The first moment from ``after`` on when the engine processes have handled every frame the
    schedule had due, to within 150 ms of it (the cold start's backlog drained); None: never."""
    latest: dict[int, int] = {}
    for t, pid, n in sorted((r["t"], pid, r["n"]) for pid, rows in probes.items() for r in rows):
        latest[pid] = n
        if t >= after and sum(latest.values()) >= rate * ((t - t0) / 1e9 - 0.15):
            return t
    return None


def summarize(probes: dict[int, list[dict[str, Any]]], start: int, end: int, books: int) -> dict[str, Any]:
    """One run's figures over [start, end). RSS per 1,000 books is read across runs of
    different sizes (the slope), not from one run: the base (ccxt, the engine) is ~170 MB."""
    w = window(probes, start, end)
    lag = []  # p99 of each second of the window: a growing tail means the engine falls behind
    for s in range(start, end - 999_999_999, 1_000_000_000):
        lag.append(percentile_ms(window(probes, s, s + 1_000_000_000)["hist"], 0.99))
    last = [_at(rows, end) or rows[-1] for rows in probes.values()]
    first = [_at(rows, start) or rows[0] for rows in probes.values()]
    rss = sum(r["rss_kb"] for r in last) / 1024
    n = w["n"]
    return {
        "processed_per_s": round(w["n_per_s"], 1), "frames_per_s": round(w["frames_per_s"], 1),
        "cpu_pct": round(100 * w["cpu_per_s"], 1),
        "cpu_us_per_msg": round(1e6 * w["cpu"] / n, 2) if n else None,
        "p50_ms": percentile_ms(w["hist"], 0.5), "p99_ms": percentile_ms(w["hist"], 0.99),
        "p999_ms": percentile_ms(w["hist"], 0.999), "p99_per_s_ms": lag,
        "rss_start_mb": round(sum(r["rss_kb"] for r in first) / 1024, 1), "rss_mb": round(rss, 1),
        "valid_books": sum(r["valid"] for r in last), "engine_processes": len(probes),
        "rss_by_frames": rss_series(probes, start, end),
        "gc_window": gc_window(probes, start, end),
    }


def gc_window(probes: dict[int, list[dict[str, Any]]], start: int, end: int) -> list[list[float]] | None:
    """Collector passes per generation in the window, all processes: [count, total ms, longest
    ms (over the whole run)]; None when the probe did not record them."""
    out = [[0, 0.0, 0.0] for _ in range(3)]
    for rows in probes.values():
        a, b = _at(rows, start), _at(rows, end)
        if b is None or "gc" not in b:
            return None
        for g in range(3):
            out[g][0] += b["gc"][g][0] - (a["gc"][g][0] if a else 0)
            out[g][1] += b["gc"][g][1] - (a["gc"][g][1] if a else 0.0)
            out[g][2] = max(out[g][2], b["gc"][g][2])
    return [[c, round(t, 1), round(m, 1)] for c, t, m in out]


def rss_series(probes: dict[int, list[dict[str, Any]]], start: int, end: int, points: int = 6
               ) -> list[tuple[int, float]]:
    """(frames processed since start-up, RSS MB) at ``points`` moments of the window, all
    engine processes summed: memory against messages, whatever the rate."""
    out = []
    for i in range(points):
        t = start + (end - start) * i // (points - 1)
        rows = [r for r in (_at(rs, t) for rs in probes.values()) if r is not None]
        out.append((sum(r["all"] for r in rows), round(sum(r["rss_kb"] for r in rows) / 1024, 1)))
    return out


def kept_up(row: dict[str, Any]) -> bool:
    p99 = row.get("p99_ms")
    return (p99 is not None and p99 < KNEE_P99_MS and row["processed_per_s"] >= KNEE_PROCESSED * row["offered_per_s"]
            and row["valid_books"] >= row["books"])


def median_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in rows[0].items():
        vals = [r[k] for r in rows if isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool)]
        out[k] = statistics.median(vals) if vals and len(vals) == len(rows) else v
    out["runs"] = len(rows)
    out["venue_valid"] = all(r.get("venue_valid", False) for r in rows)
    return out
