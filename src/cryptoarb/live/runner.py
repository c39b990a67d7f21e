"""``arb run --live`` and ``arb record``: assemble feeds around one engine and run them.

One asyncio loop, one thread: every frame goes through the engine's hot path as it arrives;
paper orders are delivered by a ticker when their latency has elapsed; the rich view refreshes
a few times a second. Ctrl-C (or ``duration``) sets the stop event and everything closes
cleanly: connections, ccxt sessions, the recorder, storage.

Services (the DEX runtime) run beside the feeds in the same loop: started before any feed (so
a configuration error stops the run before it trades), run until stop, closed at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptoarb.config import Settings
from cryptoarb.core.instruments import Instrument
from cryptoarb.engine.engine import Engine
from cryptoarb.live.discovery import Discovery, DiscoveryRequest, discover
from cryptoarb.live.feed import Sink, VenueFeed
from cryptoarb.live.markets import MarketError, resolve
from cryptoarb.live.snapshots import paced
from cryptoarb.stopping import StopFlag
from cryptoarb.venues.catalog import Catalog
from cryptoarb.venues.ccxt_fallback import CcxtProFeed
from cryptoarb.venues.registry import canonical, handler_class, path_of


@dataclass
class LivePlan:
    venues: list[str]
    symbols: list[str]
    instruments: dict[str, list[Instrument]] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)  # venue -> native | ccxt
    dex_venues: list[str] = field(default_factory=list)  # names of [[dex.venues]]: pools, not books
    discovery: Discovery | None = None  # --symbols all: what was found (counts shown before connecting)


class Service(Protocol):
    """Something that runs beside the feeds (``cryptoarb.dex.live.DexRuntime``)."""

    async def start(self) -> None: ...
    async def run(self, stop: asyncio.Event) -> None: ...
    async def close(self) -> None: ...


async def plan(settings: Settings, catalog: Catalog, venues: list[str], symbols: list[str]) -> LivePlan:
    """Check venues and symbols (clear errors listing what exists) and resolve instruments.

    A name of a configured DEX venue is a DEX venue: it is not looked up among the CEX venues.
    """
    dex = {v.name for v in settings.dex.venues}
    p = LivePlan([canonical(v) for v in venues if v not in dex], symbols,
                 dex_venues=list(dict.fromkeys(v for v in venues if v in dex)))
    for v in p.venues:
        p.paths[v] = path_of(v)  # raises UnknownVenue with the list
        vs = settings.live.venues.get(v)
        p.instruments[v] = await resolve(catalog, v, symbols, vs.ccxt if vs else None)
        cls = handler_class(v)
        if cls is not None:
            try:
                cls.check_instruments(p.instruments[v])
            except ValueError as e:
                raise MarketError(str(e)) from None
    return p


# -- --symbols all (issue #15: market discovery) -----------------------------------------
async def plan_all(settings: Settings, catalog: Catalog, venues: list[str], req: DiscoveryRequest) -> LivePlan:
    """The plan of ``--symbols all``: every market of ``req`` found in the venues' ccxt metadata
    (``live/discovery.py``), checked as :func:`plan` checks named symbols. DEX venues take no part
    in discovery (pools are configured, not listed)."""
    dex = {v.name for v in settings.dex.venues}
    cex = list(dict.fromkeys(canonical(v) for v in venues if v not in dex))
    for v in cex:
        path_of(v)  # raises UnknownVenue with the list
    configs = {v: dict(vs.ccxt) for v, vs in settings.live.venues.items() if vs.ccxt}
    d = await discover(catalog, cex, configs, req, basis=settings.detector.basis,
                       equivalents=[set(x) for x in settings.detector.quote_equivalents])
    p = LivePlan(cex, ["all"], dex_venues=list(dict.fromkeys(v for v in venues if v in dex)), discovery=d)
    for v in cex:
        p.paths[v] = path_of(v)
        p.instruments[v] = d.kept[v]
        cls = handler_class(v)
        if cls is not None and p.instruments[v]:
            try:
                cls.check_instruments(p.instruments[v])
            except ValueError as e:
                raise MarketError(str(e)) from None
    return p


def build_feeds(engine: Engine, lp: LivePlan, settings: Settings, sink: Sink | None) -> list[Any]:
    feeds: list[Any] = []
    for v in lp.venues:
        vs = settings.live.venues.get(v)
        if lp.paths[v] == "ccxt":
            feeds.append(CcxtProFeed(engine, v, lp.instruments[v], config=vs.ccxt if vs else None))
            continue
        rest = paced(v, vs.ccxt if vs else None)  # snapshots within the venue's REST budget (issue #15)
        rest.exchange  # noqa: B018 -- import ccxt now, not in the event loop as the first snapshot waits
        feeds.append(VenueFeed(engine, v, lp.instruments[v], url=vs.ws_url if vs and vs.ws_url else None,
                               rest=rest, stale_after=(vs.stale_after_s if vs and vs.stale_after_s else
                                                       settings.live.stale_after_s), sink=sink,
                               transport=settings.live.transport, batch=settings.live.batch_bursts))
    return feeds


async def run_feeds(
    engine: Engine,
    feeds: list[Any],
    duration: float | None,
    on_refresh: Callable[[], None] | None = None,
    stop: asyncio.Event | None = None,
    refresh_s: float = 0.25,
    services: Sequence[Service] = (),
    signalled: StopFlag | None = None,
) -> None:
    """Run until ``duration`` elapses, ``stop`` is set, or SIGINT/SIGTERM.

    ``services`` are started first (an error there propagates before any feed runs), then run
    beside the feeds, and closed at the end whatever happened. A signal is recorded in
    ``signalled`` (which may already be set by one that came during set-up: then nothing runs).
    """
    stop = stop or asyncio.Event()
    signalled = signalled if signalled is not None else StopFlag()
    loop = asyncio.get_running_loop()

    def on_signal(sig: int) -> None:
        signalled.signum = signalled.signum or sig
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, on_signal, sig)
    if signalled.signum:
        stop.set()

    async def ticker() -> None:
        while not stop.is_set():
            engine.tick(time.time_ns())
            # opportunities found outside a frame (a REST snapshot completing a book) are not
            # left waiting for the venue's next frame, which a quiet market may never send
            engine.flush(engine.clock_ns)
            engine.latency.maybe_fold()  # the recorders' buffers stay small: memory is bounded
            engine.decision.maybe_fold()
            await asyncio.sleep(0.002)

    async def refresher() -> None:
        while not stop.is_set():
            if on_refresh is not None:
                on_refresh()
            await asyncio.sleep(refresh_s)

    async def timer() -> None:
        if duration is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=duration)
            stop.set()

    try:
        for svc in services:  # a start waiting on a slow endpoint still yields to Ctrl-C
            starting = asyncio.ensure_future(svc.start())
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if not starting.done():
                starting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await starting
                return
            starting.result()
        # what start-up built (ccxt markets, catalog, handlers) lives for the whole run: out of
        # the collector's sight, collections no longer walk it (issue #15: 130-260 ms pauses)
        gc.collect()
        gc.freeze()
        await asyncio.gather(*(f.run(stop) for f in feeds), *(s.run(stop) for s in services),
                             ticker(), refresher(), timer())
    finally:
        gc.unfreeze()
        stop.set()
        for svc in services:
            with contextlib.suppress(Exception):
                await svc.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)
        engine.finish()
