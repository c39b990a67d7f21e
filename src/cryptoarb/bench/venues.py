"""Per-venue benchmark: parse + apply µs per message on the cryptofeed captures, ours beside ccxt.pro's.

:func:`bench_native` replays one exchange's capture (its WebSocket file merged by time with its
``.http.0.0`` REST snapshots) through the native handler of that venue, with a fresh
:class:`~cryptoarb.venues.catalog.Catalog` and ``discover=True`` (the captures name markets the
built-in catalog does not know). ``perf_counter_ns`` brackets each ``on_message`` of a received
frame; REST snapshots go through ``on_snapshot`` the way ``arb replay`` routes them, untimed. The
latency of each frame is filed under the kind ``on_message`` returned (``DEPTH``, ``SNAPSHOT``).
The replay runs several times (fresh handler each time) and every statistic is the median over
the runs.

:mod:`cryptoarb.bench.ccxt_venues` does the same for ccxt.pro's own ``handle_message`` where it
can parse the capture; :func:`run_all` puts both side by side and ``main`` prints the table::

    python -m cryptoarb.bench.venues ../shared/data/exchange-captures [--json] [--runs 5]
"""

from __future__ import annotations

import argparse
import gc
import heapq
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptoarb.engine.latency import percentile
from cryptoarb.replay.cryptofeed import HTTP, OPEN, RECV, SENT, Record, read_records, venue_of
from cryptoarb.replay.run import REPLAY_GC_THRESHOLDS, apply_rest_snapshot
from cryptoarb.venues.base import DEPTH, SNAPSHOT, Handler, MessageError
from cryptoarb.venues.catalog import Catalog
from cryptoarb.venues.registry import canonical, handler_class

__all__ = [
    "KINDS",
    "Capture",
    "bench_native",
    "book_kind",
    "capture_groups",
    "load_capture",
    "main",
    "run_all",
    "summarize",
]

#: message kinds reported, by the value ``on_message`` returns
KINDS: dict[int, str] = {DEPTH: "DEPTH", SNAPSHOT: "SNAPSHOT"}

PathLike = str | Path


@dataclass
class Capture:
    """One exchange's session: its files and every record, merged by local time."""

    name: str  # file stem, e.g. "KRAKEN"
    venue: str  # ccxt id
    paths: list[Path]
    records: list[Record] = field(default_factory=list)

    @property
    def ws_url(self) -> str:
        for rec in self.records:
            if rec.kind == OPEN:
                return rec.url
        return ""

    def recv(self) -> list[Record]:
        return [r for r in self.records if r.kind == RECV]

    def sent(self) -> list[Record]:
        return [r for r in self.records if r.kind == SENT]


def _stem(path: Path) -> str:
    return path.name.split(".", 1)[0]


def capture_groups(captures_dir: PathLike) -> dict[str, list[Path]]:
    """Capture files grouped by exchange: ``{"BINANCE": [BINANCE.http.0.0, BINANCE.ws.1.0], ...}``
    (a group is its WebSocket file plus the REST file of the same session, when there is one)."""
    groups: dict[str, list[Path]] = {}
    for p in sorted(Path(captures_dir).iterdir()):
        if p.is_file() and not p.name.startswith("."):
            groups.setdefault(_stem(p), []).append(p)
    return {k: v for k, v in groups.items() if any(".ws." in p.name for p in v)}


def _expand(path_or_paths: PathLike | Sequence[PathLike]) -> list[Path]:
    """One path: that file plus its siblings of the same session (``NAME.*``); several: those."""
    if isinstance(path_or_paths, str | Path):
        p = Path(path_or_paths)
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no such capture file")
        stem = _stem(p)
        return sorted(q for q in p.parent.iterdir() if q.is_file() and _stem(q) == stem)
    paths = [Path(p) for p in path_or_paths]
    if not paths:
        raise ValueError("no capture files given")
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no such capture file")
    return paths


def load_capture(path_or_paths: PathLike | Sequence[PathLike]) -> Capture:
    """Read a capture (one ws file, found with its ``.http`` sibling, or an explicit list)."""
    paths = _expand(path_or_paths)
    per_file = [list(read_records(p)) for p in paths]
    # stable merge by local time, as arb replay does (ws and REST files of one session)
    records = list(heapq.merge(*per_file, key=lambda r: r.ts_ns))
    venue = ""
    for rec in records:
        if rec.kind in (OPEN, SENT, HTTP) and (v := venue_of(rec.url)):
            venue = canonical(v)
            break
    if not venue:
        raise ValueError(f"{paths[0]}: no known venue serves the URLs of this capture")
    return Capture(_stem(paths[0]), venue, paths, records)


# ---------------------------------------------------------------------------------- stats


def summarize(samples_ns: Sequence[int]) -> dict[str, float]:
    """count, p50/p99/mean in µs and messages per second of handling time."""
    n = len(samples_ns)
    if not n:
        return {"count": 0, "p50_us": 0.0, "p99_us": 0.0, "mean_us": 0.0, "msgs_per_s": 0.0}
    data = sorted(samples_ns)
    total = sum(data)

    return {
        "count": n,
        "p50_us": round(percentile(data, 50) / 1e3, 3),
        "p99_us": round(percentile(data, 99) / 1e3, 3),
        "mean_us": round(total / n / 1e3, 3),
        "msgs_per_s": round(n / (total / 1e9), 1) if total else 0.0,
    }


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of every numeric leaf over runs of the same shape; other values from the first."""
    first = runs[0]
    out: dict[str, Any] = {}
    for key, value in first.items():
        if isinstance(value, dict):
            out[key] = median_of([r[key] for r in runs if isinstance(r.get(key), dict)])
        elif isinstance(value, bool) or not isinstance(value, int | float):
            out[key] = value
        else:
            vals = [r[key] for r in runs if isinstance(r.get(key), int | float)]
            m = statistics.median(vals)
            out[key] = type(value)(m) if isinstance(value, int) and m == int(m) else round(m, 3)
    return out


# --------------------------------------------------------------------------------- native


def _noop(*_args: Any) -> None:
    return None


def _native_once(cls: type[Handler], venue: str, frames: list[tuple[str, str, int, bytes]]) -> dict[str, Any]:
    handler = cls(venue, Catalog(), _noop, discover=True)
    on_message = handler.on_message
    perf = time.perf_counter_ns
    by_kind: dict[int, list[int]] = {k: [] for k in KINDS}
    other = 0
    bad = 0
    errors = 0
    rest_errors = 0
    first_error = ""
    for kind, url, ts, raw in frames:
        if kind == HTTP:
            try:
                apply_rest_snapshot(handler, ("url", url), raw, ts)
            except Exception as e:
                rest_errors += 1
                if not first_error:
                    first_error = f"REST {url}: {type(e).__name__}: {e}"
            continue
        t0 = perf()
        try:
            k = on_message(raw, ts)
        except MessageError:
            bad += 1
            continue
        except Exception as e:  # a handler bug or an unnamed market: count it, keep going
            errors += 1
            if not first_error:
                first_error = f"{type(e).__name__}: {e}"
            continue
        dt = perf() - t0
        lat = by_kind.get(k)
        if lat is None:
            other += 1
        else:
            lat.append(dt)
    books = handler.books()
    gaps = sum(s.gaps for s in handler.syncs.values())
    out: dict[str, Any] = {name: summarize(by_kind[k]) for k, name in KINDS.items()}
    out.update(
        other=other,
        books_valid=sum(1 for b in books if b.valid),
        books_total=len(books),
        bad_messages=max(bad, handler.bad_messages),
        errors=errors,
        rest_errors=rest_errors,
        checksums_ok=handler.checksums_ok,
        checksum_failures=handler.checksum_failures,
        gaps=gaps,
        unknown_streams=handler.unknown_streams,
        first_error=first_error,
    )
    return out


def bench_native(path_or_paths: PathLike | Sequence[PathLike] | Capture, runs: int = 5) -> dict[str, Any]:
    """Replay one exchange's capture through its native handler ``runs`` times; medians.

    Returns ``{"capture", "venue", "files", "handler", "messages", "rest_snapshots", "runs",
    "DEPTH": {count, p50_us, p99_us, mean_us, msgs_per_s}, "SNAPSHOT": {...}, "other",
    "books_valid", "books_total", "bad_messages", "errors", "checksums_ok", "checksum_failures",
    "gaps", "first_error"}``, or with ``"reason"`` (and no numbers) when the venue has no
    native handler yet.
    """
    cap = path_or_paths if isinstance(path_or_paths, Capture) else load_capture(path_or_paths)
    frames = [(r.kind, r.url, r.ts_ns, r.payload) for r in cap.records if r.kind in (RECV, HTTP)]
    result: dict[str, Any] = {
        "capture": cap.name,
        "venue": cap.venue,
        "files": [p.name for p in cap.paths],
        "messages": sum(1 for f in frames if f[0] == RECV),
        "rest_snapshots": sum(1 for f in frames if f[0] == HTTP),
    }
    cls = handler_class(cap.venue)
    if cls is None:
        result["handler"] = None
        result["reason"] = f"no native handler for {cap.venue!r} (venues/{cap.venue}.py not available yet)"
        return result
    result["handler"] = cls.__name__
    thresholds = gc.get_threshold()
    gc.set_threshold(*REPLAY_GC_THRESHOLDS)  # the GC setting arb replay runs with
    try:
        per_run = []
        for _ in range(max(1, runs)):
            gc.collect()
            try:
                per_run.append(_native_once(cls, cap.venue, frames))
            except Exception as e:  # constructor failure and the like
                result["reason"] = f"{cls.__name__} failed: {type(e).__name__}: {e}"
                return result
    finally:
        gc.set_threshold(*thresholds)
    result["runs"] = len(per_run)
    result.update(median_of(per_run))
    return result


# ----------------------------------------------------------------------------- both sides


def run_all(captures_dir: PathLike, runs: int = 5, with_ccxt: bool = True,
            only: Iterable[str] | None = None,
            progress: Callable[[str, int, int], None] | None = None) -> list[dict[str, Any]]:
    """Every capture of ``captures_dir``: ``{"capture", "venue", "native": {...}, "ccxt": {...}}``.

    ``progress(step, done, total)`` is called before each step (a capture's native or ccxt.pro
    side) and once at the end, for a progress bar with an ETA."""
    from cryptoarb.bench import ccxt_venues

    wanted = {o.upper() for o in only} if only else None
    groups = {n: p for n, p in capture_groups(captures_dir).items() if wanted is None or n.upper() in wanted}
    total = len(groups) * (2 if with_ccxt else 1)
    done = 0

    def step(what: str) -> None:
        if progress is not None:
            progress(what, done, total)

    rows: list[dict[str, Any]] = []
    for name, paths in groups.items():
        try:
            cap = load_capture(paths)
        except Exception as e:
            rows.append({"capture": name, "venue": "?", "native": {"reason": str(e)}, "ccxt": {"reason": str(e)}})
            done += 2 if with_ccxt else 1
            continue
        step(f"{name}: native")
        native = bench_native(cap, runs=runs)
        done += 1
        ccxt: dict[str, Any] = {"reason": "not run (--no-ccxt)"}
        if with_ccxt:
            step(f"{name}: ccxt.pro")
            ccxt = ccxt_venues.bench_ccxt(cap, runs=runs)
            done += 1
        row: dict[str, Any] = {"capture": name, "venue": cap.venue, "native": native, "ccxt": ccxt}
        kind = book_kind(native)
        row["kind"] = kind
        n_mean = native.get(kind, {}).get("mean_us")
        c_mean = ccxt.get(kind, {}).get("mean_us")
        row["ratio"] = round(c_mean / n_mean, 2) if n_mean and c_mean else None
        rows.append(row)
    step("done")
    return rows


def book_kind(result: dict[str, Any]) -> str:
    """The kind the table compares: DEPTH, or SNAPSHOT for a venue that streams only full books."""
    if result.get("DEPTH", {}).get("count") or not result.get("SNAPSHOT", {}).get("count"):
        return "DEPTH"
    return "SNAPSHOT"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cryptoarb.bench.venues", description=__doc__.split("\n\n")[0])
    ap.add_argument("captures", nargs="?", default="../shared/data/exchange-captures",
                    help="folder of cryptofeed captures (default: ../shared/data/exchange-captures)")
    ap.add_argument("--runs", type=int, default=5, help="replays per side; statistics are medians (default 5)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("--no-ccxt", action="store_true", help="native side only")
    ap.add_argument("--only", action="append", help="capture name (e.g. KRAKEN); repeatable")
    args = ap.parse_args(argv)
    if not Path(args.captures).is_dir():
        print(f"{args.captures}: not a folder", file=sys.stderr)
        return 2
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    err = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TextColumn("ETA"),
                  TimeRemainingColumn(), console=err, transient=True) as bar:
        task = bar.add_task("loading captures", total=None)

        def progress(what: str, done: int, total: int) -> None:
            bar.update(task, description=what, completed=done, total=total)
            if not err.is_terminal and what != "done":
                err.print(f"[{done}/{total}] {what}", markup=False, highlight=False)

        rows = run_all(args.captures, runs=args.runs, with_ccxt=not args.no_ccxt, only=args.only,
                       progress=progress)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    from cryptoarb.bench import ccxt_venues
    from cryptoarb.bench.venues_table import render

    console = Console(width=max(Console().width, 200))
    table, notes = render(rows)
    console.print(table)
    console.print(f"[dim]ccxt {ccxt_venues.ccxt_version() or 'not installed'}; parser {ccxt_venues.parser_name()}; "
                  f"µs per frame, timed with perf_counter_ns; ratio = ccxt mean / native mean[/]")
    for n in notes:
        console.print(f"- {n}", markup=False, highlight=False)
    return 0


if __name__ == "__main__":
    # run the canonical module's main: ccxt_venues imports cryptoarb.bench.venues, and its Capture
    # class must be the one bench_native builds (python -m would otherwise load this file twice)
    from cryptoarb.bench.venues import main as _main

    raise SystemExit(_main())
