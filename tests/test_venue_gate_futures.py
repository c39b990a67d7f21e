"""Gate USDT-settled perpetuals through ``GateHandler`` (issue 8, "More markets").

No capture of Gate's futures stream is available, so every frame here is written by hand from
Gate's documented format (futures WS v4 "Order book update" and REST ``/futures/{settle}/order_book``
with ``with_id=true``; the same shapes as the examples in ccxt.pro 4.5.90 ``gate.handle_order_book``):
levels are ``{"p": "price", "s": size}`` objects, sizes in contracts. The last test runs the live
feed against a local Gate futures venue on 127.0.0.1 that streams diffs, loses one, and serves its
REST book to ccxt's own ``gate`` class.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

import ccxt
import ccxt.pro
import pytest

from cryptoarb.config import load_settings
from cryptoarb.core.book import VALID
from cryptoarb.core.instruments import Fees, Instrument, Kind
from cryptoarb.engine import Engine
from cryptoarb.live.backoff import Backoff
from cryptoarb.live.feed import VenueFeed
from cryptoarb.live.markets import from_ccxt_market
from cryptoarb.live.rest import CcxtRest
from cryptoarb.venues import gate_futures
from cryptoarb.venues.base import DEPTH, OTHER, MessageError
from cryptoarb.venues.catalog import Catalog, UnknownInstrument
from cryptoarb.venues.gate import GateHandler
from protovenue import Conn, ProtoVenue, run_feed_until

SPOT = Instrument("gate", "BTC/USDT", "BTC", "USDT", Kind.SPOT, 0.1, 1e-6, 3.0, 1.0, Fees(0.002, 0.002), "BTC_USDT")
PERP = Instrument("gate", "BTC/USDT:USDT", "BTC", "USDT", Kind.LINEAR, 0.1, 1.0, 0.0, 0.0001, Fees(0.0005, 0.0002),
                  "BTC_USDT")


class Calls:
    def __init__(self) -> None:
        self.requests: list[str] = []
        self.books = 0


def new_handler(insts: tuple[Instrument, ...] = (SPOT, PERP), discover: bool = False) -> tuple[GateHandler, Calls]:
    c = Calls()

    def on_book(book: Any, t: int) -> None:
        c.books += 1

    h = GateHandler("gate", Catalog(list(insts)), on_book,
                    request_snapshot=lambda i: c.requests.append(i.symbol), discover=discover)
    return h, c


def diff(first: int, last: int, bids: list[tuple[str, float]] = (), asks: list[tuple[str, float]] = (),  # type: ignore[assignment]
         contract: str = "BTC_USDT") -> bytes:
    """A ``futures.order_book_update`` frame as Gate documents it."""
    return json.dumps({
        "time": 1750000000, "time_ms": 1750000000123, "channel": "futures.order_book_update", "event": "update",
        "result": {"t": 1750000000123, "s": contract, "U": first, "u": last,
                   "b": [{"p": p, "s": s} for p, s in bids], "a": [{"p": p, "s": s} for p, s in asks]},
    }).encode()


def snapshot(sid: int, bids: list[tuple[str, float]], asks: list[tuple[str, float]]) -> bytes:
    """A ``GET /futures/usdt/order_book?with_id=true`` body."""
    return json.dumps({"id": sid, "current": 1750000000.125, "update": 1750000000.121,
                       "bids": [{"p": p, "s": s} for p, s in bids], "asks": [{"p": p, "s": s} for p, s in asks]}
                      ).encode()


BIDS = [("60000.1", 120), ("60000", 35)]
ASKS = [("60000.2", 80), ("60000.5", 1000)]


def test_snapshot_joins_the_buffered_diffs_by_update_id_in_contracts() -> None:
    h, c = new_handler()
    assert h.on_message(diff(95, 99, bids=[("59999", 1)]), 1) == DEPTH  # in the snapshot: dropped
    h.on_message(diff(100, 104, bids=[("60000.1", 7)]), 2)  # straddles id 101
    h.on_message(diff(105, 105, asks=[("60000.2", 0)]), 3)
    sync = h.syncs["BTC/USDT:USDT"]
    assert sync.book.state != VALID and len(sync.buffer) == 3
    h.on_snapshot(PERP, snapshot(101, BIDS, ASKS), 4)
    book = sync.book
    assert book.valid and book.update_id == 105 and sync.dropped_before_snapshot == 1
    assert book.snapshot_levels() == ([(60000.1, 7.0), (60000.0, 35.0)], [(60000.5, 1000.0)])
    assert book.exchange_ns == 1750000000123 * 1_000_000
    # the sizes are contracts: 1000 contracts of 0.0001 BTC
    assert PERP.base_qty(1000.0, 60000.5) == pytest.approx(0.1)
    h.on_message(diff(106, 108, asks=[("60000.3", 4)]), 5)
    assert book.ask == 60000.3 and book.update_id == 108 and c.books >= 2
    assert "BTC/USDT" not in h.syncs  # the spot pair of the same id was never touched


def test_a_missing_update_invalidates_and_a_new_snapshot_resyncs() -> None:
    h, c = new_handler()
    h.on_message(diff(101, 102), 1)
    h.on_snapshot(PERP, snapshot(101, BIDS, ASKS), 2)
    sync = h.syncs["BTC/USDT:USDT"]
    assert sync.book.valid
    h.on_message(diff(104, 106, bids=[("60000.1", 9)]), 3)  # 103 never came
    assert not sync.book.valid and sync.gaps == 1 and c.requests == ["BTC/USDT:USDT"]
    h.on_message(diff(107, 107, bids=[("60000", 0)]), 4)
    h.on_snapshot(PERP, snapshot(105, [("60000.1", 9), ("60000", 35)], ASKS), 5)
    assert sync.book.valid and sync.book.update_id == 107
    assert sync.book.snapshot_levels()[0] == [(60000.1, 9.0)]


def test_an_old_snapshot_is_asked_for_again_not_a_gap() -> None:
    h, c = new_handler()
    h.on_message(diff(110, 112), 1)
    h.on_snapshot(PERP, snapshot(101, BIDS, ASKS), 2)  # 102..109 are in neither
    sync = h.syncs["BTC/USDT:USDT"]
    assert not sync.book.valid and sync.gaps == 0 and h.snapshot_retries == 1 and c.requests == ["BTC/USDT:USDT"]


def test_spot_and_perpetual_of_the_same_id_are_separate_books() -> None:
    for order in ((SPOT, PERP), (PERP, SPOT)):  # whichever the catalog indexed last by native id
        h, _ = new_handler(order)
        h.on_message(diff(1, 1, bids=[("1", 1)]), 1)
        spot = {"time": 1, "channel": "spot.order_book_update", "event": "update",
                "result": {"t": 1, "s": "BTC_USDT", "U": 1, "u": 1, "b": [["1", "1"]], "a": []}}
        h.on_message(json.dumps(spot).encode(), 2)
        assert {s: sy.instrument.kind for s, sy in h.syncs.items()} == {"BTC/USDT:USDT": Kind.LINEAR,
                                                                        "BTC/USDT": Kind.SPOT}


def test_unknown_contract_is_an_error_unless_discovering() -> None:
    h, _ = new_handler()
    with pytest.raises(UnknownInstrument):
        h.on_message(diff(1, 1, contract="ETH_USDT"), 1)
    h, _ = new_handler(discover=True)
    h.on_message(diff(1, 1, contract="ETH_USDT"), 1)
    assert h.syncs["ETH/USDT:USDT"].instrument.kind is Kind.LINEAR


def test_malformed_futures_frames_raise_and_leave_the_book_alone() -> None:
    h, _ = new_handler()
    h.on_snapshot(PERP, snapshot(100, BIDS, ASKS), 1)
    sync = h.syncs["BTC/USDT:USDT"]
    before = sync.book.snapshot_levels()
    bad = [diff(101, 101).replace(b'"U": 101', b'"U": "x"'),
           diff(101, 101, bids=[("60000", 1)]).replace(b'{"p": "60000", "s": 1}', b'["60000", 1]'),
           diff(101, 101).replace(b', "u": 101', b"")]
    for raw in bad:
        with pytest.raises(MessageError):
            h.on_message(raw, 2)
    assert h.bad_messages == 3 and sync.book.valid and sync.book.snapshot_levels() == before
    with pytest.raises(MessageError, match="no id"):
        h.on_snapshot(PERP, b'{"bids": [], "asks": []}', 3)
    with pytest.raises(MessageError):
        h.on_snapshot(PERP, b'{"id": 5, "bids": [["1", 2]], "asks": []}', 3)


def test_a_refused_perpetual_turns_that_book_invalid_not_the_pair() -> None:
    h, _ = new_handler()
    h.on_snapshot(SPOT, json.dumps({"id": 1, "bids": [["1", "1"]], "asks": []}).encode(), 1)
    h.on_snapshot(PERP, snapshot(1, BIDS, ASKS), 1)
    refusal = {"time": 1, "channel": "futures.order_book_update", "event": "subscribe",
               "payload": ["BTC_USDT", "100ms", "100"], "error": {"code": 2, "message": "unknown contract BTC_USDT"},
               "result": None}
    assert h.on_message(json.dumps(refusal).encode(), 2) == OTHER
    assert not h.syncs["BTC/USDT:USDT"].book.valid and h.syncs["BTC/USDT"].book.valid


def test_live_spec_endpoints_subscriptions_pings_and_snapshot_call() -> None:
    h, _ = new_handler()
    assert h.url_for(PERP) == "wss://fx-ws.gateio.ws/v4/ws/usdt" == ccxt.pro.gate().urls["api"]["swap"]["usdt"]
    assert h.url_for(SPOT) == "wss://api.gateio.ws/ws/v4/"
    method, params = h.snapshot_request(PERP)
    assert hasattr(ccxt.gate(), method)
    assert params == {"settle": "usdt", "contract": "BTC_USDT", "limit": 100, "with_id": "true"}
    msgs = [json.loads(m) for m in h.subscribe_messages([PERP])]
    assert [(m["channel"], m["payload"]) for m in msgs] == [("futures.order_book_update", ["BTC_USDT", "100ms", "100"])]
    assert h.ping is not None and json.loads(h.ping[1])["channel"] == "futures.ping"
    spot = h.for_connection()
    spot.subscribe_messages([SPOT])
    assert spot.ping is not None and json.loads(spot.ping[1])["channel"] == "spot.ping"
    assert h.on_message(b'{"time":1,"channel":"futures.pong","event":"","result":null}', 1) == OTHER


def test_only_usdt_settled_perpetuals_are_accepted() -> None:
    inverse = Instrument("gate", "BTC/USD:BTC", "BTC", "USD", Kind.INVERSE, 0.1, 1.0, 0.0, 1.0, Fees(0.0005), "BTC_USD")
    dated = Instrument("gate", "BTC/USDT:USDT-260327", "BTC", "USDT", Kind.LINEAR, 0.1, 1.0, 0.0, 0.0001, Fees(0.0005),
                       "BTC_USDT_20260327")
    GateHandler.check_instruments([SPOT, PERP])
    for bad, what in ((inverse, "inverse"), (dated, "dated")):
        with pytest.raises(ValueError, match=what):
            GateHandler.check_instruments([SPOT, bad])


def test_the_contract_size_comes_from_quanto_multiplier_through_ccxt() -> None:
    """ccxt's own parsing of a ``/futures/usdt/contracts`` entry (written from Gate's documented
    fields), then ours: the instrument's contract size is ``quanto_multiplier``, linear."""
    ex = ccxt.gate()
    raw = {"name": "BTC_USDT", "type": "direct", "quanto_multiplier": "0.0001", "order_price_round": "0.1",
           "order_size_min": 1, "order_size_max": 1000000, "mark_price": "60000", "order_price_deviate": "0.5",
           "leverage_min": "1", "leverage_max": "100", "maker_fee_rate": "-0.00025", "taker_fee_rate": "0.00075",
           "in_delisting": False, "status": "trading"}
    m = ex.parse_contract_market(raw, "usdt")
    inst = from_ccxt_market("gate", m, int(ex.precisionMode))
    assert (inst.symbol, inst.kind, inst.contract_size, inst.lot_size, inst.exchange_symbol) == (
        "BTC/USDT:USDT", Kind.LINEAR, 0.0001, 1.0, "BTC_USDT")
    assert GateHandler("gate", Catalog([inst]), lambda b, t: None).url_for(inst) == gate_futures.WS_URL


# -- the live feed against a local Gate futures venue -------------------------------------------
class GateFutures:
    """The venue's side: one perpetual's book (price text -> contracts), diffs numbered by update
    id ranges, the REST book with its id. The first connection loses one diff (a gap)."""

    def __init__(self, rounds: int, lose: int) -> None:
        self.rng = random.Random(8)
        self.bids = {f"{60000 - i / 10:.1f}": self.rng.randint(1, 500) for i in range(30)}
        self.asks = {f"{60000.1 + i / 10:.1f}": self.rng.randint(1, 500) for i in range(30)}
        self.id = 1000
        self.rounds = rounds
        self.lose = lose
        self.sent = 0
        self.done = asyncio.Event()
        self.subscribed: list[Any] = []
        self.pings = 0

    def book(self, query: dict[str, str]) -> bytes:
        assert query == {"contract": "BTC_USDT", "limit": "100", "with_id": "true"}, query
        return json.dumps({"id": self.id, "current": time.time(), "update": time.time(),
                           "bids": [{"p": p, "s": s} for p, s in sorted(self.bids.items(), key=lambda x: -float(x[0]))],
                           "asks": [{"p": p, "s": s} for p, s in sorted(self.asks.items(), key=lambda x: float(x[0]))]}
                          ).encode()

    def step(self) -> dict[str, Any]:
        first = self.id + 1
        self.id += self.rng.randint(1, 3)
        b: list[dict[str, Any]] = []
        a: list[dict[str, Any]] = []
        for side, out, sign in ((self.bids, b, -1), (self.asks, a, 1)):
            for _ in range(self.rng.randint(1, 3)):
                p = f"{(60000 if sign < 0 else 60000.1) + sign * self.rng.randint(0, 35) / 10:.1f}"
                s = 0 if (p in side and self.rng.random() < 0.3) else self.rng.randint(1, 500)
                if s:
                    side[p] = s
                else:
                    side.pop(p, None)
                out.append({"p": p, "s": s})
        return {"time": int(time.time()), "channel": "futures.order_book_update", "event": "update",
                "result": {"t": int(time.time() * 1000), "s": "BTC_USDT", "U": first, "u": self.id, "b": b, "a": a}}

    async def session(self, conn: Conn) -> None:
        sub = await conn.recv_json()
        self.subscribed.append(sub)
        await conn.send({"time": sub["time"], "channel": sub["channel"], "event": "subscribe",
                         "payload": sub["payload"], "result": {"status": "success"}})

        async def reader() -> None:
            while True:
                m = await conn.recv_json()
                if m.get("channel") == "futures.ping":
                    self.pings += 1
                    await conn.send({"time": m["time"], "channel": "futures.pong", "event": "", "result": None})

        task = asyncio.ensure_future(reader())
        try:
            while self.sent < self.rounds:
                frame = self.step()
                self.sent += 1
                if conn.index == 0 and self.sent == self.lose:
                    continue  # lost on the way: the venue's book moved, ours must notice
                await conn.send(frame)
                await asyncio.sleep(0.002)
            self.done.set()
            await conn.ws.wait_closed()
        finally:
            task.cancel()


def test_live_feed_keeps_the_perpetual_book_through_a_lost_diff() -> None:
    venue = GateFutures(rounds=300, lose=150)
    with ProtoVenue(venue.session, rest={"/api/v4/futures/usdt/order_book": venue.book}) as pv:
        engine = Engine(load_settings(storage={"enabled": False}), ["gate"], instruments=[])
        engine.catalog.add(SPOT)
        engine.catalog.add(PERP)
        rest = CcxtRest("gate", {"urls": {"api": {"public": {"futures": pv.http_url + "/api/v4"}}}})
        feed = VenueFeed(engine, "gate", [PERP], url=pv.ws_url, rest=rest, backoff=Backoff(0.05, 0.2))
        sync = engine.handler("gate").sync_for(PERP)

        run_feed_until(feed, lambda: venue.sent >= venue.rounds and sync.book.valid
                       and sync.book.update_id == venue.id, 30)
    assert pv.errors == []
    assert venue.subscribed[0]["payload"] == ["BTC_USDT", "100ms", "100"]
    assert [p for p, _ in pv.requests] == ["/api/v4/futures/usdt/order_book"] * 2  # the first, then the resync
    assert sync.gaps == 1 and sync.book.valid and sync.book.update_id == venue.id
    bids, asks = sync.book.snapshot_levels()
    assert bids == sorted(((float(p), float(s)) for p, s in venue.bids.items()), reverse=True)
    assert asks == sorted((float(p), float(s)) for p, s in venue.asks.items())
