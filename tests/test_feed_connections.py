"""Issue 8, defects 2 and 5: a venue keeps channel ids, sequence numbers and flags per
connection, so our state must be per connection too.

Bitfinex above 12 symbols needs several connections. Here a local Bitfinex speaks the real v2
protocol (``conf`` flags SEQ_ALL | OB_CHECKSUM, ``subscribed`` events whose channel ids restart
on every connection, one sequence per connection, ``cs`` checksums, heartbeats,
``unsubscribe`` by channel id) to 14 symbols over two connections. One connection is dropped
mid-stream and one checksum on the other is corrupted. The venue records every protocol
violation it sees (an unsubscribe of a channel that is not on that connection, a symbol
subscribed on two live connections); at the end every book must equal the venue's.
"""

from __future__ import annotations

import asyncio
import json
import random
import zlib
from typing import Any

import pytest

from cryptoarb.config import load_settings
from cryptoarb.core.instruments import Fees, Instrument, Kind
from cryptoarb.engine import Engine
from cryptoarb.live.backoff import Backoff
from cryptoarb.live.feed import VenueFeed
from cryptoarb.venues.connection import spec_of
from feed_transports import feed_transport  # noqa: F401 -- parametrizes every test of the module
from protovenue import Conn, ProtoVenue, run_feed_until

pytestmark = pytest.mark.usefixtures("feed_transport")

#: longer than any pause of the paced subscriptions: after it, all of a connection's are in
QUIET = spec_of("bitfinex").send_window * 1.5


def js(x: float) -> str:
    return str(int(x)) if x == int(x) else repr(x)


class Bitfinex:
    """The venue's side: one book per symbol (price -> signed amount), sessions per connection."""

    def __init__(self, natives: list[str], rounds: int, drop_first_after: int, corrupt_on_second_at: int) -> None:
        rng = random.Random(2)
        self.rng = rng
        self.books: dict[str, dict[int, float]] = {
            n: {**{1000 - i: float(rng.randint(1, 8)) / 2 for i in range(20)},
                **{1001 + i: -float(rng.randint(1, 8)) / 2 for i in range(20)}} for n in natives}
        self.rounds = rounds
        self.drop_first_after = drop_first_after
        self.corrupt_on_second_at = corrupt_on_second_at
        self.owner: dict[str, int] = {}  # native -> live connection streaming it
        self.finished: set[int] = set()  # connections that sent all their rounds
        self.errors: list[str] = []
        self.corrupted = ""

    def checksum(self, native: str) -> int:
        book = self.books[native]
        bids = sorted((p for p, a in book.items() if a > 0), reverse=True)[:25]
        asks = sorted(p for p, a in book.items() if a < 0)[:25]
        parts: list[str] = []
        for i in range(25):
            if i < len(bids):
                parts += [js(bids[i]), js(book[bids[i]])]
            if i < len(asks):
                parts += [js(asks[i]), js(book[asks[i]])]
        c = zlib.crc32(":".join(parts).encode())
        return c - (1 << 32) if c >= 1 << 31 else c

    async def session(self, conn: Conn) -> None:
        seq = 0
        lock = asyncio.Lock()
        chans: dict[int, tuple[str, str]] = {}  # chan id -> (channel, native)
        next_id = [100]  # channel ids restart on every connection, as Bitfinex's do

        async def emit(chan: int, *rest: Any) -> None:
            nonlocal seq
            async with lock:
                seq += 1
                await conn.send([chan, *rest, seq])

        async def reader() -> None:
            while True:
                m = await conn.recv_json()
                if m["event"] == "conf":
                    await conn.send({"event": "conf", "status": "OK", "flags": m["flags"]})
                elif m["event"] == "subscribe":
                    native = m["symbol"]
                    chan = next_id[0]
                    next_id[0] += 1
                    chans[chan] = (m["channel"], native)
                    if m["channel"] == "book":
                        other = self.owner.get(native)
                        if other is not None and other != conn.index:
                            self.errors.append(f"{native} subscribed on connection {conn.index} and {other}")
                        self.owner[native] = conn.index
                        await conn.send({"event": "subscribed", "channel": "book", "chanId": chan, "symbol": native,
                                         "prec": "P0", "freq": "F0", "len": m["len"], "pair": native[1:]})
                        levels = [[p, 1, a] for p, a in sorted(self.books[native].items(), key=lambda x: -x[0])]
                        await emit(chan, levels)
                        await emit(chan, "cs", self.checksum(native))
                    else:
                        await conn.send({"event": "subscribed", "channel": m["channel"], "chanId": chan,
                                         "symbol": native, "pair": native[1:]})
                        await emit(chan, [])
                elif m["event"] == "unsubscribe":
                    if m["chanId"] not in chans:
                        self.errors.append(f"unsubscribe of channel {m['chanId']} on connection {conn.index}, "
                                           "which has no such channel")
                        await conn.send({"event": "error", "msg": "unsubscribe: invalid", "code": 10400})
                        continue
                    del chans[m["chanId"]]
                    await conn.send({"event": "unsubscribed", "status": "OK", "chanId": m["chanId"]})

        await conn.send({"event": "info", "version": 2, "serverId": "local", "platform": {"status": 1}})
        task = asyncio.ensure_future(reader())
        try:
            seen = -1
            while not chans or seen != len(conn.received):  # until the (paced) subscriptions stop
                seen = len(conn.received)
                await asyncio.sleep(QUIET)
            for r in range(self.rounds):
                if conn.index == 0 and r == self.drop_first_after:
                    await conn.ws.close()
                    return
                for chan, (channel, native) in sorted(chans.items()):
                    if channel != "book":
                        continue
                    book = self.books[native]
                    bid = self.rng.random() < 0.5
                    price = 1000 - self.rng.randrange(25) if bid else 1001 + self.rng.randrange(25)
                    amount = float(self.rng.randint(0, 8)) / 2
                    if amount == 0:
                        book.pop(price, None)
                        await emit(chan, [price, 0, 1 if bid else -1])
                    else:
                        book[price] = amount if bid else -amount
                        await emit(chan, [price, 1, book[price]])
                    cs = self.checksum(native)
                    if conn.index == 1 and r == self.corrupt_on_second_at and not self.corrupted:
                        self.corrupted = native
                        cs += 1
                    await emit(chan, "cs", cs)
                if r % 10 == 0 and chans:
                    await emit(next(iter(chans)), "hb")
                await asyncio.sleep(0.002)
            self.finished.add(conn.index)
            while True:  # a quiet market: heartbeats only
                await asyncio.sleep(0.2)
                if chans:
                    await emit(next(iter(chans)), "hb")
        finally:
            task.cancel()
            for native, owner in list(self.owner.items()):
                if owner == conn.index:
                    del self.owner[native]


def test_bitfinex_over_two_connections_keeps_each_connections_state() -> None:
    names = [f"A{chr(65 + i)}{chr(65 + j)}" for i in range(2) for j in range(7)]  # 14 symbols
    insts = [Instrument("bitfinex", f"{n}/USD", n, "USD", Kind.SPOT, 1e-8, 1e-8, 0.0, 1.0, Fees(0.002, 0.001),
                        f"t{n}USD") for n in names]
    fx = Bitfinex([i.exchange_symbol for i in insts], rounds=120, drop_first_after=40, corrupt_on_second_at=60)
    with ProtoVenue(fx.session) as venue:
        settings = load_settings(storage={"enabled": False})
        engine = Engine(settings, ["bitfinex"], instruments=[])
        for inst in insts:
            engine.catalog.add(inst)
        feed = VenueFeed(engine, "bitfinex", insts, url=venue.ws_url, backoff=Backoff(0.05, 0.2))
        h = engine.handler("bitfinex")

        def settled() -> bool:
            return {1, 2} <= fx.finished and all(
                s.book.valid and s.book.snapshot_levels() == _levels(fx.books[s.instrument.exchange_symbol])
                for s in h.syncs.values())

        run_feed_until(feed, settled, 30)
        assert venue.errors == [] and fx.errors == []
        assert len(feed.handlers) == 2 and feed.handlers[0] is h and feed.handlers[1] is not h
        assert len(venue.conns) == 3  # two connections, the first one reconnected
        assert len(h.syncs) == 14
        for s in h.syncs.values():
            assert s.book.valid, s.instrument.symbol
            assert s.book.snapshot_levels() == _levels(fx.books[s.instrument.exchange_symbol])
        # the only gap is the corrupted checksum; nothing else looked like one
        assert sum(s.gaps for s in h.syncs.values()) == 1
        assert sum(x.checksum_failures for x in feed.handlers) == 1
        assert sum(x.checksums_ok for x in feed.handlers) > 14 * 40
        # books of the connection that stayed up were not touched by the other's reconnection
        stayed = [s for s in h.syncs.values() if s.instrument.exchange_symbol in _natives_of(venue.conns[1])]
        assert len(stayed) == 14 - len(_natives_of(venue.conns[0])) > 0
        assert all(s.resyncs == (1 if s.instrument.exchange_symbol == fx.corrupted else 0) for s in stayed)


def _natives_of(conn: Conn) -> set[str]:
    return {json.loads(t)["symbol"] for _, t in conn.received if '"channel":"book"' in t}


def _levels(book: dict[int, float]) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    bids = [(float(p), a) for p, a in sorted(book.items(), key=lambda x: -x[0]) if a > 0]
    asks = [(float(p), -a) for p, a in sorted(book.items()) if a < 0]
    return bids, asks
