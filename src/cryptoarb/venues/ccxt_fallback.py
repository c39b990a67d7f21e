"""The generic fallback: any exchange ccxt.pro supports, through ``watch_order_book``.

Slower than a native handler (ccxt parses into Python lists and we copy its top levels into
our book on every update) and it trusts ccxt's own sequencing, but it works for ~100 venues.
Feeds and summaries report ``path = "ccxt"`` for venues served this way.

Depth: venues accept only some ``watch_order_book`` limits, and ccxt.pro raises before
subscribing when asked another one (bybit and its bybiteu/bybitid: 1, 50, 200, 1000; htx: 5,
20, 150, 400; bittrade: 150 only). The depth asked is the smallest accepted one at or above
``depth`` (else the largest): from ``DEPTHS`` (ccxt.pro 4.5.90's own checks) when we know the
venue, else learned from the rejection (the accepted limits it names, or ccxt's default for the
venue). Errors: a network error (ccxt's ``NetworkError``: timeouts, rate limits, maintenance,
checksum) is retried with backoff; an exchange error (bad symbol, bad request, not supported,
authentication) will not go away by retrying: that market is given up, its book stays invalid,
and the reason is in ``stats.failures`` for the run to report.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

from cryptoarb.core.book import INVALID, VALID, BadBook, OrderBook
from cryptoarb.core.instruments import Instrument
from cryptoarb.engine.engine import Engine
from cryptoarb.live.backoff import Backoff
from cryptoarb.live.feed import FeedStats

log = logging.getLogger(__name__)

#: ``watch_order_book`` limits ccxt.pro 4.5.90 accepts, by exchange id (its own checks)
DEPTHS: dict[str, tuple[int, ...]] = {
    "bybit": (1, 50, 200, 1000), "bybiteu": (1, 50, 200, 1000), "bybitid": (1, 50, 200, 1000),
    "htx": (5, 20, 150, 400), "huobi": (5, 20, 150, 400), "bittrade": (150,),
}


def choose_depth(accepted: tuple[int, ...] | list[int], wanted: int) -> int:
    """The smallest accepted depth at or above ``wanted``, else the largest."""
    above = [d for d in accepted if d >= wanted]
    return min(above) if above else max(accepted)


def depths_named(message: str) -> list[int]:
    """The limits a rejection names ("limit can be one of: [1,50,200,1000]", "accepts limit =
    150 only"); empty when it names none."""
    _, _, tail = message.lower().partition("limit")
    return [int(x) for x in re.findall(r"\d+", tail) if 0 < int(x) <= 10_000]


def is_limit_rejection(e: BaseException) -> bool:
    """ccxt refused the depth we asked (an exchange error that talks about the limit)."""
    import ccxt

    return isinstance(e, ccxt.ExchangeError) and "limit" in str(e).lower()


def is_permanent(e: BaseException) -> bool:
    """An error retrying will not fix: ccxt's exchange errors (bad symbol/request, not supported,
    authentication). Network errors and anything not from ccxt are retried."""
    import ccxt

    return isinstance(e, ccxt.ExchangeError) and not isinstance(e, ccxt.ExchangeClosedByUser)


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
        accepted = DEPTHS.get(venue)
        #: the depth asked for each market (None: the venue's default); learned from rejections
        self.depth_asked: dict[str, int | None] = {
            i.symbol: choose_depth(accepted, depth) if accepted else depth for i in insts}
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
            depth = self.depth_asked[inst.symbol]
            try:
                ob = await ex.watch_order_book(inst.symbol, depth)
            except Exception as e:  # ccxt.pro reconnects itself; we invalidate meanwhile
                book.set_state(INVALID)
                self.stats.last_error = f"{type(e).__name__}: {e}"
                if depth is not None and is_limit_rejection(e):
                    named = depths_named(str(e))
                    self.depth_asked[inst.symbol] = choose_depth(named, self.depth) if named else None
                    if self.depth_asked[inst.symbol] != depth:
                        log.info("%s %s via ccxt: depth %s refused, asking %s", self.venue, inst.symbol, depth,
                                 self.depth_asked[inst.symbol] or "the venue's default")
                        continue
                if is_permanent(e):
                    reason = f"{type(e).__name__}: {' '.join(str(e).split())}"
                    self.stats.failures[inst.symbol] = reason
                    log.error("%s %s via ccxt: given up: %s", self.venue, inst.symbol, reason)
                    return
                self.stats.disconnects += 1
                if type(e).__name__ not in self.stats.errors_seen:
                    self.stats.errors_seen.add(type(e).__name__)
                    log.warning("%s %s via ccxt: %s", self.venue, inst.symbol, e)
                await asyncio.sleep(backoff.next())
                continue
            backoff.reset()
            local_ns = time.time_ns()
            n = depth or len(ob["bids"]) + len(ob["asks"])
            try:
                book.load_snapshot(((float(p), float(q)) for p, q, *_ in ob["bids"][:n]),
                                   ((float(p), float(q)) for p, q, *_ in ob["asks"][:n]))
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
