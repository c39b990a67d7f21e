"""The local venue's depth stream: Binance's combined WebSocket stream (``/stream``), so a live
engine can build its book from this venue the way it does from Binance.

A client connects to ``ws://127.0.0.1:PORT/stream`` and sends Binance's ``SUBSCRIBE``; from then
on it receives every capture line the venue's book moves through (``<symbol>@depth@100ms``
frames, as Binance sent them), paced by ``--pace``. The book it builds from these frames and a
REST ``/api/v3/depth`` snapshot is the venue's own book: our own fills reduce a level at the
venue, and the next frame sent carries that level's new quantity (as Binance's next diff would
after a trade), unless the capture itself sets the level in that frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from tests.exchange.matching import fmt

if TYPE_CHECKING:
    from tests.exchange.binance_rest import Venue


class DepthStream:
    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self.clients: set[web.WebSocketResponse] = set()
        self.dirty: set[tuple[str, float]] = set()  # levels our fills reduced since the last frame
        self._sending: set[asyncio.Future[None]] = set()
        market = venue.market
        market.on_line = self._on_line
        inner_take = market.take

        def take(side: str, price: Any, qty: Any) -> None:
            inner_take(side, price, qty)
            self.dirty.add((side, float(price)))

        market.take = take  # type: ignore[method-assign]
        # SYNTHETIC symbols (tests/exchange/synthetic.py): after each depth line of the capture, a
        # frame of the same update ids carrying every level of theirs that changed (absolute
        # quantities, 0 for a level gone), so a client's book built from a REST snapshot follows
        self.synthetic: list[tuple[str, Any, dict[tuple[str, Any], Any]]] = [
            (sym, m.market, self._levels(m.market)) for sym, m in venue.matchers.items()
            if getattr(m.market, "synthetic", False)]

    @staticmethod
    def _levels(market: Any) -> dict[tuple[str, Any], Any]:
        return {(side, p): q for side in ("bids", "asks") for p, q in market.levels(side)}

    def _synthetic_frames(self, data: dict[str, Any]) -> list[str]:
        out = []
        for i, (sym, market, last) in enumerate(self.synthetic):
            now = self._levels(market)
            changed = {k: v for k, v in now.items() if last.get(k) != v}
            changed.update({k: Decimal(0) for k in last if k not in now})
            self.synthetic[i] = (sym, market, now)
            if not self.clients:
                continue
            frame = {"e": "depthUpdate", "E": data["E"], "s": sym, "U": data["U"], "u": data["u"],
                     "b": [[fmt(p), fmt(q)] for (side, p), q in sorted(changed.items()) if side == "bids"],
                     "a": [[fmt(p), fmt(q)] for (side, p), q in sorted(changed.items()) if side == "asks"]}
            out.append(json.dumps({"stream": f"{sym.lower()}@depth@100ms", "data": frame}))
        return out

    def _on_line(self, raw: bytes) -> None:
        if b"@depth" not in raw[:60] or not (self.clients or self.synthetic):
            return
        msg = json.loads(raw)
        extra = self._synthetic_frames(msg["data"]) if self.synthetic else []
        if not self.clients:
            return
        if self.dirty:
            d = msg["data"]
            given = {("bids", float(p)) for p, _ in d["b"]} | {("asks", float(p)) for p, _ in d["a"]}
            for side, p in self.dirty - given:
                left = self._left(side, p)
                d["b" if side == "bids" else "a"].append([fmt(_dec(p)), fmt(left)])
            self.dirty.clear()
        for text in (json.dumps(msg), *extra):
            for ws in list(self.clients):
                if ws.closed:
                    self.clients.discard(ws)
                    continue
                t = asyncio.ensure_future(ws.send_str(text))  # in order: tasks start first in, first out
                self._sending.add(t)
                t.add_done_callback(self._sending.discard)

    def _left(self, side: str, p: float) -> Any:
        m = self.venue.market
        q = (m.book._bids if side == "bids" else m.book._asks).get(p)
        from decimal import Decimal

        if q is None:
            return Decimal(0)
        t = m.taken.get((side, p))
        if t is None or t[0] != q:
            return _dec(q)
        return max(_dec(q) - t[1], Decimal(0))

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                break
            with contextlib.suppress(ValueError, KeyError, TypeError):
                req = json.loads(msg.data)
                if req.get("method") == "SUBSCRIBE":
                    self.clients.add(ws)
                    await ws.send_str(json.dumps({"result": None, "id": req.get("id")}))
        self.clients.discard(ws)
        return ws

    async def pace(self, stop: asyncio.Event) -> None:
        """Move the book with time (``--pace``) even when no request comes."""
        while not stop.is_set():
            self.venue.market.catch_up()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.02)


def _dec(x: float) -> Any:
    from decimal import Decimal

    return Decimal(repr(x))
