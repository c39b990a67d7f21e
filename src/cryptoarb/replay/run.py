"""Drive an engine from captures; used by ``arb replay`` and ``arb bench``."""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptoarb.engine.engine import Engine
from cryptoarb.replay.reader import LineStats, Source, merged
from cryptoarb.venues.base import MessageError
from cryptoarb.venues.catalog import UnknownInstrument

# The hot path allocates no reference cycles; a generation-0 collection in the middle of a
# message only adds tail latency, so collect less often while replaying.
REPLAY_GC_THRESHOLDS = (50_000, 50, 100)


class ReplayError(Exception):
    pass


@dataclass
class ReplayResult:
    messages: int
    stats: LineStats


def replay(
    engine: Engine,
    sources: list[Source],
    progress: Callable[[int], None] | None = None,
    strict: bool = False,
) -> ReplayResult:
    """Feed every line to the engine in local-time order.

    A message the handler cannot understand is counted and skipped (one bad line in a long
    capture should not cost the run), unless ``strict``. An unknown market is an error: the
    book it would build would be silently missing.
    """
    stats = LineStats()
    handlers = {s.venue: engine.handler(s.venue) for s in sources}
    on_message = engine.on_message
    n = 0
    thresholds = gc.get_threshold()
    gc.set_threshold(*REPLAY_GC_THRESHOLDS)
    try:
        for local_ns, venue, path, lineno, raw in merged(sources, stats):
            n += 1
            try:
                on_message(handlers[venue], raw, local_ns)
            except MessageError as e:
                if strict:
                    raise ReplayError(f"{path}:{lineno}: {e}") from None
                stats.add(Path(path), lineno, str(e))
            except UnknownInstrument as e:
                raise ReplayError(f"{path}:{lineno}: {e}") from None
            if progress is not None and n % 20_000 == 0:
                progress(n)
    finally:
        gc.set_threshold(*thresholds)
    engine.finish()
    if progress is not None:
        progress(n)
    return ReplayResult(n, stats)
