"""Which handler serves which venue: native handlers by ccxt id, ccxt.pro for the rest.

Modules are imported lazily so that a broken or slow import of one exchange never costs
another, and ``arb`` starts fast.
"""

from __future__ import annotations

import importlib

from cryptoarb.venues.base import Handler

#: ccxt exchange id -> (module, class) of its native streaming handler
NATIVE: dict[str, tuple[str, str]] = {
    "binance": ("binance", "BinanceHandler"),
    "binanceusdm": ("binance", "BinanceHandler"),
    "binancecoinm": ("binance", "BinanceHandler"),
    "binanceus": ("binance", "BinanceHandler"),
    "kraken": ("kraken", "KrakenHandler"),
    "krakenfutures": ("krakenfutures", "KrakenFuturesHandler"),
    "bitfinex": ("bitfinex", "BitfinexHandler"),
    "okx": ("okx", "OkxHandler"),
    "bitget": ("bitget", "BitgetHandler"),
    "gemini": ("gemini", "GeminiHandler"),
    "coinbase": ("coinbase", "CoinbaseHandler"),
    "coinbaseexchange": ("coinbase", "CoinbaseExchangeHandler"),
    "bybit": ("bybit", "BybitHandler"),
    "bitstamp": ("bitstamp", "BitstampHandler"),
    "kucoin": ("kucoin", "KucoinHandler"),
    "gate": ("gate", "GateHandler"),
    "htx": ("htx", "HtxHandler"),
}

#: names users may type for a venue -> its ccxt id
ALIASES = {"gateio": "gate", "huobi": "htx", "coinbasepro": "coinbaseexchange", "okex": "okx"}


class UnknownVenue(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def canonical(venue: str) -> str:
    return ALIASES.get(venue, venue)


def handler_class(venue: str) -> type[Handler] | None:
    """The native handler class of ``venue``, or None when there is none (or it is not built)."""
    entry = NATIVE.get(canonical(venue))
    if entry is None:
        return None
    try:
        module = importlib.import_module(f"cryptoarb.venues.{entry[0]}")
    except ModuleNotFoundError:
        return None
    cls = getattr(module, entry[1], None)
    return cls if isinstance(cls, type) and issubclass(cls, Handler) else None


def native_venues() -> list[str]:
    return sorted(v for v in NATIVE if handler_class(v) is not None)


def ccxt_pro_venues() -> list[str]:
    import ccxt.pro

    return sorted(ccxt.pro.exchanges)


def path_of(venue: str) -> str:
    """'native' or 'ccxt' (the fallback through ccxt.pro's watch_order_book)."""
    if handler_class(venue) is not None:
        return "native"
    if canonical(venue) in ccxt_pro_venues():
        return "ccxt"
    raise UnknownVenue(
        f"unknown venue {venue!r}: native handlers: {', '.join(native_venues())}; "
        "any other ccxt.pro exchange id works through the ccxt fallback"
    )
