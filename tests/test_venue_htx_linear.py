"""HTX USDT-margined (linear) perpetual swaps through ``HtxHandler`` (issue 8, "More markets").

No capture of HTX's swap stream is available, so every frame here is written by hand from HTX's
documented format (USDT-margined contracts "Subscribe incremental market depth data",
``market.$contract_code.depth.size_${size}.high_freq`` with ``data_type: incremental``; the same
shapes as ccxt.pro 4.5.90 ``htx.handle_order_book_message`` shows): gzip frames, a ``snapshot``
tick on subscription then ``update`` ticks whose ``version`` goes up by one, sizes in contracts.
The last test runs the live feed against a local HTX swap venue on 127.0.0.1 that loses one update.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import random
import time
from typing import Any

import ccxt.pro
import pytest

from cryptoarb.config import load_settings
from cryptoarb.core.instruments import Fees, Instrument, Kind
from cryptoarb.engine import Engine
from cryptoarb.live.backoff import Backoff
from cryptoarb.live.feed import VenueFeed
from cryptoarb.venues.base import DEPTH, OTHER, SNAPSHOT, MessageError
from cryptoarb.venues.catalog import Catalog
from cryptoarb.venues.htx import LINEAR_URL, HtxHandler
from protovenue import Conn, ProtoVenue, run_feed_until

SPOT = Instrument("htx", "BTC/USDT", "BTC", "USDT", Kind.SPOT, 0.01, 1e-6, 5.0, 1.0, Fees(0.002, 0.002), "btcusdt")
SWAP = Instrument("htx", "BTC/USDT:USDT", "BTC", "USDT", Kind.LINEAR, 0.1, 1.0, 0.0, 0.001, Fees(0.0005, 0.0002),
                  "BTC-USDT")
CH = "market.BTC-USDT.depth.size_150.high_freq"


def new_handler(discover: bool = False) -> HtxHandler:
    return HtxHandler("htx", Catalog([SPOT, SWAP]), lambda b, t: None, discover=discover)


def tick(event: str, version: int, bids: list[list[float]], asks: list[list[float]], ch: str = CH) -> bytes:
    """A gzip ``high_freq`` frame as HTX documents it."""
    ts = 1750000000000 + version
    return gzip.compress(json.dumps({"ch": ch, "ts": ts, "tick": {
        "asks": asks, "bids": bids, "ch": ch, "event": event, "id": 152727500274 + version, "mrid": 152727500274,
        "ts": ts, "version": version}}).encode())


BIDS = [[60000.1, 120], [60000.0, 35]]
ASKS = [[60000.2, 80], [60000.5, 1000]]


def test_snapshot_then_updates_chained_by_version_in_contracts() -> None:
    h = new_handler()
    assert h.on_message(tick("update", 9, [[1, 1]], []), 1) == DEPTH  # before any snapshot: dropped
    assert h.on_message(tick("snapshot", 10, BIDS, ASKS), 2) == SNAPSHOT
    sync = h.syncs["BTC/USDT:USDT"]
    assert sync.book.valid and sync.book.update_id == 10 and sync.dropped_before_snapshot == 1
    h.on_message(tick("update", 11, [[60000.1, 0]], [[60000.3, 4]]), 3)
    h.on_message(tick("update", 11, [[60000.1, 5]], []), 4)  # a repeat: skipped
    assert sync.book.snapshot_levels() == ([(60000.0, 35.0)], [(60000.2, 80.0), (60000.3, 4.0), (60000.5, 1000.0)])
    assert sync.stale_skipped == 1 and sync.book.exchange_ns == (1750000000000 + 11) * 1_000_000
    assert SWAP.base_qty(1000.0, 60000.5) == pytest.approx(1.0)  # 1000 contracts of 0.001 BTC
    assert "BTC/USDT" not in h.syncs


def test_a_missing_version_invalidates_and_resubscribes_for_a_new_snapshot() -> None:
    h = new_handler()
    h.on_message(tick("snapshot", 10, BIDS, ASKS), 1)
    h.on_message(tick("update", 12, [[60000.1, 9]], []), 2)  # 11 never came
    sync = h.syncs["BTC/USDT:USDT"]
    assert not sync.book.valid and sync.gaps == 1
    assert [json.loads(m) for m in h.outbox] == [{"unsub": CH, "id": CH},
                                                 {"sub": CH, "id": CH, "data_type": "incremental"}]
    h.on_message(tick("update", 13, [[60000.1, 9]], []), 3)
    assert not sync.book.valid
    h.on_message(tick("snapshot", 13, [[60000.1, 9]], ASKS), 4)
    assert sync.book.valid and sync.book.update_id == 13


def test_a_reconnection_resubscribes_through_the_subscription_not_twice() -> None:
    h = new_handler()
    h.on_message(tick("snapshot", 10, BIDS, ASKS), 1)
    h.on_connect([SWAP], 2)
    assert not h.syncs["BTC/USDT:USDT"].book.valid and h.outbox == []
    assert [json.loads(m) for m in h.subscribe_messages([SWAP])] == [{"sub": CH, "id": CH, "data_type": "incremental"}]


def test_malformed_ticks_raise_and_leave_the_book_alone() -> None:
    h = new_handler()
    h.on_message(tick("snapshot", 10, BIDS, ASKS), 1)
    sync = h.syncs["BTC/USDT:USDT"]
    before = sync.book.snapshot_levels()
    bad = [tick("update", 11, [["x", 1]], []), tick("whatever", 11, [], []),
           gzip.compress(json.dumps({"ch": CH, "ts": 1, "tick": {"event": "update", "bids": []}}).encode()),
           b"\x1f\x8b not gzip"]
    for raw in bad:
        with pytest.raises(MessageError):
            h.on_message(raw, 2)
    assert h.bad_messages == 4 and sync.book.valid and sync.book.snapshot_levels() == before


def test_ping_refusal_and_discovery() -> None:
    h = new_handler()
    assert h.on_message(gzip.compress(b'{"ping":1750000000000}'), 1) == OTHER
    assert h.outbox == ['{"pong":1750000000000}']
    h.on_message(tick("snapshot", 1, BIDS, ASKS), 2)
    err = {"id": CH, "status": "error", "err-code": 2002, "ts": 1,
           "err-msg": "invalid topic market.BTC-USDT.depth.size_150.high_freq"}
    assert h.on_message(gzip.compress(json.dumps(err).encode()), 3) == OTHER
    assert not h.syncs["BTC/USDT:USDT"].book.valid and h.rejections == 1
    d = new_handler(discover=True)
    d.on_message(tick("snapshot", 1, BIDS, ASKS, ch="market.ETH-USDT.depth.size_150.high_freq"), 1)
    assert d.syncs["ETH/USDT:USDT"].instrument.kind is Kind.LINEAR


def test_endpoints_and_what_is_refused() -> None:
    h = new_handler()
    assert h.url_for(SWAP) == LINEAR_URL and h.url_for(SPOT) == "wss://api.huobi.pro/feed"
    ccxt_url = ccxt.pro.htx().urls["api"]["ws"]["api"]["swap"]["linear"]["public"]
    assert ccxt_url.rsplit("/", 1)[1] == LINEAR_URL.rsplit("/", 1)[1] == "linear-swap-ws"
    HtxHandler.check_instruments([SPOT, SWAP])
    inverse = Instrument("htx", "BTC/USD:BTC", "BTC", "USD", Kind.INVERSE, 0.1, 1.0, 0.0, 100.0, Fees(0.0005),
                         "BTC-USD")
    dated = Instrument("htx", "BTC/USDT:USDT-260327", "BTC", "USDT", Kind.LINEAR, 0.1, 1.0, 0.0, 0.001,
                       Fees(0.0005), "BTC-USDT-260327")
    for bad in (inverse, dated):
        with pytest.raises(ValueError, match="USDT-margined"):
            HtxHandler.check_instruments([bad])


# -- the live feed against a local HTX linear-swap venue ----------------------------------------
class HtxSwaps:
    """The venue's side: one swap book (price -> contracts), ``version`` + 1 per update, a snapshot
    on every ``sub``; server pings answered or not; the first connection loses one update."""

    def __init__(self, rounds: int, lose: int) -> None:
        self.rng = random.Random(5)
        self.bids = {round(60000 - i / 10, 1): float(self.rng.randint(1, 500)) for i in range(30)}
        self.asks = {round(60000.1 + i / 10, 1): float(self.rng.randint(1, 500)) for i in range(30)}
        self.version = 500
        self.rounds = rounds
        self.lose = lose
        self.sent = 0
        self.received: list[Any] = []
        self.pongs = 0

    def levels(self) -> tuple[list[list[float]], list[list[float]]]:
        return ([[p, s] for p, s in sorted(self.bids.items(), reverse=True)],
                [[p, s] for p, s in sorted(self.asks.items())])

    def update(self) -> bytes:
        self.version += 1
        b: list[list[float]] = []
        a: list[list[float]] = []
        for side, out, sign in ((self.bids, b, -1), (self.asks, a, 1)):
            for _ in range(self.rng.randint(1, 3)):
                p = round((60000 if sign < 0 else 60000.1) + sign * self.rng.randint(0, 35) / 10, 1)
                s = 0.0 if (p in side and self.rng.random() < 0.3) else float(self.rng.randint(1, 500))
                if s:
                    side[p] = s
                else:
                    side.pop(p, None)
                out.append([p, s])
        return tick("update", self.version, b, a)

    async def session(self, conn: Conn) -> None:
        snapshot_due = asyncio.Event()

        async def reader() -> None:
            try:
                await read()
            finally:  # the client went away: wake the session so that it ends too
                snapshot_due.set()

        async def read() -> None:
            while True:
                m = await conn.recv_json()
                self.received.append(m)
                if "pong" in m:
                    self.pongs += 1
                elif "sub" in m:
                    assert m == {"sub": CH, "id": CH, "data_type": "incremental"}, m
                    await conn.send(gzip.compress(json.dumps({"id": CH, "status": "ok", "subbed": CH,
                                                              "ts": 1}).encode()))
                    snapshot_due.set()

        task = asyncio.ensure_future(reader())
        try:
            await conn.send(gzip.compress(json.dumps({"ping": int(time.time() * 1000)}).encode()))
            while self.sent < self.rounds or snapshot_due.is_set():
                if snapshot_due.is_set():
                    snapshot_due.clear()
                    await conn.send(tick("snapshot", self.version, *self.levels()))
                if self.sent >= self.rounds:
                    break
                frame = self.update()
                self.sent += 1
                if not (conn.index == 0 and self.sent == self.lose):  # lost on the way
                    await conn.send(frame)
                await asyncio.sleep(0.002)
            while True:  # quiet, still answering resubscriptions
                await snapshot_due.wait()
                snapshot_due.clear()
                if task.done():
                    return
                await conn.send(tick("snapshot", self.version, *self.levels()))
        finally:
            task.cancel()


def test_live_feed_keeps_the_swap_book_through_a_lost_update() -> None:
    venue = HtxSwaps(rounds=300, lose=150)
    with ProtoVenue(venue.session) as pv:
        engine = Engine(load_settings(storage={"enabled": False}), ["htx"], instruments=[])
        engine.catalog.add(SPOT)
        engine.catalog.add(SWAP)
        feed = VenueFeed(engine, "htx", [SWAP], url=pv.ws_url, backoff=Backoff(0.05, 0.2))
        sync = engine.handler("htx").sync_for(SWAP)

        run_feed_until(feed, lambda: venue.sent >= venue.rounds and sync.book.valid
                       and sync.book.update_id == venue.version, 30)
    assert pv.errors == []
    assert sync.gaps == 1 and sync.book.valid and sync.book.update_id == venue.version
    assert [m for m in venue.received if "unsub" in m] == [{"unsub": CH, "id": CH}]
    assert venue.pongs == 1
    bids, asks = sync.book.snapshot_levels()
    assert bids == sorted(venue.bids.items(), reverse=True)
    assert asks == sorted(venue.asks.items())
