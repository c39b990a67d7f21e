"""Bursts handled as a batch (engine/batch.py, issue #15): every book update of a burst first,
then detection once per touched book, books with cross-venue peers first, the book changed last
first. Decisions on the final state of a burst are those of message-by-message processing; the
latency recorder still counts every depth message."""

from __future__ import annotations

import json
from typing import Any

from cryptoarb.config import load_settings
from cryptoarb.engine import Engine
from cryptoarb.engine.batch import BurstBatch

VENUES = ("binance", "binanceus")
BALANCES = {"paper": {"balances": {v: {"USDT": "100000", "BTC": "2"} for v in ("binance", "binanceus")}}}
SNAP = json.dumps({"lastUpdateId": 100, "bids": [["59990", "1"]], "asks": [["60010", "1"]]}).encode()


def diff(u: int, bids: list[list[str]], asks: list[list[str]]) -> bytes:
    return json.dumps({"stream": "btcusdt@depth@100ms", "data": {
        "e": "depthUpdate", "E": u, "s": "BTCUSDT", "U": u, "u": u, "b": bids, "a": asks}}).encode()


#: two bursts; in each only the last frame makes the two books cross (so message-by-message
#: processing finds nothing on the intermediate states, and the inputs allow the comparison)
BURSTS: list[list[tuple[str, list[list[str]], list[list[str]]]]] = [
    [("binance", [], [["60010", "0"], ["60005", "1"]]),
     ("binance", [], [["60005", "0"], ["59995", "1"]]),
     ("binanceus", [["59990", "0"], ["60400", "1"]], [["60010", "0"], ["60410", "1"]])],
    [("binanceus", [["60400", "0"], ["59980", "1"]], [["60410", "0"], ["60000", "1"]]),
     ("binance", [["59990", "0"], ["59992", "0.5"]], []),
     ("binance", [["59992", "0"], ["60700", "1"]], [["59995", "0"], ["60710", "1"]])],
]


def run(batch: bool) -> tuple[Engine, list[tuple[Any, ...]]]:
    engine = Engine(load_settings(storage={"enabled": False}, **BALANCES), list(VENUES))
    found: list[tuple[Any, ...]] = []
    engine.on_opportunity.append(lambda o: found.append(
        (o.buy_key, o.sell_key, o.qty_base, o.buy_vwap, o.sell_vwap, o.profit_quote, o.local_ns)))
    b = BurstBatch.of(engine) if batch else None
    for v in VENUES:
        h = engine.handler(v)
        inst = engine.catalog.get(v, "BTC/USDT")
        h.request_snapshot = lambda _inst: None
        if b is not None:
            h.on_book = b.on_book
        h.on_connect([inst], 1)
        h.on_snapshot(inst, SNAP, 2)
    engine.detector.evaluations = 0
    u = {v: 100 for v in VENUES}
    ns = 1_000_000_000
    for burst in BURSTS:
        if b is not None:
            b.begin()
        for venue, bids, asks in burst:
            u[venue] += 1
            ns += 1000
            engine.on_message(engine.handler(venue), diff(u[venue], bids, asks), ns)
        if b is not None:
            b.end()
        ns += 100_000_000
    return engine, found


def test_a_batched_burst_takes_the_decisions_of_message_by_message_processing() -> None:
    one, by_message = run(batch=False)
    many, batched = run(batch=True)
    assert len(by_message) == 2 and batched == by_message  # same pairs, states, sizes and event times
    assert {b.key: (b.bid, b.ask) for b in many.books.values()} == {b.key: (b.bid, b.ask) for b in one.books.values()}
    # every depth message is timed in both modes, until its book's detection in a batch
    assert len(many.latency) == len(one.latency) == sum(len(b) for b in BURSTS)
    # detection ran once per touched pair in a batch (2 bursts), after each message otherwise
    assert many.detector.evaluations == 2 and one.detector.evaluations == 6


def test_books_with_cross_venue_peers_are_detected_first_the_last_changed_first() -> None:
    engine = Engine(load_settings(storage={"enabled": False}, **BALANCES), list(VENUES))
    b = BurstBatch.of(engine)
    order: list[str] = []
    b.on_decided = order.append
    books = {v: engine.handler(v) for v in VENUES}
    for v, h in books.items():
        inst = engine.catalog.get(v, "BTC/USDT")
        h.request_snapshot = lambda _inst: None
        h.on_book = b.on_book
        h.on_connect([inst], 1)
        h.on_snapshot(inst, SNAP, 2)
    lone = next(i for i in engine.catalog.all() if i.venue == "binance" and i.symbol != "BTC/USDT")
    engine.books[lone.key] = engine.books["binance BTC/USDT"].__class__(lone)  # a book no group holds
    engine.books[lone.key].valid = True  # type: ignore[misc]
    b.begin()
    b.on_book(engine.books[lone.key], 5)
    b.on_book(engine.books["binance BTC/USDT"], 6)
    b.on_book(engine.books["binanceus BTC/USDT"], 7)
    b.on_book(engine.books["binance BTC/USDT"], 8)
    b.end()
    assert order == ["binance BTC/USDT", "binanceus BTC/USDT", lone.key]
    assert engine.latency is not b  # the engine's recorder is back


def test_outside_a_burst_a_book_goes_straight_to_detection() -> None:
    engine, _ = run(batch=True)
    b = BurstBatch.of(engine)
    assert not b.active
    before = engine.detector.evaluations
    b.on_book(engine.books["binance BTC/USDT"], 1_200_000_000)
    assert engine.detector.evaluations == before + 1
