"""Mutation fuzz of the venue handlers on real captured messages (the suite's fuzz test and
``bench/fuzz_handlers.py``).

Each run takes one venue's captured stream (its first ``window`` messages: cryptofeed sessions
and the Binance captures, REST snapshots included), applies one seeded mutation (drop,
duplicate, reorder, truncate, random bytes, a wrong type, or an altered price, quantity,
sequence number or checksum: NaN, infinite, negative, zero, huge, doubled, off by one) and
feeds it through the real replay path (``Engine.on_message``, ``apply_rest_snapshot``). The
run is then classified against the clean replay of the same window:

- ``crash``: an exception other than ``MessageError`` escaped (replay and live would end);
- ``invalid_valid``: a VALID book broke an invariant (best bid < best ask, prices and
  quantities positive and finite) after some message;
- ``corrupt_detectable``: a VALID book at the end differs from the clean one although the
  venue's protocol could tell (a contiguous sequence and a dropped, reordered or renumbered
  message; or a checksum and a difference within the levels it covers), and a later message
  of that book came to tell it;
- ``undetectable``: a VALID book differs in a way the protocol cannot show (a value altered
  on a venue without checksum, or below the checksummed depth);
- ``detected``: the handler noticed (a bad message, a gap, a book left invalid);
- ``harmless``: books as in the clean replay, nothing noticed (a duplicate skipped, a
  mutated trade).

The first three are defects; the suite asserts there are none.
"""

from __future__ import annotations

import gzip
import math
import random
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptoarb.config import load_settings
from cryptoarb.core.book import LIMIT, OrderBook
from cryptoarb.engine.engine import Engine
from cryptoarb.replay.reader import LineStats, Rest, parse_sources, stream
from cryptoarb.replay.run import apply_rest_snapshot
from cryptoarb.venues.base import MessageError

Msg = tuple[int, bytes, Rest]  # local_ns, raw, REST request (None: a stream frame)

CLASSES = ("crash", "invalid_valid", "corrupt_detectable", "undetectable", "detected", "harmless")
DEFECTS = ("crash", "invalid_valid", "corrupt_detectable")
KINDS = ("drop", "dup", "reorder", "truncate", "bytes", "type", "value", "seq")
#: venues whose books chain by a contiguous sequence (a lost or renumbered message shows)
SEQUENCED = frozenset({"binance", "binanceusdm", "binancecoinm", "gate", "kucoin", "htx", "okx", "bitget",
                       "bitfinex"})
#: venues with a book checksum, and the levels per side it covers
CHECKSUMMED = {"kraken": 10, "okx": 25, "bitget": 25}
#: JSON keys holding sequence numbers, update ids and checksums (the rest are values)
SEQ_KEYS = frozenset({"U", "u", "pu", "lastUpdateId", "id", "seqId", "prevSeqId", "seq", "pseq", "sequence",
                      "sequenceStart", "sequenceEnd", "seqNum", "prevSeqNum", "version", "cross_seq",
                      "sequence_num", "socket_sequence", "microtimestamp", "checksum", "c", "chanId"})
BINANCE_FILES = {
    "binance": "spot_btcusdt_20240808.gz",
    "binanceusdm": "usdm_btcusdt_20240808.gz",
    "binancecoinm": "cm_btcusd_perp_20240808.gz",
}


def load_streams(data: Path, window: int = 2_000) -> dict[str, list[Msg]]:
    """Every capture stream in ``data`` (the shared data folder) -> its first ``window`` messages.
    Keys are the venue (a cryptofeed session), or ``"<venue> <file>"`` for the Binance captures,
    whose window is ``window // 2`` lines either side of their snapshot line."""
    out: dict[str, list[Msg]] = {}
    caps = data / "exchange-captures"
    for src in parse_sources([str(p) for p in sorted(caps.iterdir())]):
        msgs = out.setdefault(src.venue, [])
        if len(msgs) < window:
            msgs += [(ns, raw, rest) for ns, _, _, _, raw, rest in stream(src, LineStats())]
    for msgs in out.values():
        msgs.sort(key=lambda m: m[0])
        del msgs[window:]
    for venue, name in BINANCE_FILES.items():
        path = data / "binance-2024-08-08" / name
        (src,) = parse_sources([f"{venue}:{path}"])
        items: list[Msg] = []
        snap = -1
        for ns, _, _, _, raw, rest in stream(src, LineStats()):
            if snap < 0 and raw.startswith(b'{"lastUpdateId"'):
                snap = len(items)
                items = items[max(0, snap - window // 2):]
                snap = len(items)
            items.append((ns, raw, rest))
            if snap >= 0 and len(items) >= snap + window // 2:
                break
        out[f"{venue} {name.split('.')[0]}"] = items
    return out


def venue_of(stream: str) -> str:
    """The venue of a stream key of :func:`load_streams`."""
    return stream.split(" ", 1)[0]


# -- running ---------------------------------------------------------------------------------
@dataclass
class Run:
    """What one replay of a venue's messages gave."""

    crash: str = ""
    invalid: str = ""
    bad: int = 0
    books: dict[str, OrderBook] = field(default_factory=dict)
    gaps: int = 0
    #: clean runs: the index of the last message that changed each book
    last_change: dict[str, int] = field(default_factory=dict)


def _side_ok(price: float, qty: float) -> bool:
    """A best level: positive and finite, or the empty side's zeros."""
    return (0.0 < price < LIMIT and 0.0 < qty < LIMIT) or (price == 0.0 and qty == 0.0)


def _sane_top(b: OrderBook) -> bool:
    """The invariants of a valid book's top: sane levels, best bid below best ask."""
    return _side_ok(b.bid, b.bid_qty) and _side_ok(b.ask, b.ask_qty) and (b.bid < b.ask or not (b.bid and b.ask))


def replay_messages(venue: str, msgs: list[Msg], track: bool = False) -> Run:
    """``msgs`` through a fresh engine, checking the invariants of every valid book after each."""
    e = Engine(load_settings(storage={"enabled": False}), [venue])
    e.discover = True
    h = e.handler(venue)
    run = Run()
    i = 0
    if track:
        on_book = e.on_book

        def tracked(book: OrderBook, local_ns: int) -> None:
            run.last_change[book.key] = i
            on_book(book, local_ns)

        h.on_book = tracked
    syncs = h.syncs
    for i, (ns, raw, rest) in enumerate(msgs):
        try:
            if rest is None:
                e.on_message(h, raw, ns)
            else:
                apply_rest_snapshot(h, rest, raw, ns)
        except MessageError:
            run.bad += 1
        except Exception as ex:
            run.crash = f"message {i}: {type(ex).__name__}: {ex}"
            break
        for s in syncs.values():
            if s.book.valid and not _sane_top(s.book):
                run.invalid = run.invalid or f"message {i}: {s.book!r}"
    for s in syncs.values():
        run.books[s.book.key] = s.book
        run.gaps += s.gaps + s.resyncs
        if s.book.valid and not run.invalid:
            bids, asks = s.book.snapshot_levels()
            for p, q in bids + asks:
                if not (0.0 < p < LIMIT and 0.0 < q < LIMIT and math.isfinite(p * q)):
                    run.invalid = f"end: {s.book.key} holds level {p!r} x {q!r}"
    return run


# -- mutations -------------------------------------------------------------------------------
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|[\[\]{}:,]')
_NUMERIC = re.compile(rb'^"?-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?"?$')


def _leaves(raw: bytes) -> list[tuple[int, int, str]]:
    """Numeric tokens of a JSON text: (start, end, "seq" | "value"). A token is a sequence
    field when its key is one of ``SEQ_KEYS``, or a number at the top of an array frame (a
    channel id or a sequence number, as Bitfinex and Kraken v1 write them)."""
    out: list[tuple[int, int, str]] = []
    depth = 0
    key = b""
    prev = b""
    for m in _TOKEN.finditer(raw):
        tok = m.group()
        if tok in (b"[", b"{"):
            depth += 1
        elif tok in (b"]", b"}"):
            depth -= 1
        elif tok.startswith(b'"') and raw[m.end():m.end() + 1] == b":":
            key = tok[1:-1]
        elif _NUMERIC.match(tok):
            top = depth == 1 and raw.startswith(b"[")
            kind = "seq" if key.decode(errors="replace") in SEQ_KEYS or top else "value"
            if prev == b":" or prev in (b",", b"[") or top:
                out.append((m.start(), m.end(), kind))
        prev = tok
    return out


_VALUE_OPS = ("nan", "-nan", "inf", "neg", "zero", "huge", "scale")
_SEQ_OPS = ("double", "plus1", "minus1", "plus1000", "zero", "neg")
_TYPES = (b"null", b"[]", b"{}", b'"x"', b"true")


def _alter(tok: bytes, op: str) -> bytes:
    quoted = tok.startswith(b'"')
    text = tok.strip(b'"').decode()
    x = float(text)
    new: str
    if op in ("nan", "-nan", "inf"):
        new = {"nan": "NaN", "-nan": "-nan", "inf": "Infinity"}[op]
        return f'"{new}"'.encode() if quoted else new.encode()
    if op == "neg":
        new = f"-{text.lstrip('-')}"
    elif op == "zero":
        new = "0"
    elif op == "huge":
        new = "1e308"
    elif op == "scale":
        new = repr(x * 1.5)
    else:
        n = int(x)
        new = str({"double": 2 * n, "plus1": n + 1, "minus1": n - 1, "plus1000": n + 1000}.get(op, -n))
    return f'"{new}"'.encode() if quoted else new.encode()


@dataclass
class Mutation:
    kind: str
    index: int  # the message mutated (reorder: the first of the two swapped)
    what: str = ""


def mutate(msgs: list[Msg], rng: random.Random, kind: str) -> tuple[list[Msg], Mutation]:
    """A copy of ``msgs`` with one mutation of ``kind`` at a random message."""
    out = list(msgs)
    n = len(out)
    i = rng.randrange(n - 1)
    ns, raw, rest = out[i]
    if kind == "drop":
        del out[i]
        return out, Mutation(kind, i)
    if kind == "dup":
        out.insert(i + 1, out[i])
        return out, Mutation(kind, i)
    if kind == "reorder":
        out[i], out[i + 1] = out[i + 1], out[i]
        return out, Mutation(kind, i + 1)
    for _ in range(50):  # value/seq/type: a message holding a token of that kind
        gz = raw.startswith(b"\x1f\x8b")  # HTX sends gzip frames: the mutation goes into the JSON
        msg, m = _mutate_one(rng, kind, i, ns, gzip.decompress(raw) if gz else raw, rest)
        if m.kind != "none":
            out[i] = (msg[0], gzip.compress(msg[1], mtime=0), rest) if gz else msg
            return out, m
        i = rng.randrange(n - 1)
        ns, raw, rest = out[i]
    return out, m


def _mutate_one(rng: random.Random, kind: str, i: int, ns: int, raw: bytes, rest: Rest) -> tuple[Msg, Mutation]:
    if kind == "truncate":
        return (ns, raw[: rng.randrange(len(raw))], rest), Mutation(kind, i)
    if kind == "bytes":
        b = bytearray(raw)
        for _ in range(rng.randint(1, 3)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return (ns, bytes(b), rest), Mutation(kind, i)
    want = "seq" if kind == "seq" else "value"
    leaves = [lv for lv in _leaves(raw) if lv[2] == want or kind == "type"]
    if not leaves:  # nothing of that kind in this message (a heartbeat, an ack)
        return (ns, raw, rest), Mutation("none", i)
    start, end, _ = rng.choice(leaves)
    tok = raw[start:end]
    if kind == "type":
        new = rng.choice(_TYPES)
        op = new.decode()
    else:
        op = rng.choice(_SEQ_OPS if kind == "seq" else _VALUE_OPS)
        new = _alter(tok, op)
    return (ns, raw[:start] + new + raw[end:], rest), Mutation(kind, i, f"{tok.decode(errors='replace')} -> {op}")


# -- classifying -----------------------------------------------------------------------------
def _top(book: OrderBook, n: int) -> tuple[list[list[float]], list[list[float]]]:
    return book.top(n)


def classify(venue: str, clean: Run, got: Run, m: Mutation) -> tuple[str, str]:
    """The class of a mutated run (see the module doc), and a detail for the report."""
    if got.crash:
        return "crash", got.crash
    if got.invalid:
        return "invalid_valid", got.invalid
    undetectable = ""
    for key, want in clean.books.items():
        book = got.books.get(key)
        if book is None or not book.valid or not want.valid:
            continue
        if book.snapshot_levels() == want.snapshot_levels():
            continue
        later = clean.last_change.get(key, -1) > m.index
        depth = CHECKSUMMED.get(venue)
        seq = venue in SEQUENCED and m.kind in ("drop", "reorder", "seq")
        summed = depth is not None and _top(book, depth) != _top(want, depth)
        if later and (seq or summed):
            return "corrupt_detectable", f"{key} differs after {m.kind} at {m.index} {m.what}"
        undetectable = undetectable or key
    if undetectable:
        return "undetectable", undetectable
    if got.bad or got.gaps > clean.gaps or any(
        w.valid and not (got.books.get(k) and got.books[k].valid) for k, w in clean.books.items()
    ):
        return "detected", ""
    return "harmless", ""


@dataclass
class Report:
    """Per venue, per mutation kind: how many runs fell in each class; the first defects."""

    counts: dict[str, dict[str, Counter[str]]] = field(default_factory=dict)
    defects: list[str] = field(default_factory=list)
    controls: int = 0
    messages: int = 0

    def add(self, venue: str, kind: str, cls: str) -> None:
        self.counts.setdefault(venue, {}).setdefault(kind, Counter())[cls] += 1

    def total(self, venue: str | None = None) -> Counter[str]:
        c: Counter[str] = Counter()
        for v, kinds in self.counts.items():
            if venue is None or v == venue:
                for k in kinds.values():
                    c.update(k)
        return c


def fuzz(streams: dict[str, list[Msg]], runs_per_venue: int, seed: int = 0,
         kinds: tuple[str, ...] = KINDS) -> Report:
    """``runs_per_venue`` mutated runs of each venue (kinds in turn), seeded; an unmutated control
    run per venue must equal the clean replay."""
    report = Report()
    for name, msgs in streams.items():
        venue = venue_of(name)
        clean = replay_messages(venue, msgs, track=True)
        control = replay_messages(venue, msgs)
        report.controls += 1
        cls, why = classify(venue, clean, control, Mutation("none", len(msgs)))
        if clean.crash or clean.invalid or cls != "harmless":
            report.defects.append(f"{name}: the control run is not the clean one: {cls} {why}")
        rng = random.Random(f"{seed}:{name}")
        for r in range(runs_per_venue):
            kind = kinds[r % len(kinds)]
            mutated, m = mutate(msgs, rng, kind)
            got = replay_messages(venue, mutated)
            report.messages += len(mutated)
            cls, why = classify(venue, clean, got, m)
            report.add(name, kind, cls)
            if cls in DEFECTS and len(report.defects) < 50:
                report.defects.append(f"{name} run {r} ({kind} at {m.index} {m.what}): {cls}: {why}")
    return report


def table(report: Report) -> Iterator[str]:
    """The per-venue figures as a Markdown table."""
    yield "| stream | runs | " + " | ".join(CLASSES) + " |"
    yield "|---|---:|" + "---:|" * len(CLASSES)
    for venue in sorted(report.counts):
        c = report.total(venue)
        yield f"| {venue} | {sum(c.values()):,} | " + " | ".join(f"{c[k]:,}" for k in CLASSES) + " |"
    c = report.total()
    yield f"| **all** | {sum(c.values()):,} | " + " | ".join(f"{c[k]:,}" for k in CLASSES) + " |"


def kind_table(report: Report) -> Iterator[str]:
    """Every venue together, per mutation kind."""
    yield "| mutation | runs | " + " | ".join(CLASSES) + " |"
    yield "|---|---:|" + "---:|" * len(CLASSES)
    per: dict[str, Counter[str]] = {}
    for kinds in report.counts.values():
        for k, c in kinds.items():
            per.setdefault(k, Counter()).update(c)
    for k in KINDS:
        c = per.get(k, Counter())
        yield f"| {k} | {sum(c.values()):,} | " + " | ".join(f"{c[x]:,}" for x in CLASSES) + " |"


__all__ = ["CLASSES", "DEFECTS", "KINDS", "Report", "classify", "fuzz", "kind_table", "load_streams", "mutate",
           "replay_messages", "table", "venue_of"]
