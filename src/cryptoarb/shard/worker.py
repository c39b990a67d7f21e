"""The shard process: the live path (feeds -> books -> detection -> risk -> paper execution) for
the markets of its groups, every event published to the parent over the bus.

It runs exactly what a single-process ``arb run --live`` runs (``live.runner.build_feeds`` and
``run_feeds``, one ``Engine``); only the sink differs (a ``BusSink`` over the parent's
:class:`~cryptoarb.bus.ipc.IpcTransport`, called where the storage writer is, after the hot
path). Besides the engine's events it sends, as raw bytes on its own streams: ``shard.status``
(counters, once a second: the parent's live view and liveness), ``shard.summary`` (the run
summary, at the end) and ``shard.error`` (one line, when it cannot run).

It listens on ``control`` for ``stop``, ``kill`` and ``resume`` (the parent's kill switch,
carried out through ``Engine.request`` like a signal's). SIGINT is ignored (a Ctrl-C reaches
the whole process group: the parent decides and tells the shards); SIGTERM stops it cleanly;
a parent that disappears (socket closed) stops it too.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from cryptoarb.config import Settings
from cryptoarb.core.instruments import Instrument

STATUS, SUMMARY, ERROR, CONTROL = "shard.status", "shard.summary", "shard.error", "control"
#: a shard's opportunity (and trade) ids start here times its index: unique across the run
ID_SPACE = 10**9


@dataclass
class ShardSpec:
    """What a shard is told at spawn (pickled by ``multiprocessing``)."""

    index: int
    count: int
    address: str
    authkey: bytes
    run_id: str
    settings: Settings
    venues: list[str]
    symbols: list[str]
    instruments: dict[str, list[Instrument]] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)
    status_every_s: float = 1.0


def main(spec: ShardSpec) -> None:
    """Process entry (``multiprocessing`` target): exit 0 after a clean stop and a summary sent,
    1 when it could not run (after a ``shard.error`` line)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from cryptoarb.bus.ipc import IpcTransport

    transport = IpcTransport(spec.address, spec.authkey)
    code = 0
    try:
        summary = _run(spec, transport)
        transport.publish(SUMMARY, json.dumps({"shard": spec.index, **summary}, allow_nan=False).encode())
    except BaseException as e:  # one line to the parent, whatever it was
        code = 1
        transport.publish(ERROR, f"{spec.index}\0{type(e).__name__}: {' '.join(str(e).split())}".encode())
    finally:
        transport.close()
    sys.exit(code)


def _run(spec: ShardSpec, transport: Any) -> dict[str, Any]:
    from cryptoarb.bus.events import BusSink
    from cryptoarb.engine.engine import Engine, build_catalog
    from cryptoarb.live.runner import LivePlan, build_feeds, run_feeds

    settings = spec.settings
    catalog = build_catalog(settings)
    insts = [i for v in spec.venues for i in spec.instruments[v]]
    for inst in insts:
        catalog.add(inst)
    sink = BusSink(transport, spec.run_id)
    # event numbers of this shard: its own range, so run:seq stays an identity across shards
    sink.seq = spec.index * ID_SPACE * 1000
    engine = Engine(settings, spec.venues, catalog=catalog, sink=sink, run_id=spec.run_id, instruments=insts)
    engine.detector._count = spec.index * ID_SPACE  # opportunity / trade / order ids unique in the run
    lp = LivePlan(spec.venues, spec.symbols, spec.instruments, spec.paths)
    feeds = build_feeds(engine, lp, settings, None)
    started = time.monotonic()

    async def go() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        threading.Thread(target=_control, args=(transport, engine, loop, stop, spec.index), daemon=True,
                         name="shard-control").start()
        due = [0.0]
        valid = [-1]

        def status() -> None:
            """Once a second, and at once when books turn valid or invalid (the parent's view)."""
            now = time.monotonic()
            n = sum(1 for b in engine.books.values() if b.valid)
            if now < due[0] and n == valid[0]:
                return
            due[0] = now + spec.status_every_s
            valid[0] = n
            transport.publish(STATUS, json.dumps({"shard": spec.index, **_status(engine, feeds)}).encode())

        await run_feeds(engine, feeds, None, on_refresh=status, stop=stop, refresh_s=0.25)

    asyncio.run(go())
    return _summary(engine, feeds, time.monotonic() - started)


def _control(transport: Any, engine: Any, loop: asyncio.AbstractEventLoop, stop: asyncio.Event, index: int) -> None:
    """The parent's orders (a thread: blocking reads on the bus)."""
    sub = transport.subscribe("shard", f"shard{index}", [CONTROL])
    while True:
        if transport.closed.is_set():  # the parent is gone: stop, nobody would store what we find
            loop.call_soon_threadsafe(stop.set)
            return
        deliveries = sub.read(10, 200)
        sub.ack(deliveries)
        for d in deliveries:
            what, _, rest = d.data.decode().partition("\0")
            if what == "stop":
                loop.call_soon_threadsafe(stop.set)
                return
            if what in ("kill", "resume"):
                actor, _, reason = rest.partition("\0")
                engine.request(what, actor or "parent", reason or f"{what} from the parent")


def _status(engine: Any, feeds: list[Any]) -> dict[str, Any]:
    st = engine.executor.stats
    return {"messages": engine.messages, "opportunities": engine.opportunities,
            "trades": len(engine.executor.settled()), "realized_pnl": str(st.realized_pnl),
            "books": len(engine.books), "valid_books": sum(1 for b in engine.books.values() if b.valid),
            "killed": engine.risk.killed, "connects": sum(f.stats.connects for f in feeds)}


def _summary(engine: Any, feeds: list[Any], seconds: float) -> dict[str, Any]:
    """The engine's summary plus what the parent needs to merge it exactly: feed counters, the
    money as decimals, the latency histogram's buckets."""
    s: dict[str, Any] = engine.summary()
    st = engine.executor.stats
    lat = engine.latency
    lat.fold()
    counts = lat.counts
    s["feeds"] = {f.venue: {"path": f.stats.path, "connects": f.stats.connects, "disconnects": f.stats.disconnects,
                            "stale": f.stats.stale, "messages": f.stats.messages,
                            "bad_messages": f.stats.bad_messages, "snapshots": f.stats.snapshots,
                            "failures": dict(f.stats.failures), "last_error": f.stats.last_error} for f in feeds}
    s.update(simulated=False, trades_by_status={str(k): v for k, v in st.by_status.items()},
             expected_pnl=str(st.expected_pnl), realized_pnl=str(st.realized_pnl), duration_s=round(seconds, 3))
    snap = engine.pnl_snapshot()
    s["pnl_exact"] = [str(x) for x in snap.exact]
    s["latency_hist"] = {"n": lat.n, "total": lat.total_ns,
                         "buckets": [[int(i), int(counts[i])] for i in counts.nonzero()[0]]}
    s["decision_n"] = engine.decision.n
    return s

