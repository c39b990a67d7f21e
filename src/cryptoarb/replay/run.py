"""Drive an engine from captures; used by ``arb replay`` and ``arb bench``."""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptoarb.engine.engine import Engine
from cryptoarb.replay.reader import CRYPTOFEED, TARDIS, LineStats, Rest, Source, merged
from cryptoarb.stopping import StopFlag
from cryptoarb.venues.base import Handler, MessageError
from cryptoarb.venues.catalog import UnknownInstrument
from cryptoarb.venues.tardis import TardisHandler

# The hot path allocates no reference cycles; a generation-0 collection in the middle of a
# message only adds tail latency, so collect less often while replaying.
REPLAY_GC_THRESHOLDS = (50_000, 50, 100)


class ReplayError(Exception):
    pass


@dataclass
class FileReport:
    """What one capture file gave, for the per-file table of ``arb replay``."""

    venue: str
    messages: int = 0
    bad: int = 0
    first_error: str = ""
    books: set[str] = field(default_factory=set)


@dataclass
class ReplayResult:
    messages: int
    stats: LineStats
    files: dict[str, FileReport] = field(default_factory=dict)
    interrupted: bool = False  # stopped by SIGINT/SIGTERM at a message boundary


def apply_rest_snapshot(handler: Handler, rest: tuple[str, str], raw: bytes, local_ns: int) -> str:
    """A recorded REST snapshot to its book: ``("symbol", ccxt symbol)`` from ``arb record`` or
    ``("url", request url)`` from a cryptofeed capture. Returns the book's key."""
    kind, value = rest
    if kind == "symbol":
        inst = handler.catalog.get(handler.venue, value)
    else:
        inst = handler.instrument_for(handler.native_of_rest_url(value))
    handler.sync_for(inst)
    handler.on_snapshot(inst, raw, local_ns)
    return inst.key


def replay(
    engine: Engine,
    sources: list[Source],
    progress: Callable[[int], None] | None = None,
    strict: bool = False,
    stop: StopFlag | None = None,
    stats: LineStats | None = None,
) -> ReplayResult:
    """Feed every message to the engine in local-time order.

    A message the handler cannot understand, or for a market it cannot route (unknown to the
    catalog, or unnameable), is counted and skipped (one bad line in a long capture should not
    cost the run, and the per-file report names the first), unless ``strict``. Third-party
    (cryptofeed) captures name markets the catalog does not know: those get provisional
    instruments.

    ``stop`` (set by a signal, see :mod:`cryptoarb.stopping`) ends the replay between two
    messages; the result then says ``interrupted``. ``stats`` lets the caller follow the bytes
    read (``stats.progress``) for a progress bar.
    """
    if any(s.fmt in (CRYPTOFEED, TARDIS) for s in sources):
        engine.discover = True
    for s in sources:
        if s.fmt == TARDIS and s.venue not in engine.handlers:
            th = TardisHandler(s.venue, engine.catalog, engine.on_book, on_state=engine.on_state, discover=True)
            th.on_new_book = engine.register_book
            engine.handlers[s.venue] = th
        elif isinstance(engine.handlers.get(s.venue), TardisHandler) != (s.fmt == TARDIS):
            raise ReplayError(f"{s.venue}: Tardis data and raw captures of one venue cannot be mixed in a run")
    stats = stats if stats is not None else LineStats()
    stop = stop if stop is not None else StopFlag()
    handlers = {s.venue: engine.handler(s.venue) for s in sources}
    files: dict[str, FileReport] = {}
    on_message = engine.on_message
    n = 0
    thresholds = gc.get_threshold()
    gc.set_threshold(*REPLAY_GC_THRESHOLDS)
    # what start-up built (markets, catalog, handlers) lives for the whole run: out of the
    # collector's sight, a collection no longer walks it (issue #15: 130-260 ms pauses)
    gc.collect()
    gc.freeze()
    report: FileReport | None = None
    last_path = ""
    rest: Rest
    items = merged(sources, stats)
    try:
        for local_ns, venue, path, lineno, raw, rest in items:
            if stop.signum:
                break
            n += 1
            if path != last_path:
                report = files.get(path) or files.setdefault(path, FileReport(venue))
                last_path = path
            assert report is not None
            report.messages += 1
            handler = handlers[venue]
            try:
                if rest is None:
                    on_message(handler, raw, local_ns)
                else:
                    report.books.add(apply_rest_snapshot(handler, rest, raw, local_ns))
            except (MessageError, UnknownInstrument) as e:
                # an unknown market (a REST snapshot of ``arb record`` naming one) is counted and
                # skipped like any bad message: one line never ends a run
                why = e.args[0] if isinstance(e, UnknownInstrument) and e.args else str(e)
                if strict:
                    raise ReplayError(f"{path}:{lineno}: {why}") from None
                stats.add(Path(path), lineno, why)
                report.bad += 1
                if not report.first_error:
                    report.first_error = f"line {lineno}: {why}"
            if n % 4096 == 0:
                engine.latency.maybe_fold()  # the recorders' buffers stay small: memory is bounded
                engine.decision.maybe_fold()
                if progress is not None and n % 20_480 == 0:
                    progress(n)
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        close = getattr(items, "close", None)
        if close is not None:
            close()  # the open capture files, when stopped early
    engine.finish()
    if progress is not None:
        progress(n)
    return ReplayResult(n, stats, files, interrupted=bool(stop.signum))


def nothing_built(engine: Engine, sources: list[Source], result: ReplayResult) -> str:
    """Why a replay produced nothing usable ("" when it did): no recognised message at all, or a
    venue whose messages built no order book (e.g. Binance data given as ``okx:``)."""
    if result.messages == 0:
        files = ", ".join(str(p) for s in sources for p in s.paths)
        bad = f" ({result.stats.bad_count} unreadable line(s))" if result.stats.bad_count else ""
        return f"no recognised message in {files}{bad}"
    why = []
    for src in sources:
        h = engine.handlers.get(src.venue)
        syncs = list(h.syncs.values()) if h is not None else []
        if not any(s.book.valid or s.diffs_applied for s in syncs):
            got = sum(r.messages for r in result.files.values() if r.venue == src.venue)
            why.append(f"{src.venue}: {got:,} message(s) but no order book was built "
                       f"(is this {src.venue} data?)")
    return "; ".join(why)
