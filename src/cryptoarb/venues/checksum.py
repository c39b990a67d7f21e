"""What the checksummed venues share: CRC32s of the best levels, written as the venue wrote them.

A venue's checksum hashes the text of its levels ("8477" is not "8477.0"), which floats cannot
give back: :class:`TextBook` keeps each level's text beside the float book. The string rules
(which fields, separators, the order of the sides) stay with each venue; the signed CRC32 of
``bid1Px:bid1Sz:ask1Px:ask1Sz:...`` that OKX, Bitget and Bitfinex share is :func:`interleaved`.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from itertools import islice
from typing import Generic, Protocol, TypeVar

from cryptoarb.core.book import VALID, Level
from cryptoarb.venues._decode import Levels, TextLevel
from cryptoarb.venues.base import BookSync, ResubscribingHandler

T = TypeVar("T")


def signed32(crc: int) -> int:
    """An unsigned 32-bit CRC as the signed integer the venues send."""
    return crc - 0x1_0000_0000 if crc & 0x8000_0000 else crc


def interleaved(bids: Sequence[Sequence[str]], asks: Sequence[Sequence[str]]) -> int:
    """Signed CRC32 of ``bid1Px:bid1Sz:ask1Px:ask1Sz:...`` over the given levels (best first; the
    first two texts of each); a shorter side just stops contributing."""
    parts: list[str] = []
    for i in range(max(len(bids), len(asks))):
        if i < len(bids):
            parts += bids[i][:2]
        if i < len(asks):
            parts += asks[i][:2]
    return signed32(zlib.crc32(":".join(parts).encode()))


def joined(levels: Iterable[Level], raw: Iterable[TextLevel]) -> list[str]:
    """``"price:size"`` of each text level (its first two texts), as :func:`interleaved` joins them."""
    return [f"{t[0]}:{t[1]}" for _, t in zip(levels, raw, strict=True)]


def keep_joined(texts: dict[float, str], levels: Iterable[Level], raw: Iterable[TextLevel]) -> None:
    """:func:`keep` of ``"price:size"`` texts (quantity 0 deletes)."""
    pop = texts.pop
    for (p, q), t in zip(levels, raw, strict=True):
        if q == 0.0:
            pop(p, None)
        else:
            texts[p] = f"{t[0]}:{t[1]}"


def interleaved_joined(bids: list[str], asks: list[str]) -> int:
    """:func:`interleaved` of levels already joined as ``"price:size"`` (best first)."""
    nb = len(bids)
    na = len(asks)
    if nb == na:
        parts = bids + asks
        parts[::2] = bids
        parts[1::2] = asks
    elif nb > na:
        parts = bids[:na] + asks
        parts[::2] = bids[:na]
        parts[1::2] = asks
        parts += bids[na:]
    else:
        parts = bids + asks[:nb]
        parts[::2] = bids
        parts[1::2] = asks[:nb]
        parts += asks[nb:]
    return signed32(zlib.crc32(":".join(parts).encode()))


def keep(texts: dict[float, T], levels: Iterable[Level], raw: Iterable[T]) -> None:
    """Apply a diff's levels to a side's texts (quantity 0 deletes)."""
    for (p, q), t in zip(levels, raw, strict=True):
        if q == 0.0:
            texts.pop(p, None)
        else:
            texts[p] = t


class TextBook(Generic[T]):
    """A book plus the text of each of its levels: price -> text, per side."""

    __slots__ = ("asks", "bids", "sync")

    def __init__(self, sync: BookSync) -> None:
        self.sync = sync
        self.bids: dict[float, T] = {}
        self.asks: dict[float, T] = {}

    def load(
        self, bids: Iterable[Level], bid_texts: Iterable[T], asks: Iterable[Level], ask_texts: Iterable[T]
    ) -> None:
        """The texts of a snapshot (its empty levels left out)."""
        self.bids = {p: t for (p, q), t in zip(bids, bid_texts, strict=True) if q > 0.0}
        self.asks = {p: t for (p, q), t in zip(asks, ask_texts, strict=True) if q > 0.0}

    def top(self, n: int) -> tuple[list[T], list[T]]:
        """The texts of the ``n`` best bids and asks of the book, best first.

        Read straight off the book's sorted heads (ascending keys, best last; asks keyed by
        ``-price``), which hold every level above their floor: the iterator is needed only when
        a head is shorter than ``n`` and its side has more levels."""
        book = self.sync.book
        stop = -n - 1
        head = book._bkeys
        texts = self.bids
        if len(head) >= n or len(book._bids) == len(head):
            bids = [texts[p] for p in head[:stop:-1]] if n > 0 else []
        else:
            bids = [texts[p] for p, _ in islice(book.bids(), n)]
        head = book._akeys
        texts = self.asks
        if len(head) >= n or len(book._asks) == len(head):
            asks = [texts[-k] for k in head[:stop:-1]] if n > 0 else []
        else:
            asks = [texts[p] for p, _ in islice(book.asks(), n)]
        return bids, asks


class Push(Protocol):
    """A ``books`` push of OKX or Bitget, as far as :class:`PushHandler` reads it."""

    @property
    def bids(self) -> list[TextLevel]: ...
    @property
    def asks(self) -> list[TextLevel]: ...
    @property
    def ts(self) -> int: ...  # ms
    @property
    def checksum(self) -> int | None: ...  # 0 or None: not sent


class PushHandler(ResubscribingHandler):
    """OKX's and Bitget's ``books`` channel: a snapshot push, then updates with absolute sizes; an
    optional sequence number (``seq``; without it ``update_id`` counts updates) and an optional
    :func:`interleaved` checksum of the best ``checksum_depth`` levels' texts. The chaining rules
    of the sequence are the venue's, checked before ``_push_update``."""

    checksum_depth = 25

    def _push_snapshot(self, tb: TextBook[str], d: Push, bids: Levels, asks: Levels, seq: int | None,
                       reason: str, local_ns: int) -> None:
        sync = tb.sync
        book = sync.book
        book.load_snapshot(bids, asks)
        tb.load(bids, joined(bids, d.bids), asks, joined(asks, d.asks))
        sync.last_id = seq or 0
        sync.expect_first = False
        self._date(sync, seq, d.ts, local_ns)
        if d.checksum and not self._texts_ok(tb, d.checksum, local_ns):
            return
        if book.state != VALID:
            self._set_state(sync, VALID, reason, local_ns)
        if book.valid:
            self.on_book(book, local_ns)

    def _push_update(self, tb: TextBook[str], d: Push, bids: Levels, asks: Levels, seq: int | None,
                     local_ns: int) -> None:
        sync = tb.sync
        book = sync.book
        book.apply(bids, asks)
        keep_joined(tb.bids, bids, d.bids)
        keep_joined(tb.asks, asks, d.asks)
        sync.diffs_applied += 1
        if seq is not None:
            sync.last_id = seq
        self._date(sync, seq, d.ts, local_ns)
        if d.checksum and not self._texts_ok(tb, d.checksum, local_ns):
            return
        if book.valid:
            self.on_book(book, local_ns)

    @staticmethod
    def _date(sync: BookSync, seq: int | None, ts_ms: int, local_ns: int) -> None:
        book = sync.book
        book.update_id = sync.last_id if seq is not None else sync.diffs_applied  # legacy: our own count
        book.exchange_ns = ts_ms * 1_000_000
        book.local_ns = local_ns

    def _texts_ok(self, tb: TextBook[str], expected: int, local_ns: int) -> bool:
        """The checksum of the book's best levels as the venue wrote them; a mismatch is a gap."""
        return self._checksum_ok(tb.sync, interleaved_joined(*tb.top(self.checksum_depth)), expected, local_ns)


__all__ = ["Push", "PushHandler", "TextBook", "interleaved", "keep", "signed32"]
