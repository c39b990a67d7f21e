"""Issue 8, defect 9: Gate's REST snapshot took 1000 levels while ``spot.order_book_update``
maintains the best 100, so deep levels nobody updates surfaced as phantom liquidity; the
``full`` flag (a full snapshot in the stream) was applied as a diff."""

from __future__ import annotations

import json
from typing import Any

from cryptoarb.core.instruments import Instrument
from cryptoarb.venues.base import SNAPSHOT
from cryptoarb.venues.catalog import Catalog
from cryptoarb.venues.gate import SNAPSHOT_LIMIT, STREAM_DEPTH, GateHandler

INST = Instrument("gate", "ABC/USDT", "ABC", "USDT", exchange_symbol="ABC_USDT")


def _handler() -> tuple[GateHandler, list[str]]:
    cat = Catalog()
    cat.add(INST)
    asked: list[str] = []
    h = GateHandler("gate", cat, lambda b, t: None, request_snapshot=lambda i: asked.append(i.symbol))
    return h, asked


def _update(U: int, u: int, b: list[list[str]], a: list[list[str]], **extra: Any) -> bytes:
    return json.dumps({"time": 1, "time_ms": 1000, "channel": "spot.order_book_update", "event": "update",
                       "result": {"t": 1000, "s": "ABC_USDT", "U": U, "u": u, "b": b, "a": a, **extra}}).encode()


def test_the_snapshot_covers_the_stream_depth_and_no_more() -> None:
    h, _ = _handler()
    _method, params = h.snapshot_request(INST)
    assert params["limit"] == SNAPSHOT_LIMIT == STREAM_DEPTH == 100


def test_levels_pushed_out_of_the_stream_depth_leave_the_book() -> None:
    h, _ = _handler()
    bids = [[f"{100 - i * 0.01:.2f}", "1"] for i in range(100)]
    asks = [[f"{101 + i}", "1"] for i in range(100)]
    h.on_snapshot(INST, json.dumps({"id": 10, "bids": bids, "asks": asks}).encode(), 1)
    sync = h.syncs["ABC/USDT"]
    assert sync.book.valid and sync.book.depth() == (100, 100)
    # five better asks: the venue's 100 now end at 195; 196..200 are no longer maintained
    h.on_message(_update(11, 11, [], [[f"{100.5 + i * 0.1:.1f}", "2"] for i in range(5)]), 2)
    assert sync.book.valid and sync.book.depth() == (100, 100)
    asks_now = [p for p, _ in sync.book.asks()]
    assert asks_now[-1] == 195.0 and 196.0 not in asks_now


def test_a_full_frame_replaces_the_book() -> None:
    h, asked = _handler()
    sync = h.sync_for(INST)
    h.on_connect([INST], 0)
    assert asked == ["ABC/USDT"] and not sync.book.valid
    kind = h.on_message(_update(1, 500, [["99", "1"]], [["101", "1"]], full=True, l="100"), 1)
    assert kind == SNAPSHOT and sync.book.valid and sync.last_id == 500
    h.on_message(_update(501, 501, [["98", "3"]], []), 2)
    assert sync.book.valid and sync.book.depth() == (2, 1) and sync.last_id == 501
    h.on_message(_update(1, 900, [["97", "5"]], [["102", "7"]], full=True), 3)  # replaces, not merges
    assert sync.book.valid and sync.book.top(5) == ([[97.0, 5.0]], [[102.0, 7.0]]) and sync.last_id == 900
    h.on_snapshot(INST, json.dumps({"id": 600, "bids": [["1", "1"]], "asks": [["2", "1"]]}).encode(), 4)
    assert sync.book.top(5) == ([[97.0, 5.0]], [[102.0, 7.0]])  # a late, older REST body is not used
