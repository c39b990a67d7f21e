"""The generic fallback: any exchange ccxt.pro supports, through ``watch_order_book``.

Slower than a native handler (ccxt parses into Python lists and we copy its top levels into
our book on every update) and it trusts ccxt's own sequencing, but it works for ~100 venues.
Feeds and summaries report ``path = "ccxt"`` for venues served this way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from cryptoarb.core.book import INVALID, VALID, BadBook, OrderBook
from cryptoarb.core.instruments import Instrument
from cryptoarb.engine.engine import Engine
from cryptoarb.live.backoff import Backoff
from cryptoarb.live.feed import FeedStats

log = logging.getLogger(__name__)


class CcxtProFeed:
    """Books of ``insts`` on ``venue`` kept by ccxt.pro, handed to the engine's detector."""

    def __init__(self, engine: Engine, venue: str, insts: list[Instrument], depth: int = 100,
                 config: dict[str, Any] | None = None, exchange: Any = None) -> None:
        self.engine = engine
        self.venue = venue
        self.insts = insts
        self.depth = depth
        self.config = {"enableRateLimit": True, **(config or {})}
        self.stats = FeedStats(path="ccxt")
        self._exchange = exchange  # an already built ccxt.pro exchange (or a stand-in)
        self.books: dict[str, OrderBook] = {}
        for inst in insts:
            book = OrderBook(inst)
            self.books[inst.symbol] = book
            engine.register_book(book)

    async def run(self, stop: asyncio.Event) -> None:
        if self._exchange is not None:
            ex = self._exchange
        else:
            import ccxt.pro

            ex = getattr(ccxt.pro, self.venue)(self.config)
        try:
            await asyncio.gather(*(self._watch(ex, inst, stop) for inst in self.insts))
        finally:
            await ex.close()

    async def _watch(self, ex: Any, inst: Instrument, stop: asyncio.Event) -> None:
        book = self.books[inst.symbol]
        backoff = Backoff()
        while not stop.is_set():
            try:
                ob = await ex.watch_order_book(inst.symbol, self.depth)
            except Exception as e:  # ccxt.pro reconnects itself; we invalidate meanwhile
                book.set_state(INVALID)
                self.stats.disconnects += 1
                self.stats.last_error = f"{type(e).__name__}: {e}"
                if type(e).__name__ not in self.stats.errors_seen:
                    self.stats.errors_seen.add(type(e).__name__)
                    log.warning("%s %s via ccxt: %s", self.venue, inst.symbol, e)
                await asyncio.sleep(backoff.next())
                continue
            backoff.reset()
            local_ns = time.time_ns()
            try:
                book.load_snapshot(((float(p), float(q)) for p, q, *_ in ob["bids"][: self.depth]),
                                   ((float(p), float(q)) for p, q, *_ in ob["asks"][: self.depth]))
            except BadBook as e:  # crossed or impossible levels: unusable until the next update
                book.set_state(INVALID)
                self.stats.bad_messages += 1
                self.stats.last_error = str(e)
                continue
            book.exchange_ns = int(ob.get("timestamp") or 0) * 1_000_000
            book.local_ns = local_ns
            book.update_id = int(ob.get("nonce") or 0)
            book.set_state(VALID)
            self.stats.messages += 1
            self.stats.last_message_ns = local_ns
            self.engine.messages += 1
            self.engine.clock_ns = local_ns
            if book.valid:
                self.engine.on_book(book, local_ns)
                self.engine.flush(local_ns)
