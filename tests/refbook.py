"""An independent reference rebuild of a Binance local order book, for checking the product.

Written from Binance's documentation only, as plainly as possible and on purpose sharing no
code with ``cryptoarb``: the standard ``json`` module, ``Decimal`` price keys (so
``"61737.63000000"`` and ``"61737.63"`` are one level) and the venue's own strings kept for
output. Speed does not matter here; being obviously right does.

The documented procedure ("How to manage a local order book correctly"):

1. buffer the ``depthUpdate`` events received before the REST snapshot;
2. drop buffered events already contained in the snapshot: ``u <= lastUpdateId`` (spot),
   ``u < lastUpdateId`` (futures);
3. the first event applied must straddle the snapshot: ``U <= lastUpdateId + 1 <= u`` (spot),
   ``U <= lastUpdateId <= u`` (futures);
4. every later event must follow the previous one: ``U == previous u + 1`` (spot, the strict
   rule), ``pu == previous u`` (futures); anything else is a gap, counted here;
5. quantities are absolute; a quantity of zero removes the level.

Capture lines are ``<local ns> <raw json>``; raw frames are combined-stream
``{"stream": "...", "data": {...}}`` objects or the snapshot body (``lastUpdateId``).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any


class RefBook:
    """One market's book, rebuilt by the documented procedure."""

    def __init__(self, futures: bool) -> None:
        self.futures = futures
        self.bid_levels: dict[Decimal, tuple[str, str]] = {}  # price -> (price str, qty str)
        self.ask_levels: dict[Decimal, tuple[str, str]] = {}
        self.buffer: list[dict[str, Any]] = []
        self.synced = False
        self.snapshot_id: int | None = None
        self.last_u: int | None = None  # u of the last applied event (or the snapshot id)
        self.last_E = 0
        self.applied = 0  # depth events applied, buffered ones included
        self.applied_from_buffer = 0  # of which applied when the snapshot arrived
        self.dropped = 0  # buffered events already contained in the snapshot
        self.gaps = 0
        self.depth_events = 0
        self.other_events = 0

    # -- input -------------------------------------------------------------------------
    def feed(self, raw: bytes | str) -> str:
        """One raw frame; returns ``"depth"``, ``"snapshot"`` or ``"other"``."""
        msg = json.loads(raw)
        if "lastUpdateId" in msg:
            self.on_snapshot(msg)
            return "snapshot"
        stream = msg.get("stream", "")
        if "@depth" in stream:
            self.depth_events += 1
            self.on_depth(msg["data"])
            return "depth"
        self.other_events += 1
        return "other"

    def on_snapshot(self, snap: dict[str, Any]) -> None:
        self.bid_levels = {}
        self.ask_levels = {}
        for price, qty in snap["bids"]:
            if Decimal(qty) != 0:
                self.bid_levels[Decimal(price)] = (price, qty)
        for price, qty in snap["asks"]:
            if Decimal(qty) != 0:
                self.ask_levels[Decimal(price)] = (price, qty)
        last = int(snap["lastUpdateId"])
        self.snapshot_id = last
        self.last_u = last
        self.synced = True
        pending = self.buffer
        self.buffer = []
        first = True
        for event in pending:
            if self._contained_in_snapshot(event, last):
                self.dropped += 1
                continue
            if first:
                first = False
                if not self._straddles(event, last):
                    self._gap(event)
                    return
            elif not self._follows(event):
                self._gap(event)
                return
            self._apply(event)
            self.applied_from_buffer += 1

    def on_depth(self, event: dict[str, Any]) -> None:
        if not self.synced:
            self.buffer.append(event)
            return
        if not self._follows(event):
            self._gap(event)
            return
        self._apply(event)

    # -- the rules ---------------------------------------------------------------------
    def _contained_in_snapshot(self, event: dict[str, Any], last: int) -> bool:
        if self.futures:
            return event["u"] < last
        return event["u"] <= last

    def _straddles(self, event: dict[str, Any], last: int) -> bool:
        if self.futures:
            return event["U"] <= last <= event["u"]
        return event["U"] <= last + 1 <= event["u"]

    def _follows(self, event: dict[str, Any]) -> bool:
        if self.futures:
            return event["pu"] == self.last_u
        assert self.last_u is not None
        return event["U"] == self.last_u + 1

    def _gap(self, event: dict[str, Any]) -> None:
        """Out of sync: forget the book and wait for another snapshot."""
        self.gaps += 1
        self.synced = False
        self.buffer = [event]

    def _apply(self, event: dict[str, Any]) -> None:
        for side, levels in (("b", self.bid_levels), ("a", self.ask_levels)):
            for price, qty in event[side]:
                key = Decimal(price)
                if Decimal(qty) == 0:
                    levels.pop(key, None)
                else:
                    levels[key] = (price, qty)
        self.last_u = event["u"]
        self.last_E = event.get("E", self.last_E)
        self.applied += 1

    # -- output ------------------------------------------------------------------------
    def bids(self) -> list[tuple[str, str]]:
        """Bid levels as the venue's strings, best (highest) first."""
        return [self.bid_levels[k] for k in sorted(self.bid_levels, reverse=True)]

    def asks(self) -> list[tuple[str, str]]:
        """Ask levels as the venue's strings, best (lowest) first."""
        return [self.ask_levels[k] for k in sorted(self.ask_levels)]

    def float_bids(self) -> list[tuple[float, float]]:
        return [(float(p), float(q)) for p, q in self.bids()]

    def float_asks(self) -> list[tuple[float, float]]:
        return [(float(p), float(q)) for p, q in self.asks()]

    def top(self, n: int = 5) -> tuple[list[list[float]], list[list[float]]]:
        return (
            [[float(p), float(q)] for p, q in self.bids()[:n]],
            [[float(p), float(q)] for p, q in self.asks()[:n]],
        )

    def snapshot_json(self) -> bytes:
        """The current book as a REST ``/depth`` body (futures bodies also carry ``E``/``T``)."""
        assert self.synced and self.last_u is not None
        body: dict[str, Any] = {"lastUpdateId": self.last_u}
        if self.futures:
            body["E"] = self.last_E
            body["T"] = self.last_E
        body["bids"] = [[p, q] for p, q in self.bids()]
        body["asks"] = [[p, q] for p, q in self.asks()]
        return json.dumps(body, separators=(",", ":")).encode()


def split_line(line: bytes) -> tuple[int, bytes]:
    """``<local ns> <raw json>`` -> ``(local_ns, raw)``."""
    ts, _, raw = line.rstrip(b"\r\n").partition(b" ")
    return int(ts), raw


def rebuild(raws: list[bytes], futures: bool) -> RefBook:
    """The reference book after the whole stream."""
    ref = RefBook(futures)
    for raw in raws:
        ref.feed(raw)
    return ref
