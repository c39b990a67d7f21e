"""Gemini (``gemini``) order books from the v2 market-data ``l2`` subscription.

Gemini documents (Market Data API v2, ``wss://api.gemini.com/v2/marketdata``): after
``{"type":"subscribe","subscriptions":[{"name":"l2","symbols":[...]}]}`` the first
``l2_updates`` of a symbol is its whole book, together with its last trades (``trades``) and
``auction_events``; later ``l2_updates`` hold only ``changes`` ``[side, price, quantity]`` with the
new absolute quantity ("0" removes the level). Trades arrive as ``trade`` messages, and a
``heartbeat`` every 5 s.

The first message is told apart by its ``trades`` key (present, possibly empty, only in the
full book), not by arrival order: after a resubscription, changes of the old subscription may
still arrive before the new book, and they must not be taken for it.

l2 carries no sequence number and no checksum, so a lost message cannot be proven. What can
be seen is a book that no longer makes sense: a crossed book (best bid >= best ask) after a
full book or a batch of changes means a change was missed; the book is invalidated and the
symbol resubscribed (``unsubscribe`` + ``subscribe`` in ``outbox``; the new full book
replaces it). A change removing a level we do not have is *not* a sign of loss: Gemini sends
those for orders placed and cancelled between two batches (34 times in the cryptofeed capture
``GEMINI.ws.1.0``, whose books all stay consistent). ``update_id`` is the count of applied
batches (Gemini gives none); l2 messages have no timestamp, so ``exchange_ns`` stays 0.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from cryptoarb.core.book import VALID
from cryptoarb.core.events import Trade
from cryptoarb.core.instruments import Instrument
from cryptoarb.venues._decode import Levels
from cryptoarb.venues.base import DEPTH, OTHER, SNAPSHOT, TRADE, BookSync, MessageError, ResubscribingHandler
from cryptoarb.venues.catalog import UnknownInstrument

VENUES = ("gemini",)
#: longest first where one ends another ("GUSD" before "USD")
_QUOTES = ("GUSD", "USDT", "USDC", "DAI", "USD", "GBP", "EUR", "SGD", "CAD", "AUD", "BTC", "ETH", "LTC", "BCH",
           "FIL", "SOL")
_QUIET = frozenset({"heartbeat", "auction_open", "auction_indicative", "auction_result"})


class _Msg(msgspec.Struct):
    """Every v2 market-data message: ``l2_updates``, ``trade``, ``heartbeat`` (fields optional)."""

    type: str = ""
    symbol: str = ""
    changes: list[tuple[str, float, float]] = []
    trades: list[Any] | None = None  # only in the first l2_updates of a subscription
    price: float = 0.0
    quantity: float = 0.0
    side: str = ""
    event_id: int = 0
    timestamp: int = 0
    result: str = ""  # "error" on a refused request: {"result": "error", "reason": "NoValidTradingPairs"}
    reason: str = ""


_decode = msgspec.json.Decoder(_Msg, strict=False).decode


class GeminiHandler(ResubscribingHandler):
    """All Gemini symbols of one v2 market-data connection."""

    venues = VENUES
    refusal = "not a Gemini venue: {venue!r} (expected one of {expected})"
    max_symbols_per_message = 50  # Gemini documents no limit: keep requests and connections moderate
    max_symbols_per_connection = 100
    ping = None  # Gemini sends a heartbeat every 5 s; WebSocket ping frames suffice

    def _setup(self) -> None:
        self.ws_url = "wss://api.gemini.com/v2/marketdata"
        self._syncs: dict[str, BookSync] = {}  # by Gemini symbol
        self._natives: dict[str, str] = {}  # ccxt symbol -> Gemini symbol (resubscriptions)
        # subscribed symbols that have sent nothing yet: Gemini's refusal names no symbol, so a
        # refusal applies to these (a subscription that streams has been accepted)
        self._pending: set[str] = set()

    # -- live ------------------------------------------------------------------------
    def subscribe_messages(self, insts: list[Instrument]) -> list[str]:
        msgs = []
        for i in range(0, len(insts), self.max_symbols_per_message):
            symbols = [inst.exchange_symbol.upper() for inst in insts[i : i + self.max_symbols_per_message]]
            self._pending.update(symbols)
            msgs.append(self._l2("subscribe", symbols))
        return msgs

    @staticmethod
    def _l2(op: str, symbols: list[str]) -> str:
        return orjson.dumps({"type": op, "subscriptions": [{"name": "l2", "symbols": symbols}]}).decode()

    def resubscribe_messages(self, sync: BookSync) -> list[str]:
        inst = sync.instrument
        symbol = self._natives.get(inst.symbol) or inst.exchange_symbol.upper()
        return [self._l2("unsubscribe", [symbol]), self._l2("subscribe", [symbol])]

    def unify(self, native: str) -> str:
        """BTCUSD -> BTC/USD, LINKETH -> LINK/ETH, BTCGUSDPERP -> BTC/GUSD:GUSD."""
        n = native.upper()
        perp = n.endswith("PERP")
        if perp:
            n = n[:-4]
        for q in _QUOTES:
            if n.endswith(q) and len(n) > len(q):
                base = n[: -len(q)]
                return f"{base}/{q}:{q}" if perp else f"{base}/{q}"
        raise UnknownInstrument(f"cannot name {native!r} on {self.venue!r}")

    # -- hot path --------------------------------------------------------------------
    def on_message(self, raw: bytes, local_ns: int) -> int:
        """Handle one raw frame; returns its kind (DEPTH, SNAPSHOT, TRADE, OTHER). Raises MessageError."""
        try:
            m = _decode(raw)
            bids: Levels = []
            asks: Levels = []
            for side, p, q in m.changes:
                if q < 0.0:
                    raise ValueError(f"negative quantity {q} at {p}")
                if side == "buy":
                    bids.append((p, q))
                elif side == "sell":
                    asks.append((p, q))
                else:
                    raise ValueError(f"side {side!r}")
        except (msgspec.DecodeError, ValueError) as e:
            self.bad_messages += 1
            raise MessageError(f"not a Gemini message: {e}") from None
        kind = m.type
        if kind == "l2_updates":
            if not m.symbol:
                self.bad_messages += 1
                raise MessageError("Gemini l2_updates without a symbol")
            self._pending.discard(m.symbol)
            sync = self._syncs.get(m.symbol)
            if sync is None:
                sync = self._syncs[m.symbol] = self.sync_for(self.instrument_for(m.symbol))
                self._natives[sync.instrument.symbol] = m.symbol
            if m.trades is not None:
                self._on_full_book(sync, bids, asks, local_ns)
                return SNAPSHOT
            self._on_changes(sync, bids, asks, local_ns)
            return DEPTH
        if kind == "trade":
            if self.on_event is not None:
                key = self.instrument_for(m.symbol).key
                self.on_event(Trade(key, m.price, m.quantity, m.side, m.event_id, m.timestamp * 1_000_000, local_ns))
            return TRADE
        if m.result == "error":
            self._refusal(m.reason or "error")
            return OTHER
        if kind not in _QUIET:
            self.unknown_streams += 1
        return OTHER

    def _refusal(self, reason: str) -> None:
        """``{"result": "error", "reason": ...}``: the request was refused (e.g. NoValidTradingPairs);
        every subscribed symbol that has not streamed is refused with the reason, never silently."""
        pending: list[str | None] = [*sorted(self._pending)] or [None]  # None: reported, no market named
        self._pending = set()
        for native in pending:
            self._rejected(native, f"Gemini: {reason}")

    def _on_full_book(self, sync: BookSync, bids: Levels, asks: Levels, local_ns: int) -> None:
        book = sync.book
        book.load_snapshot(bids, asks)  # crossed: BadBook, the guard invalidates and resubscribes
        sync.expect_first = False
        book.update_id = sync.diffs_applied
        book.local_ns = local_ns
        if book.state != VALID:
            self._set_state(sync, VALID, "full book", local_ns)
        if book.valid:
            self.on_book(book, local_ns)

    def _on_changes(self, sync: BookSync, bids: Levels, asks: Levels, local_ns: int) -> None:
        book = sync.book
        if book.state != VALID:
            sync.dropped_before_snapshot += 1  # the full book of a resubscription is on its way
            return
        book.apply(bids, asks)  # crossed (a change was missed): BadBook, resynced by the guard
        sync.diffs_applied += 1
        book.update_id = sync.diffs_applied
        book.local_ns = local_ns
        if book.valid:
            self.on_book(book, local_ns)


__all__ = ["VENUES", "GeminiHandler"]
