"""The run summary (the contract of ``arb replay --summary-json``, the demo and live runs):
what the engine counted, its books' tops, and the account's numbers."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptoarb.engine.engine import Engine


def summarize(engine: Engine) -> dict[str, Any]:
        books: dict[str, Any] = {}
        for h in engine.handlers.values():
            for sync in h.syncs.values():
                bids, asks = sync.book.top(5)
                books[sync.book.key] = {"bids": _finite(bids), "asks": _finite(asks), **sync.counters(),
                                        "checked_levels": h.checksum_depth}
        ex = engine.executor
        pnl = engine.pnl_snapshot()
        return {
            "messages": engine.messages,
            "books": books,
            "opportunities": engine.opportunities,
            "trades": len(ex.settled()),
            "pnl_quote": _finite(pnl.realised),
            "pnl": {"realised": _finite(pnl.realised), "unrealised": _finite(pnl.unrealised),
                    "total": _finite(pnl.total)},
            "max_unhedged_quote": _finite(pnl.max_unhedged_quote),
            # null, not 0.0, when no depth message was measured
            "latency_us": engine.latency.summary_us() if len(engine.latency) else dict.fromkeys(("p50", "p99", "p999")),
            "risk": engine.risk.summary(),
            "legrisk": engine.legrisk.summary(),
            "inventory": engine.inventory.summary(),
            "cycles": len(engine.cycles.settled()) if engine.cycles is not None else 0,
        }


def _finite(x: Any) -> Any:
    """``x`` with every non-finite float as None: the summary is strict JSON (no ``NaN`` token),
    whatever an invalid book was left holding."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x
