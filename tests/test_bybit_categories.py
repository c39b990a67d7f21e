"""Bybit spot, linear and inverse markets in one live run (issue 8: "one market category per
live run" lifted).

Bybit v5 streams each category on its own endpoint with identical topic names: the spot book
and the USDT perpetual of BTC are both ``orderbook.50.BTCUSDT``. Here three local venues on
127.0.0.1 play the three endpoints (the v5 frame format: snapshot on subscription, then deltas
chained by ``u``), each serving different levels under the same topic. One ``VenueFeed`` follows
all three markets: one connection per category, each routed to its own book; a gap on the
linear endpoint re-subscribes there only. Instruments are ccxt's own market structures
(tests/ccxt_markets/bybit.json).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ccxt

from cryptoarb.config import load_settings
from cryptoarb.engine import Engine
from cryptoarb.live.backoff import Backoff
from cryptoarb.live.feed import VenueFeed
from cryptoarb.live.markets import from_ccxt_market
from cryptoarb.venues.catalog import Catalog
from tests.protovenue import Conn, ProtoVenue, run_feed_until

MARKETS = json.loads((Path(__file__).parent / "ccxt_markets" / "bybit.json").read_text())
WS = "wss://stream.bybit.com/v5/public/"


class Endpoint:
    """One category's endpoint: ``rounds`` of (snapshot, deltas) answers, one per subscription."""

    def __init__(self, native: str, rounds: list[tuple[int, list[list[str]], list[list[str]], list[int]]]) -> None:
        self.topic = f"orderbook.50.{native}"
        self.native = native
        self.rounds = rounds  # (snapshot u, bids, asks, delta u's): a delta moves the best bid by one
        self.ops: list[tuple[str, list[str]]] = []
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}
        self.last_u = 0

    def frame(self, kind: str, u: int, b: list[list[str]], a: list[list[str]]) -> dict[str, Any]:
        return {"topic": self.topic, "type": kind, "ts": 1709891679500 + u,
                "data": {"s": self.native, "b": b, "a": a, "u": u, "seq": 7_000_000 + u}, "cts": 1709891679400}

    async def session(self, conn: Conn) -> None:
        served = 0
        while True:
            msg = await conn.recv_json()
            op, args = msg.get("op"), msg.get("args", [])
            if op == "ping":
                await conn.send({"success": True, "ret_msg": "pong", "conn_id": "c", "op": "pong"})
                continue
            self.ops.append((op, args))
            await conn.send({"success": True, "ret_msg": "", "conn_id": "c", "req_id": msg.get("req_id"), "op": op})
            if op != "subscribe" or args != [self.topic] or served >= len(self.rounds):
                continue
            u, bids, asks, deltas = self.rounds[served]
            served += 1
            self.bids, self.asks = {p: q for p, q in bids}, {p: q for p, q in asks}
            await conn.send(self.frame("snapshot", u, bids, asks))
            self.last_u = u
            for du in deltas:
                best = max(self.bids, key=float)
                self.bids[best] = str(float(self.bids[best]) + 1)
                await conn.send(self.frame("delta", du, [[best, self.bids[best]]], []))
                self.last_u = du

    def levels(self) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        return (sorted(((float(p), float(q)) for p, q in self.bids.items()), reverse=True),
                sorted((float(p), float(q)) for p, q in self.asks.items()))


def test_one_run_follows_spot_linear_and_inverse_books_with_identical_topics() -> None:
    ex = ccxt.bybit()
    insts = [from_ccxt_market("bybit", MARKETS[s], int(ex.precisionMode))
             for s in ("BTC/USDT", "BTC/USDT:USDT", "BTC/USD:BTC")]
    spot, linear, inverse = insts
    assert spot.exchange_symbol == linear.exchange_symbol == "BTCUSDT"  # the same id on two endpoints
    endpoints = {
        "spot": Endpoint("BTCUSDT", [(1, [["60000.0", "1.5"]], [["60000.5", "2"]], [2, 3])]),
        # the linear endpoint skips u=11: a gap, re-subscribed on that connection only
        "linear": Endpoint("BTCUSDT", [(10, [["60100.0", "3"]], [["60100.1", "4"]], [12]),
                                       (20, [["60110.0", "5"]], [["60110.2", "6"]], [21, 22])]),
        "inverse": Endpoint("BTCUSD", [(100, [["60200.0", "25000"]], [["60200.5", "30000"]], [101])]),
    }
    venues = {c: ProtoVenue(e.session).start() for c, e in endpoints.items()}
    try:
        engine = Engine(load_settings(storage={"enabled": False}), ["bybit"], catalog=Catalog(insts), instruments=[])
        feed = VenueFeed(engine, "bybit", insts, url={WS + c: v.ws_url for c, v in venues.items()},
                         backoff=Backoff(0.05, 0.2))
        assert sorted(url for url, _ in feed.connections()) == sorted(v.ws_url for v in venues.values())
        syncs = {c: engine.handler("bybit").sync_for(i) for c, i in zip(endpoints, insts, strict=True)}

        def done() -> bool:
            return all(s.book.valid and s.book.update_id == endpoints[c].last_u and endpoints[c].last_u
                       for c, s in syncs.items()) and endpoints["linear"].last_u == 22

        run_feed_until(feed, done, 30)
    finally:
        for v in venues.values():
            v.stop()
    for c, v in venues.items():
        assert v.errors == [] and len(v.conns) == 1, (c, v.errors)
    # identical subscriptions on the spot and linear endpoints; the resubscription went to linear only
    topic = ["orderbook.50.BTCUSDT"]
    assert endpoints["spot"].ops == [("subscribe", topic)]
    assert endpoints["linear"].ops == [("subscribe", topic), ("unsubscribe", topic), ("subscribe", topic)]
    assert endpoints["inverse"].ops == [("subscribe", ["orderbook.50.BTCUSD"])]
    assert (syncs["spot"].gaps, syncs["linear"].gaps, syncs["inverse"].gaps) == (0, 1, 0)
    for c, s in syncs.items():  # each book holds what its own endpoint sent, nothing of the others'
        assert s.book.snapshot_levels() == endpoints[c].levels(), c
    assert next(syncs["spot"].book.bids()) == (60000.0, 3.5)
    assert next(syncs["linear"].book.bids()) == (60110.0, 7.0)
    # the inverse book holds contracts of 1 USD (ccxt contractSize 1): 25001 contracts = 25001 / 60200 BTC
    assert next(syncs["inverse"].book.bids()) == (60200.0, 25001.0)
    assert inverse.base_qty(25001.0, 60200.0) == 25001.0 / 60200.0
    assert {h.category for h in feed.handlers} == {"spot", "linear", "inverse"}
