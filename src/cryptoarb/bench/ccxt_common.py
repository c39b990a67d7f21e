"""ccxt plumbing shared by the offline ccxt.pro replays: availability, Binance markets, captures.

Both the Binance reference replay (:mod:`.ccxt_ref`) and the per-exchange drivers
(:mod:`.ccxt_venues`) need the same few things to run ccxt's real handlers with no network:
whether ccxt is installed, a market dict for ``set_markets`` instead of ``load_markets``, the
captured frames, the JSON parser ccxt's ws client picked, and a way to run a ccxt coroutine
whose I/O is all stubbed. They live here once, so neither side imports the other for them.

ccxt is a dev dependency: check :func:`available` first.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "VENUES",
    "available",
    "binance_market",
    "ccxt_version",
    "drive",
    "read_capture",
    "ws_json_parser",
]

#: ccxt exchange id -> market kind it serves
VENUES: dict[str, str] = {"binance": "spot", "binanceusdm": "linear", "binancecoinm": "inverse"}


def available() -> bool:
    """True when ``ccxt.pro`` can be imported (ccxt is a dev dependency)."""
    try:
        import ccxt.pro  # noqa: F401
    except Exception:
        return False
    return True


def ccxt_version() -> str | None:
    try:
        import ccxt
    except Exception:
        return None
    return str(getattr(ccxt, "__version__", "unknown"))


def read_capture(*paths: str | Path) -> Iterator[tuple[int, bytes]]:
    """Yield ``(local_ns, raw_json)`` from gzip captures of ``<local_ns> <raw json>`` lines, in order."""
    for path in paths:
        with gzip.open(path, "rb") as fh:
            for line in fh:
                line = line.rstrip(b"\r\n")
                if not line:
                    continue
                ts, _, raw = line.partition(b" ")
                yield int(ts), raw


def binance_market(venue: str, symbol: str) -> dict[str, Any]:
    """Minimal ccxt market structure for one Binance perpetual or spot symbol, for ``set_markets``.

    ``binance`` takes ``BASE/QUOTE`` (id ``BASEQUOTE``). ``binanceusdm`` takes ``BASE/QUOTE:QUOTE``
    (id ``BASEQUOTE``). ``binancecoinm`` takes ``BASE/USD:BASE`` (id ``BASEUSD_PERP``).
    """
    kind = VENUES.get(venue)
    if kind is None:
        raise ValueError(f"unsupported venue {venue!r}: expected one of {sorted(VENUES)}")
    pair, _, settle = symbol.partition(":")
    base, sep, quote = pair.partition("/")
    if not sep or not base or not quote:
        raise ValueError(f"not a ccxt unified symbol: {symbol!r}")
    spot = kind == "spot"
    linear = kind == "linear"
    inverse = kind == "inverse"
    if spot and settle:
        raise ValueError(f"{venue} is spot: expected BASE/QUOTE, got {symbol!r}")
    if linear and settle != quote:
        raise ValueError(f"{venue} is USDⓈ-M: expected BASE/QUOTE:QUOTE, got {symbol!r}")
    if inverse and settle != base:
        raise ValueError(f"{venue} is COIN-M: expected BASE/QUOTE:BASE, got {symbol!r}")
    market_id = f"{base}{quote}_PERP" if inverse else f"{base}{quote}"
    contract_size: float | None = None
    if linear:
        contract_size = 1.0
    elif inverse:
        contract_size = 100.0 if base == "BTC" else 10.0  # COIN-M: 100 USD for BTC, 10 USD otherwise
    return {
        "id": market_id,
        "lowercaseId": market_id.lower(),
        "symbol": symbol,
        "base": base,
        "quote": quote,
        "settle": settle or None,
        "baseId": base,
        "quoteId": quote,
        "settleId": settle or None,
        "type": "spot" if spot else "swap",
        "spot": spot,
        "margin": spot,
        "swap": not spot,
        "future": False,
        "option": False,
        "index": False,
        "active": True,
        "contract": not spot,
        "linear": True if linear else (False if inverse else None),
        "inverse": True if inverse else (False if linear else None),
        "contractSize": contract_size,
        "expiry": None,
        "expiryDatetime": None,
        "strike": None,
        "optionType": None,
        "info": {"symbol": market_id},
    }


def drive(awaitable: Awaitable[Any]) -> Any:
    """Run a ccxt coroutine that should never really suspend, since all I/O is stubbed. No event
    loop is needed, so this works inside and outside a running loop."""
    it = awaitable.__await__()
    try:
        it.send(None)
    except StopIteration as stop:
        return stop.value
    close = getattr(it, "close", None)
    if close is not None:
        close()
    raise RuntimeError("ccxt coroutine suspended: it attempted real I/O, which the offline replay cannot serve")


def ws_json_parser() -> tuple[Callable[[str], Any], str]:
    """The ``loads`` ccxt's ws client uses for inbound frames (orjson when importable) and its name."""
    try:
        from ccxt.async_support.base.ws.client import json_parser
    except Exception:
        return json.loads, "json"
    return json_parser.loads, str(getattr(json_parser, "__name__", "json"))
