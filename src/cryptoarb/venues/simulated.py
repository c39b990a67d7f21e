"""Order books of the SIMULATED demo venues (see :mod:`cryptoarb.demo.market`).

The demo market speaks one small JSON format on every venue, so that the engine is driven
through the same path as a real feed (raw bytes -> handler -> book -> detector) without any
network. One frame per message, numbers as JSON numbers, timestamps in integer ns:

* snapshot: ``{"type":"snapshot","symbol":"BTC/USDT","seq":N,"ts":ns,"bids":[[p,q],...],"asks":[...]}``
  -- the whole book as of update ``N``;
* diff: ``{"type":"l2update","symbol":"BTC/USDT","seq":N,"ts":ns,"bids":[[p,q],...],"asks":[...]}``
  -- absolute quantities of the levels that changed, ``q == 0`` deletes the level.

``seq`` counts updates per (venue, symbol): a diff applies only onto ``seq - 1``. A diff
that skips a number is a gap: the book turns invalid, a snapshot is requested, diffs are
buffered meanwhile and replayed from ``snapshot.seq + 1`` (the rules of
:meth:`Handler._gap` / :meth:`Handler._resync`, as for Binance spot).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Literal

import msgspec

from cryptoarb.core.book import VALID
from cryptoarb.core.instruments import Fees, Instrument, Kind
from cryptoarb.venues.base import (
    DEPTH,
    SNAPSHOT,
    BookSync,
    Handler,
    MessageError,
    SnapshotRequest,
)
from cryptoarb.venues.catalog import Catalog

if TYPE_CHECKING:
    from cryptoarb.engine.engine import Engine

_Price = Annotated[float, msgspec.Meta(gt=0.0, lt=1e12)]
_Qty = Annotated[float, msgspec.Meta(ge=0.0, lt=1e12)]
_Levels = list[tuple[_Price, _Qty]]


class _Msg(msgspec.Struct):
    """One frame; decoding validates it completely before anything touches a book."""

    type: Literal["snapshot", "l2update"]
    symbol: str
    seq: Annotated[int, msgspec.Meta(ge=0)]
    ts: int = 0
    bids: _Levels = []
    asks: _Levels = []


# strict: numbers must be JSON numbers (no "inf" strings sneaking through as floats)
_decode = msgspec.json.Decoder(_Msg).decode

# -- the demo venues' instruments --------------------------------------------------------
# Taker/maker fees are each venue's published BASE tier for spot (no volume, no token
# discount), as of 2024: Binance VIP0 0.10%/0.10%; OKX Regular Lv1 0.10% taker/0.08% maker;
# Bybit non-VIP 0.10%/0.10%; Coinbase Advanced $0-10k 0.60% taker/0.40% maker; Kraken Pro
# $0-10k 0.40% taker/0.25% maker (its older schedule was 0.26%/0.16%). Tick and lot sizes
# approximate each venue's public market rules for these pairs; they only shape the books.
_FEES = {
    "binance": Fees(taker=0.0010, maker=0.0010),
    "okx": Fees(taker=0.0010, maker=0.0008),
    "bybit": Fees(taker=0.0010, maker=0.0010),
    "coinbase": Fees(taker=0.0060, maker=0.0040),
    "kraken": Fees(taker=0.0040, maker=0.0025),
}
# (venue, symbol) -> (tick, lot, min notional, venue's own symbol)
_RULES: dict[tuple[str, str], tuple[float, float, float, str]] = {
    ("binance", "BTC/USDT"): (0.01, 0.00001, 5.0, "BTCUSDT"),
    ("binance", "ETH/USDT"): (0.01, 0.0001, 5.0, "ETHUSDT"),
    ("okx", "BTC/USDT"): (0.1, 0.00000001, 1.0, "BTC-USDT"),
    ("okx", "ETH/USDT"): (0.01, 0.000001, 1.0, "ETH-USDT"),
    ("bybit", "BTC/USDT"): (0.01, 0.000001, 1.0, "BTCUSDT"),
    ("bybit", "ETH/USDT"): (0.01, 0.00001, 1.0, "ETHUSDT"),
    ("coinbase", "BTC/USDT"): (0.01, 0.00000001, 1.0, "BTC-USDT"),
    ("coinbase", "ETH/USDT"): (0.01, 0.00000001, 1.0, "ETH-USDT"),
    ("kraken", "BTC/USDT"): (0.1, 0.00000001, 5.0, "XBTUSDT"),
    ("kraken", "ETH/USDT"): (0.01, 0.00000001, 5.0, "ETHUSDT"),
    # the triangle's third market (Binance ETHBTC: tick 0.00001, lot 0.0001, min notional 0.0001 BTC)
    ("binance", "ETH/BTC"): (0.00001, 0.0001, 0.0001, "ETHBTC"),
}

SIM_VENUES: tuple[str, ...] = ("binance", "okx", "bybit", "coinbase", "kraken")
SIM_SYMBOLS: tuple[str, ...] = ("BTC/USDT", "ETH/USDT")
#: markets listed on one venue only, beside SIM_SYMBOLS: with BTC/USDT and ETH/USDT they close the
#: SIMULATED triangle USDT -> BTC -> ETH -> USDT (and its reverse) for the triangular detector
SIM_TRI: tuple[tuple[str, str], ...] = (("binance", "ETH/BTC"),)


def demo_instruments(
    venues: tuple[str, ...] | list[str] = SIM_VENUES, symbols: tuple[str, ...] | list[str] = SIM_SYMBOLS,
    extra: tuple[tuple[str, str], ...] = (),
) -> list[Instrument]:
    """Spot instruments of the demo venues (a catalog of only these keeps groups simple), plus
    the ``extra`` (venue, symbol) markets of the venues given."""
    out = []
    pairs = [(v, s) for v in venues for s in symbols] + [(v, s) for v, s in extra if v in venues]
    for v, s in pairs:
        if (v, s) not in _RULES:
            raise ValueError(f"no simulated market {s} on {v} (venues: {', '.join(SIM_VENUES)})")
        tick, lot, min_notional, native = _RULES[(v, s)]
        base, quote = s.split("/")
        out.append(Instrument(v, s, base, quote, Kind.SPOT, tick, lot, min_notional, 1.0, _FEES[v], native))
    return out


def demo_catalog(
    venues: tuple[str, ...] | list[str] = SIM_VENUES, symbols: tuple[str, ...] | list[str] = SIM_SYMBOLS,
    extra: tuple[tuple[str, str], ...] = (),
) -> Catalog:
    return Catalog(demo_instruments(venues, symbols, extra))


class SimulatedHandler(Handler):
    """All symbols of one simulated venue on one stream."""

    def subscribe_messages(self, insts: list[Instrument]) -> list[str]:
        return []  # the simulated market pushes everything; nothing to subscribe to

    # -- hot path --------------------------------------------------------------------
    def on_message(self, raw: bytes, local_ns: int) -> int:
        """Handle one frame; returns DEPTH or SNAPSHOT. Raises MessageError (book untouched)."""
        try:
            m = _decode(raw)
        except msgspec.DecodeError as e:  # ValidationError is a DecodeError
            self.bad_messages += 1
            raise MessageError(f"not a simulated {self.venue} frame: {e}") from None
        sync = self.syncs.get(m.symbol)
        if sync is None:
            # raises UnknownInstrument for a market the catalog does not know
            sync = self.sync_for(self.catalog.get(self.venue, m.symbol))
        if m.type == "l2update":
            self._on_diff(sync, m, local_ns)
            return DEPTH
        self._on_snapshot(sync, m, local_ns)
        return SNAPSHOT

    def _on_diff(self, sync: BookSync, d: _Msg, local_ns: int) -> None:
        if sync.book.state != VALID:
            self._buffer(sync, d)
            return
        last = sync.last_id
        if d.seq <= last:  # a duplicate or late diff: already in the book
            sync.stale_skipped += 1
            return
        if d.seq != last + 1:
            self._gap(sync, f"seq {d.seq} after {last}", d, local_ns)
            return
        self._apply_diff(sync, d.bids, d.asks, d.seq, d.ts, local_ns)

    # -- snapshots -------------------------------------------------------------------
    def _on_snapshot(self, sync: BookSync, s: _Msg, local_ns: int) -> None:
        book = sync.book
        if book.state == VALID and s.seq <= sync.last_id:
            return  # not newer than what the chained diffs already built
        book.load_snapshot(s.bids, s.asks)
        self._stamp(sync, s.seq, s.ts, local_ns)
        last = s.seq
        buffered = sync.buffer
        sync.buffer = []
        book.set_state(VALID)
        for i, d in enumerate(buffered):
            if d.seq <= last:
                sync.dropped_before_snapshot += 1
                continue
            if d.seq != last + 1:
                sync.gaps += 1
                self._resync(sync, f"buffered diff seq {d.seq} does not follow {last}", local_ns)
                sync.buffer = buffered[i:]  # these may chain onto the next snapshot
                return
            self._apply_diff(sync, d.bids, d.asks, d.seq, d.ts)
            last = d.seq
        self._now_valid(sync, f"snapshot {s.seq}", local_ns)


def make_handler_factory(
    request_snapshot: SnapshotRequest | None = None,
) -> Callable[[Engine, str], SimulatedHandler]:
    """An Engine ``handler_factory`` for simulated venues; ``request_snapshot`` is how a
    handler asks the (simulated) venue for a fresh snapshot after a gap."""

    def factory(engine: Engine, venue: str) -> SimulatedHandler:
        h = SimulatedHandler(
            venue, engine.catalog, engine.on_book, request_snapshot=request_snapshot, on_state=engine.on_state
        )
        h.on_new_book = engine.register_book
        return h

    return factory


def simulated_handler_factory(engine: Engine, venue: str) -> SimulatedHandler:
    """The plain factory: no snapshot requests (a gap then waits for the next snapshot)."""
    return make_handler_factory()(engine, venue)


__all__ = [
    "SIM_SYMBOLS",
    "SIM_VENUES",
    "SimulatedHandler",
    "demo_catalog",
    "demo_instruments",
    "make_handler_factory",
    "simulated_handler_factory",
]
