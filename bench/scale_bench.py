"""Load harness (issue #15): how many book messages per second ``arb run --live`` keeps up with.

Local venues on 127.0.0.1, one process per protocol (``scale_venue.py``: Binance, OKX, Bitget by
default), replay real frames for renamed markets (``scale_frames.py``) on an open-loop schedule
fixed in advance (``scale_schedule.py``: smooth, or bursts at 100 ms boundaries); each frame is
stamped with its scheduled send time. The engine is the real ``arb run --live`` in its own
process(es) (``scale_engine.py``; pluggable: ``--engine-cmd``, ``--shards``), with a probe
installed from outside ``src/`` measuring scheduled send -> decision. ``scale_report.py``
merges the processes' histograms and finds the knee.

    python bench/scale_bench.py --books 100 --rate 3000 --mode smooth --seconds 5 --repeat 3
    python bench/scale_bench.py --books 1000 --mode burst --knee --rate 2000 --max-steps 5
    python bench/scale_bench.py --matrix --src before=/work/main/src --src after=src
    python bench/scale_bench.py --venue-max --books 1000 --rate 50000   # the venues alone
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing as mp
import os
import queue
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale_engine import DEFAULT_CMD, EngineProcess, probe_lines, write_config
from scale_frames import PROTOCOLS, markets
from scale_report import caught_up, cold_start, kept_up, median_row, summarize, venue_valid
from scale_schedule import MODES, Schedule
from scale_venue import venue_main

FAIL_RETRIES = 1  # a rate not kept up with is run again this many times before it counts
MIN_RATE = 50.0  # the knee search does not go below this many msgs/s
VENUE_RETRIES = 1  # a rate whose run had a late venue is run again this many times
START_DELAY = 0.3  # s between "everything subscribed" and the first scheduled frame


class Venues:
    """One venue process per protocol; started before the engine, stopped after it."""

    def __init__(self, protocols: list[str], n_markets: int, rate: float, mode: str, seconds: float) -> None:
        ctx = mp.get_context("spawn")
        self.out = ctx.Queue()
        self.ins = {p: ctx.Queue() for p in protocols}
        each = Schedule(rate / len(protocols), mode, seconds)
        self.procs = [ctx.Process(target=venue_main, args=(p, n_markets, each, self.ins[p], self.out), daemon=True)
                      for p in protocols]
        for proc in self.procs:
            proc.start()
        self.ports: dict[str, tuple[int, int]] = {}
        self.subscribed = dict.fromkeys(protocols, 0)
        self.done: dict[str, dict[str, Any]] = {}
        while len(self.ports) < len(protocols):
            m = self._get(300)
            if m[0] == "ports":
                self.ports[m[1]] = (m[2], m[3])

    def _get(self, timeout: float) -> Any:
        m = self.out.get(timeout=timeout)
        if m[0] == "subscribed":
            self.subscribed[m[1]] = m[2]
        elif m[0] == "done":
            self.done[m[1]] = m[2]
        return m

    def wait_subscribed(self, n: int, timeout: float, engine: EngineProcess) -> None:
        end = time.monotonic() + timeout
        while min(self.subscribed.values()) < n:
            if not engine.alive():
                raise RuntimeError(f"the engine exited before subscribing:\n{engine.output()[-3000:]}")
            if time.monotonic() > end:
                raise RuntimeError(f"subscriptions after {timeout:g} s: {self.subscribed} of {n} each")
            with contextlib.suppress(queue.Empty):
                self._get(0.5)

    def start(self, t0: int, counted_from: int) -> None:
        for q in self.ins.values():
            q.put(("t0", t0, counted_from))

    def results(self, timeout: float) -> dict[str, dict[str, Any]]:
        end = time.monotonic() + timeout
        while len(self.done) < len(self.ins) and time.monotonic() < end:
            try:
                self._get(max(0.1, end - time.monotonic()))
            except queue.Empty:
                break
        return self.done

    def close(self) -> None:
        for proc in self.procs:
            proc.terminate()
            proc.join(5)


def run_once(books: int, rate: float, mode: str, seconds: float, warmup: float | None = None,
             protocols: list[str] | None = None, engine_cmd: str = DEFAULT_CMD, extra: list[str] | None = None,
             src: str | None = None, symbols_all: bool = False, engine_nice: int = 0) -> dict[str, Any]:
    """One run: venues replaying ``rate`` frames/s over ``books`` books, the engine measured over
    the ``seconds`` after ``warmup``."""
    protocols = protocols or list(PROTOCOLS)
    n_markets = max(1, math.ceil(books / len(protocols)))
    if warmup is None:
        warmup = 1.0 + 1.5 * books / 1000
    total = warmup + seconds + 2.0  # slack: the window opens once the engine has caught up
    venues = Venues(protocols, n_markets, rate, mode, total)
    old_src = os.environ.get("SCALE_SRC")
    if src:
        os.environ["SCALE_SRC"] = src
    try:
        with tempfile.TemporaryDirectory(prefix="scale-") as d:
            work = Path(d)
            write_config(work / "engine.toml", venues.ports)
            symbols = "all" if symbols_all else ",".join(f"{b}/USDT" for b in markets(n_markets))
            engine = EngineProcess(work, engine_cmd, protocols, symbols, total + 600, extra or [], engine_nice)
            try:
                venues.wait_subscribed(n_markets, 300, engine)
                subscribed_s = round((time.time_ns() - engine.started_ns) / 1e9, 2)
                t0 = time.time_ns() + int(START_DELAY * 1e9)
                venues.start(t0, t0 + int(warmup * 1e9))
                time.sleep(max(0.0, (t0 - time.time_ns()) / 1e9 + total + 0.3))
                sent = venues.results(60)
            finally:
                code = engine.stop()
            probes = probe_lines(work)
            if os.environ.get("SCALE_DEBUG"):
                print(engine.output()[-4000:], file=sys.stderr)
            if not probes:
                raise RuntimeError(f"no probe output (engine exit {code}):\n{engine.output()[-3000:]}")
            n_books = n_markets * len(protocols)
            cold = cold_start(probes, n_books, engine.started_ns)
            # the window opens after the warm-up, once every book is valid and the engine has
            # caught up with the schedule (the cold start's backlog is not the steady state); an
            # engine that never catches up is measured over the last seconds of the schedule
            sched_end = t0 + int(total * 1e9)
            start = t0 + int(warmup * 1e9)
            if cold is not None:
                start = max(start, engine.started_ns + int(cold * 1e9))
            caught = caught_up(probes, t0, rate, start)
            start = caught if caught is not None and caught + 1e9 <= sched_end else sched_end - int(seconds * 1e9)
            end = min(start + int(seconds * 1e9), sched_end)
            row: dict[str, Any] = {"mode": mode, "books": n_markets * len(protocols), "protocols": protocols,
                                   "offered_per_s": rate, "src": src or os.environ.get("SCALE_SRC", "this checkout")}
            row.update(summarize(probes, start, end, n_books) if end - start >= 500_000_000 else
                       {"valid_books": 0, "processed_per_s": 0.0, "p99_ms": None})
            row.update(window_s=round((end - start) / 1e9, 2), caught_up=caught is not None, cold_start_s=cold,
                       subscribed_s=subscribed_s)
            late = sum(v["late"] for v in sent.values())
            n_sent = sum(v["sent"] for v in sent.values())
            row.update(venue_sent=n_sent, venue_late_frames=late,
                       venue_max_late_ms=max((v["max_late_ms"] for v in sent.values()), default=None),
                       venue_cpu_pct=sum(v["cpu_pct"] for v in sent.values()),
                       venue_used_up=sum(v["used_up"] for v in sent.values()),
                       venue_valid=len(sent) == len(protocols) and venue_valid(late, n_sent),
                       engine_exit=code)
            return row
    finally:
        venues.close()
        if src:
            if old_src is None:
                os.environ.pop("SCALE_SRC", None)
            else:
                os.environ["SCALE_SRC"] = old_src


def _print(row: dict[str, Any]) -> None:
    flag = "" if row.get("venue_valid") else "  INVALID: the venue was late"
    print(json.dumps(row) + flag, flush=True)


def knee(books: int, mode: str, start: float, max_steps: int, max_seconds: float, **kw: Any) -> dict[str, Any]:
    """Double the rate while the engine keeps up (p99 < 10 ms, >= 90 % processed, every book
    valid; halve it while it does not, from the start), then bisect between the last rate kept
    up with and the first one not (to within 20 %); a rate not kept up with is run once more
    and counts only if it fails again; bounded by ``max_steps`` runs and ``max_seconds``. A run
    whose venue was late is run again once; late twice, the search ends (``venue_limited``):
    the engine's knee is not measured above what the venue could offer."""
    rows: list[dict[str, Any]] = []
    good, bad, rate, t_end, retried, failed = None, None, start, time.monotonic() + max_seconds, 0, 0
    while len(rows) < max_steps and time.monotonic() < t_end:
        r = run_once(books, rate, mode, **kw)
        rows.append(r)
        _print(r)
        if not r["venue_valid"]:
            retried = retried + 1
            if retried > VENUE_RETRIES:
                break
            continue  # the same rate again: a machine hiccup is not the venue's limit
        retried = 0
        if kept_up(r):
            good, failed = rate, 0
        elif failed < FAIL_RETRIES:  # one stall of a shared machine is not a knee: confirm it
            failed += 1
            continue
        else:
            bad, failed = rate, 0
        if bad is None:
            rate *= 2
        elif good is None:  # the first rate was too much already: halve
            if rate <= MIN_RATE:
                break
            rate /= 2
        elif bad / good < 1.2:
            break
        else:
            rate = math.sqrt(good * bad)
    limited = bool(rows) and not rows[-1]["venue_valid"]
    out = {"knee": {"books": rows[0]["books"] if rows else books, "mode": mode, "knee_per_s": good,
                    "first_failed_per_s": bad, "venue_limited": limited, "runs": len(rows),
                    "src": rows[0]["src"] if rows else None}}
    print(json.dumps(out), flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--books", type=int, default=99, help="books in all (markets x protocols)")
    ap.add_argument("--protocols", default=",".join(PROTOCOLS), help="local venues (default: all three)")
    ap.add_argument("--rate", type=float, default=1000.0, help="book frames/s offered, all venues together")
    ap.add_argument("--mode", choices=MODES, default="smooth")
    ap.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=None,
                    help="scheduled seconds before the measurement (default: 1 + 1.5 per 1,000 books)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per point; the median is printed last")
    ap.add_argument("--knee", action="store_true", help="search the knee from --rate")
    ap.add_argument("--matrix", action="store_true", help="the knee at 100, 1,000, 5,000 books, smooth and burst")
    ap.add_argument("--max-steps", type=int, default=6)
    ap.add_argument("--max-seconds", type=float, default=300.0, help="per knee search")
    ap.add_argument("--src", action="append", default=[], metavar="LABEL=PATH",
                    help="whose src runs the engine (repeat: interleaved side by side); default: $SCALE_SRC or ./src")
    ap.add_argument("--engine-cmd", default=DEFAULT_CMD, help="engine command template ({python} {config} "
                    "{venues} {symbols} {duration})")
    ap.add_argument("--shards", type=int, default=0, help="pass --shards N to the engine command")
    ap.add_argument("--symbols-all", action="store_true", help="the engine discovers markets (--symbols all)")
    ap.add_argument("--engine-nice", type=int, default=-15,
                    help="the engine's nice value (default -15 where permitted: the engine before other tenants)")
    ap.add_argument("--venue-max", action="store_true", help="measure the venues alone (a null client)")
    a = ap.parse_args(argv)
    protocols = [p for p in a.protocols.split(",") if p]
    if a.books < 1 or a.rate <= 0 or a.seconds <= 0 or a.repeat < 1 or not protocols:
        ap.error("--books, --rate, --seconds, --repeat and --protocols must be positive / non-empty")
    if bad := [p for p in protocols if p not in PROTOCOLS]:
        ap.error(f"unknown protocol(s) {bad}; known: {', '.join(PROTOCOLS)}")
    if a.venue_max:
        from scale_null import venue_max

        venue_max(a.books, a.rate, a.mode, a.seconds, protocols)
        return 0
    srcs = [tuple(s.split("=", 1)) if "=" in s else (s, s) for s in a.src] or [("", "")]
    extra = ["--shards", str(a.shards)] if a.shards else []
    kw: dict[str, Any] = {"seconds": a.seconds, "warmup": a.warmup, "protocols": protocols,
                          "engine_cmd": a.engine_cmd, "extra": extra, "symbols_all": a.symbols_all,
                          "engine_nice": a.engine_nice}
    if a.matrix or a.knee:
        points = [(b, m) for b in (100, 1000, 5000) for m in MODES] if a.matrix else [(a.books, a.mode)]
        for books, mode in points:
            for _label, path in srcs:
                knee(books, mode, a.rate, a.max_steps, a.max_seconds, src=path or None, **kw)
        return 0
    rows: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in srcs}
    for _ in range(a.repeat):
        for label, path in srcs:  # interleaved: the machine's noise hits every code alike
            r = run_once(a.books, a.rate, a.mode, src=path or None, **kw)
            rows[label].append(r)
            _print(r)
    if a.repeat > 1:
        for label, rs in rows.items():
            print(json.dumps({"median": median_row(rs), "label": label}), flush=True)
    return 0


if __name__ == "__main__":
    import signal

    # SIGTERM unwinds like Ctrl-C: the engine is stopped and the venue processes ended
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        raise SystemExit(main())
    except RuntimeError as e:  # the engine did not start or did not subscribe: what it said
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(1) from None
