"""``arb bench``: our hot path and ccxt.pro's, side by side, on the same captured messages.

Both sides are timed the same way: ``perf_counter_ns`` around the handling of each depth
frame (raw bytes in; for us up to the detector's decision, for ccxt.pro JSON parse plus its
order-book update), and messages/s is depth frames over the summed handling time.
"""

from __future__ import annotations

import gc
from typing import Any

from rich.console import Console

from cryptoarb.config import Settings
from cryptoarb.engine.engine import Engine
from cryptoarb.engine.latency import LatencyRecorder
from cryptoarb.replay.reader import CaptureError, LineStats, parse_sources, stream
from cryptoarb.replay.run import REPLAY_GC_THRESHOLDS, ReplayError, replay


class BenchError(Exception):
    pass


def _stats(rec: LatencyRecorder, with_rate: bool = True) -> dict[str, float]:
    s = rec.summary_us()
    out = {"p50_us": s["p50"], "p99_us": s["p99"], "p999_us": s["p999"]}
    if with_rate:
        total = sum(rec.samples)
        out["msgs_per_s"] = round(len(rec) / (total / 1e9), 1) if total else 0.0
    return out


def run_bench(
    settings: Settings, specs: list[str], with_ccxt: bool = True, progress_console: Console | None = None
) -> dict[str, Any]:
    try:
        sources = parse_sources(specs)
    except CaptureError as e:
        raise BenchError(str(e)) from None
    say = progress_console.print if progress_console is not None else (lambda *a, **k: None)
    engine = Engine(settings, [s.venue for s in sources])
    say("[dim]replaying through cryptoarb...[/]")
    try:
        replay(engine, sources)
    except (CaptureError, ReplayError) as e:
        raise BenchError(str(e)) from None
    result: dict[str, Any] = {
        "ours": _stats(engine.latency),
        "decision": _stats(engine.decision, with_rate=False),
        "messages": engine.messages,
        "depth_messages": len(engine.latency),
    }
    if not with_ccxt:
        return result
    from cryptoarb.bench import ccxt_ref

    if not ccxt_ref.available():
        raise BenchError("ccxt is not installed (pip install 'cryptoarb[dev]'), or pass --no-ccxt")
    rec = LatencyRecorder()
    for src in sources:
        books = [b for b in engine.books.values() if b.instrument.venue == src.venue]
        if len(books) != 1:
            raise BenchError(f"{src.venue}: the ccxt.pro comparison needs one symbol per venue, got {len(books)}")
        say(f"[dim]replaying {src.venue} through ccxt.pro...[/]")
        lines = ((ns, raw) for ns, _v, _p, _l, raw, _r in stream(src, LineStats()))
        thresholds = gc.get_threshold()
        gc.set_threshold(*REPLAY_GC_THRESHOLDS)  # the same GC setting our replay runs with
        try:
            res = ccxt_ref.ccxt_pro_replay(src.venue, lines, books[0].instrument.symbol)
        finally:
            gc.set_threshold(*thresholds)
        for x in res.latencies_ns:
            rec.append(x)
    result["ccxt"] = _stats(rec)
    return result
