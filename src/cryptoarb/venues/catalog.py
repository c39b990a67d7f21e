"""Built-in instrument metadata, so replay and the demo work offline.

Values are Binance's published rules for these markets (tick, lot, min notional, contract
size) and its default VIP0 fee rates; Binance.US's entries carry Binance's spot filters and
ccxt's default Binance.US fee (0.1 %). A configuration file can override or add instruments;
live runs load the venue's current metadata instead.
"""

from __future__ import annotations

from cryptoarb.core.instruments import Fees, Instrument, Kind

_SPOT = Fees(taker=0.001, maker=0.001)
_FUT = Fees(taker=0.0005, maker=0.0002)

BUILTIN: tuple[Instrument, ...] = (
    Instrument("binance", "BTC/USDT", "BTC", "USDT", Kind.SPOT, 0.01, 0.00001, 5.0, 1.0, _SPOT, "BTCUSDT"),
    Instrument("binance", "ETH/USDT", "ETH", "USDT", Kind.SPOT, 0.01, 0.0001, 5.0, 1.0, _SPOT, "ETHUSDT"),
    Instrument("binanceus", "BTC/USDT", "BTC", "USDT", Kind.SPOT, 0.01, 0.00001, 10.0, 1.0, _SPOT, "BTCUSDT"),
    Instrument("binanceus", "BTC/USD", "BTC", "USD", Kind.SPOT, 0.01, 0.00001, 10.0, 1.0, _SPOT, "BTCUSD"),
    Instrument("binance", "BTC/FDUSD", "BTC", "FDUSD", Kind.SPOT, 0.01, 0.00001, 5.0, 1.0, _SPOT, "BTCFDUSD"),
    Instrument(
        "binanceusdm", "BTC/USDT:USDT", "BTC", "USDT", Kind.LINEAR, 0.1, 0.001, 100.0, 1.0, _FUT, "BTCUSDT"
    ),
    Instrument(
        "binanceusdm", "ETH/USDT:USDT", "ETH", "USDT", Kind.LINEAR, 0.01, 0.001, 20.0, 1.0, _FUT, "ETHUSDT"
    ),
    Instrument(
        "binancecoinm", "BTC/USD:BTC", "BTC", "USD", Kind.INVERSE, 0.1, 1.0, 0.0, 100.0, _FUT, "BTCUSD_PERP"
    ),
    Instrument(
        "binancecoinm", "ETH/USD:ETH", "ETH", "USD", Kind.INVERSE, 0.01, 1.0, 0.0, 10.0, _FUT, "ETHUSD_PERP"
    ),
)


class UnknownInstrument(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


class Catalog:
    """Instruments by ``(venue, symbol)`` and by ``(venue, exchange symbol)``."""

    def __init__(self, instruments: tuple[Instrument, ...] | list[Instrument] = BUILTIN) -> None:
        self._by_symbol: dict[tuple[str, str], Instrument] = {}
        self._by_native: dict[tuple[str, str], Instrument] = {}
        self.provisional_keys: set[str] = set()
        for inst in instruments:
            self.add(inst)

    def add(self, inst: Instrument) -> None:
        self._by_symbol[(inst.venue, inst.symbol)] = inst
        if inst.exchange_symbol:
            self._by_native[(inst.venue, inst.exchange_symbol.upper())] = inst

    def venues(self) -> list[str]:
        return sorted({v for v, _ in self._by_symbol})

    def symbols(self, venue: str) -> list[str]:
        return sorted(s for v, s in self._by_symbol if v == venue)

    def get(self, venue: str, symbol: str) -> Instrument:
        try:
            return self._by_symbol[(venue, symbol)]
        except KeyError:
            known = ", ".join(self.symbols(venue)) or "none"
            raise UnknownInstrument(f"unknown symbol {symbol!r} on {venue!r} (known: {known})") from None

    def find_native(self, venue: str, native: str) -> Instrument | None:
        return self._by_native.get((venue, native.upper()))

    def provisional(self, venue: str, symbol: str, native: str) -> Instrument:
        """An instrument known only by name (third-party captures): precise enough for a book,
        not for trading: tiny tick and lot, default fees. Listed in ``provisional_keys``."""
        pair, _, settle = symbol.partition(":")
        base, sep, quote = pair.partition("/")
        if not sep or not base or not quote:
            raise UnknownInstrument(f"cannot name {native!r} on {venue!r}: {symbol!r} is not BASE/QUOTE")
        settle = settle.split("-", 1)[0]  # dated futures: BTC/USD:BTC-220527
        kind = Kind.SPOT if not settle else (Kind.INVERSE if settle == base else Kind.LINEAR)
        inst = Instrument(venue, symbol, base, quote, kind, 1e-12, 1e-12, 0.0, 1.0, _SPOT, native)
        self.add(inst)
        self.provisional_keys.add(inst.key)
        return inst

    def by_native(self, venue: str, native: str) -> Instrument:
        try:
            return self._by_native[(venue, native.upper())]
        except KeyError:
            known = ", ".join(n for v, n in self._by_native if v == venue) or "none"
            raise UnknownInstrument(
                f"unknown market {native!r} on {venue!r} (known: {known}); add it to the config's instruments"
            ) from None

    def all(self) -> list[Instrument]:
        return list(self._by_symbol.values())
