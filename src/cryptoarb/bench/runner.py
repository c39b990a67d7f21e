"""``arb bench``: our hot path and ccxt.pro's, side by side, on the same captured messages.

Both sides are timed the same way: ``perf_counter_ns`` around the handling of each depth
frame (raw bytes in; for us up to the detector's decision, for ccxt.pro JSON parse plus its
order-book update), and messages/s is depth frames over the summed handling time.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from cryptoarb.config import Settings
from cryptoarb.engine.engine import Engine
from cryptoarb.engine.latency import LatencyRecorder
from cryptoarb.replay.reader import CaptureError, LineStats, Source, parse_sources, stream, total_bytes
from cryptoarb.replay.run import REPLAY_GC_THRESHOLDS, ReplayError, nothing_built, replay
from cryptoarb.stopping import StopFlag


class BenchError(Exception):
    pass


def _stats(rec: LatencyRecorder, with_rate: bool = True) -> dict[str, float | None]:
    """Percentiles (and messages/s); every value None when nothing was measured, never 0.0."""
    s = rec.summary_us()
    empty = not len(rec)
    out: dict[str, float | None] = {k: None if empty else s[q] for k, q in
                                    (("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p999"))}
    if with_rate:
        total = rec.total_ns
        out["msgs_per_s"] = round(len(rec) / (total / 1e9), 1) if total else None
    return out


def _progress(console: Console | None) -> Progress:
    """A bar per phase: percentage of the capture bytes read, messages, elapsed and ETA."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
        TextColumn("{task.fields[n]:,} messages"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        console=console, disable=console is None, transient=True,
    )


def run_bench(
    settings: Settings, specs: list[str], with_ccxt: bool = True, progress_console: Console | None = None,
    stop: StopFlag | None = None,
) -> dict[str, Any]:
    """Our replay, then ccxt.pro's on the same messages. ``stop`` (a signal) ends the phase
    under way between two messages: the result then holds what was measured and
    ``"interrupted": True`` (the ccxt.pro phase is skipped when ours was cut short). When the
    captures gave nothing to measure, ``"warning"`` says why and the figures are None."""
    stop = stop if stop is not None else StopFlag()
    try:
        sources = parse_sources(specs)
    except CaptureError as e:
        raise BenchError(str(e)) from None
    engine = Engine(settings, [s.venue for s in sources])
    stats = LineStats()
    if progress_console is not None:
        progress_console.print(f"[dim]bench: {sum(len(s.paths) for s in sources)} file(s), "
                               f"{total_bytes(sources) / 1e6:,.1f} MB (Ctrl-C stops cleanly)[/]", highlight=False)
    try:
        with _progress(progress_console) as bar:
            task = bar.add_task("cryptoarb", total=total_bytes(sources) or None, n=0)
            res = replay(engine, sources, lambda n: bar.update(task, n=n, completed=stats.progress.read()),
                         stop=stop, stats=stats)
    except (CaptureError, ReplayError) as e:
        raise BenchError(str(e)) from None
    result: dict[str, Any] = {
        "ours": _stats(engine.latency),
        "decision": _stats(engine.decision, with_rate=False),
        "messages": engine.messages,
        "depth_messages": len(engine.latency),
    }
    if res.interrupted:
        result["interrupted"] = True
    why = nothing_built(engine, sources, res)
    if why:
        result["warning"] = why
    if not with_ccxt or res.interrupted or not len(engine.latency):
        return result
    from cryptoarb.bench import ccxt_ref

    if not ccxt_ref.available():
        raise BenchError("ccxt is not installed (pip install 'cryptoarb[dev]'), or pass --no-ccxt")
    rec = LatencyRecorder()
    for src in sources:
        books = [b for b in engine.books.values() if b.instrument.venue == src.venue]
        if len(books) != 1:
            raise BenchError(f"{src.venue}: the ccxt.pro comparison needs one symbol per venue, got {len(books)}")
        src_stats = LineStats()
        with _progress(progress_console) as bar:
            task = bar.add_task(f"ccxt.pro {src.venue}", total=total_bytes([src]) or None, n=0)

            def lines(src: Source = src, src_stats: LineStats = src_stats,
                      bar: Progress = bar, task: TaskID = task) -> Iterator[tuple[int, bytes]]:
                for i, (ns, _v, _p, _l, raw, _r) in enumerate(stream(src, src_stats), 1):
                    if stop.signum:
                        return
                    if i % 20_000 == 0:
                        bar.update(task, n=i, completed=src_stats.progress.read())
                    yield ns, raw

            thresholds = gc.get_threshold()
            gc.set_threshold(*REPLAY_GC_THRESHOLDS)  # the same GC setting our replay runs with
            try:
                out = ccxt_ref.ccxt_pro_replay(src.venue, lines(), books[0].instrument.symbol)
            finally:
                gc.set_threshold(*thresholds)
        for x in out.latencies_ns:
            rec.append(x)
        if stop.signum:
            result["interrupted"] = True
            break
    result["ccxt"] = _stats(rec)
    return result
