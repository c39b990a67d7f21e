"""Test machinery shared by the venue handler tests (``tests/test_venue_*.py``).

Reading a cryptofeed capture (``../shared/data/exchange-captures``) into frames or records,
driving a handler with them, recorders of ``on_book`` calls, frame editors for malformed-frame
cases and the check that every malformed frame is rejected without touching the books.
The shared data folder itself is located (skip, or fail in CI) by ``conftest.shared_data_root``.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cryptoarb.core.book import VALID, OrderBook
from cryptoarb.core.events import BookStateChange
from cryptoarb.core.instruments import Instrument
from cryptoarb.replay.cryptofeed import HTTP, RECV, read_records
from cryptoarb.venues.base import MessageError

Levels = list[tuple[float, float]]
Frame = tuple[int, bytes]  # ts_ns, payload
Record = tuple[str, str, int, bytes]  # kind, url, ts_ns, payload


# -- reading captures ---------------------------------------------------------------------------
def capture_frames(root: Path, name: str) -> list[Frame]:
    """Received frames of a cryptofeed capture, merged by time with its ``.http.0.0`` REST file."""
    folder = root / "exchange-captures"
    recs = [r for r in read_records(folder / name) if r.kind == RECV]
    http = folder / f"{name.split('.')[0]}.http.0.0"
    if http.exists():
        recs += [r for r in read_records(http) if r.kind == HTTP]
    recs.sort(key=lambda r: r.ts_ns)
    return [(r.ts_ns, r.payload) for r in recs]


def stream_frames(root: Path, prefix: str, label: str) -> list[Frame]:
    """Received frames of every ``<prefix>.ws.*`` capture, in time order; the venue's books start
    from the stream, so there must be no REST capture."""
    caps = root / "exchange-captures"
    assert not (caps / f"{prefix}.http.0.0").exists(), f"{label} books start from the stream: no REST expected"
    recs = [r for p in sorted(caps.glob(f"{prefix}.ws.*")) for r in read_records(p)]
    assert not [r for r in recs if r.kind == HTTP]
    return sorted(((r.ts_ns, r.payload) for r in recs if r.kind == RECV), key=lambda x: x[0])


def merged_records(root: Path, ws: str, http: str) -> list[Record]:
    """Received frames and REST replies of a ws + http capture pair, merged by time."""
    d = root / "exchange-captures"
    merged = heapq.merge(read_records(d / ws), read_records(d / http), key=lambda r: r.ts_ns)
    return [(r.kind, r.url, r.ts_ns, r.payload) for r in merged if r.kind in (RECV, HTTP)]


def count(records: list[Record], needle: bytes) -> int:
    """Received frames containing ``needle``."""
    return sum(1 for k, _, _, p in records if k == RECV and needle in p)


# -- driving a handler --------------------------------------------------------------------------
def feed(h: Any, ref: Any, r: Record) -> int:
    """One record into handler ``h`` (and the independent reference ``ref`` when given); -1 for a
    REST snapshot, else what ``on_message`` returned."""
    kind, url, ns, payload = r
    if kind == HTTP:
        native = h.native_of_rest_url(url)
        h.on_snapshot(h.instrument_for(native), payload, ns)
        if ref is not None:
            ref.snapshot(native, payload)
        return -1
    if ref is not None:
        ref.frame(payload)
    return h.on_message(payload, ns)


def feed_all(h: Any, ref: Any, records: Iterable[Record]) -> dict[int, int]:
    """Every record through :func:`feed`; how many of each kind came back."""
    kinds: dict[int, int] = {}
    for r in records:
        k = feed(h, ref, r)
        kinds[k] = kinds.get(k, 0) + 1
    return kinds


def levels(book: OrderBook) -> tuple[Levels, Levels]:
    """The full book: bids best first, asks best first."""
    return list(book.bids()), list(book.asks())


def mismatch(book: OrderBook, ref: Any, native: str) -> str | None:
    """Where ``book`` differs from ``ref.levels(native, side)``, or None."""
    for side, got in (("bids", list(book.bids())), ("asks", list(book.asks()))):
        want = ref.levels(native, side)
        if got != want:
            bad = next((i for i, (g, w) in enumerate(zip(got, want, strict=False)) if g != w), None)
            return f"{native} {side}: first difference at {bad}, {len(got)} vs {len(want)} levels"
    return None


# -- recorders ------------------------------------------------------------------------------------
def assert_valid(book: OrderBook) -> None:
    assert book.valid and book.state == VALID, f"on_book saw an invalid book: {book}"


class BookRecorder:
    """Every ``on_book`` call as (key, valid, state), plus events, state changes and snapshot requests."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool, int]] = []
        self.events: list[Any] = []
        self.states: list[BookStateChange] = []
        self.requests: list[Instrument] = []

    def on_book(self, book: OrderBook, local_ns: int) -> None:
        self.calls.append((book.key, book.valid, book.state))


@dataclass
class ValidRecorder:
    """Every ``on_book`` call as (key, update_id); fails at once if a book shown is not valid."""

    calls: list[tuple[str, int]] = field(default_factory=list)  # key, update_id
    states: list[BookStateChange] = field(default_factory=list)
    requests: list[Instrument] = field(default_factory=list)

    def on_book(self, book: OrderBook, local_ns: int) -> None:
        assert_valid(book)
        self.calls.append((book.key, book.update_id))


# -- malformed frames ------------------------------------------------------------------------------
def dumps(m: Any) -> bytes:
    return json.dumps(m, separators=(",", ":")).encode()


def edit_frame(path: str, value: Any) -> Callable[[bytes], bytes]:
    """A frame editor: sets ``path`` (keys/indices joined by '/') of the decoded frame to ``value``
    (or to ``value(old)`` when callable)."""

    def edit(raw: bytes) -> bytes:
        m = json.loads(raw)
        *parents, last = [int(k) if k.isdigit() else k for k in path.split("/")]
        node = m
        for k in parents:
            node = node[k]
        node[last] = value(node[last]) if callable(value) else value
        return dumps(m)

    return edit


def assert_all_rejected(h: Any, cases: dict[str, bytes], state: Callable[[Any], Any]) -> None:
    """Each case raises ``MessageError`` and leaves ``state(h)`` as it was; all are counted bad."""
    assert cases
    before = state(h)
    for what, bad in cases.items():
        with pytest.raises(MessageError):
            h.on_message(bad, 1)
        assert state(h) == before, what
    assert h.bad_messages == len(cases)


def warm_up(h: Any, frames: list[Frame], idx: list[int], n: int) -> list[bytes]:
    """Feed ``h`` every frame before ``frames[idx[n]]``; the payloads of ``idx[n:]`` that remain."""
    for ns, raw in frames[: idx[n]]:
        h.on_message(raw, ns)
    return [frames[i][1] for i in idx[n:]]
