"""The load harness's measurement probe, installed in every engine process (issue #15).

The harness puts this directory first on ``PYTHONPATH`` and sets ``SCALE_PROBE_DIR``: Python
imports ``sitecustomize`` at start-up, so every process of the engine command (``arb run
--live``, and each shard process it spawns, which inherits the environment) wraps
``Engine.on_message`` from the outside: after the real call returns (book updated, detection
done) it reads the frame's scheduled send time from the stamp slot the local venue wrote
(``,"_t":<ns>}`` at the end of the frame) and counts ``now - scheduled`` in a fixed
log-linear histogram (µs, ~3 % buckets). Nothing in ``src/`` knows about it.

A thread writes one JSON line per ``SCALE_PROBE_EVERY`` seconds to
``SCALE_PROBE_DIR/probe-<pid>.jsonl``: cumulative histogram, stamped frames, all frames, CPU
seconds, RSS, books valid / total, and the collector's passes per generation (count, total ms,
longest ms: a stall in the latency tail can be matched against them). The harness subtracts
two lines to get any window, and merges the processes' histograms (counts add; percentiles are
read from the sum).
"""

from __future__ import annotations

import os

if os.environ.get("SCALE_PROBE_DIR"):
    import json
    import resource
    import threading
    import time

    from cryptoarb.engine.engine import Engine

    _hist = [0] * 1024
    _count = [0, 0]  # stamped frames, all frames
    _engines: list[object] = []
    _inner = Engine.on_message
    _init = Engine.__init__
    _time_ns = time.time_ns

    def _on_message(self, handler, raw, local_ns):  # type: ignore[no-untyped-def]
        kind = _inner(self, handler, raw, local_ns)
        _count[1] += 1
        if raw[-26:-20] == b',"_t":':
            v = (_time_ns() - int(raw[-20:-1])) // 1000
            if v < 64:
                _hist[v if v > 0 else 0] += 1
            else:
                e = v.bit_length() - 6
                _hist[min(1023, (e + 1) * 32 + (v >> e) - 32)] += 1
            _count[0] += 1
        return kind

    def _init_probe(self, *a, **k):  # type: ignore[no-untyped-def]
        _init(self, *a, **k)
        _engines.append(self)

    import gc

    _gc = [[0, 0.0, 0.0] for _ in range(3)]  # per generation: collections, total ms, longest ms
    _gc_t0 = [0]

    def _on_gc(phase, info):  # type: ignore[no-untyped-def]
        if phase == "start":
            _gc_t0[0] = time.perf_counter_ns()
        else:
            ms = (time.perf_counter_ns() - _gc_t0[0]) / 1e6
            g = _gc[info["generation"]]
            g[0] += 1
            g[1] += ms
            g[2] = max(g[2], ms)

    gc.callbacks.append(_on_gc)
    Engine.on_message = _on_message  # type: ignore[method-assign]
    Engine.__init__ = _init_probe  # type: ignore[method-assign]

    def _rss_kb() -> int:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def _writer() -> None:
        path = os.path.join(os.environ["SCALE_PROBE_DIR"], f"probe-{os.getpid()}.jsonl")
        every = float(os.environ.get("SCALE_PROBE_EVERY", "0.25"))
        with open(path, "a") as out:
            while True:
                valid = total = 0
                for eng in list(_engines):
                    try:
                        books = list(eng.books.values())  # type: ignore[attr-defined]
                    except (AttributeError, RuntimeError):
                        continue
                    total += len(books)
                    valid += sum(1 for b in books if b.valid)
                r = resource.getrusage(resource.RUSAGE_SELF)
                h = list(_hist)
                out.write(json.dumps({"t": _time_ns(), "n": _count[0], "all": _count[1],
                                      "cpu": r.ru_utime + r.ru_stime, "rss_kb": _rss_kb(),
                                      "valid": valid, "books": total, "gc": [list(g) for g in _gc],
                                      "hist": {i: c for i, c in enumerate(h) if c}}) + "\n")
                out.flush()
                time.sleep(every)

    threading.Thread(target=_writer, name="scale-probe", daemon=True).start()
