"""Reading the session captures of the cryptofeed project (its ``sample_data`` format).

One record per line:

- ``<url> <-> <ts>``: a connection opened;
- ``<url> <- <ts>: <json>``: a message we sent (subscriptions);
- ``<ts>: <payload>``: a message received on the last opened connection; binary frames are
  written as a Python bytes literal (``b'\\x1f\\x8b...'``, HTX's gzip frames);
- ``<request url> -> <ts>: <json>``: a REST response (order-book snapshots).

``<ts>`` is seconds since the epoch as a float; we turn it into integer nanoseconds.
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

if TYPE_CHECKING:
    from cryptoarb.replay.reader import ByteProgress

OPEN = "open"
SENT = "sent"
RECV = "recv"
HTTP = "http"

_OPEN = re.compile(r"^(\S+) <-> (\d+(?:\.\d+)?)$")
_SENT = re.compile(r"^(\S+) <- (\d+(?:\.\d+)?): (.*)$", re.S)
_HTTP = re.compile(r"^(\S+) -> (\d+(?:\.\d+)?): (.*)$", re.S)
_RECV = re.compile(r"^(\d+(?:\.\d+)?): (.*)$", re.S)

#: host -> ccxt exchange id
HOSTS = {
    "stream.binance.com": "binance",
    "api.binance.com": "binance",
    "fstream.binance.com": "binanceusdm",
    "fapi.binance.com": "binanceusdm",
    "dstream.binance.com": "binancecoinm",
    "dapi.binance.com": "binancecoinm",
    "stream.binance.us": "binanceus",
    "api.binance.us": "binanceus",
    "api.bitfinex.com": "bitfinex",
    "api-pub.bitfinex.com": "bitfinex",
    "ws.bitget.com": "bitget",
    "api.bitget.com": "bitget",
    "ws.bitstamp.net": "bitstamp",
    "www.bitstamp.net": "bitstamp",
    "stream.bybit.com": "bybit",
    "api.bybit.com": "bybit",
    "ws-feed.pro.coinbase.com": "coinbaseexchange",
    "ws-feed.exchange.coinbase.com": "coinbaseexchange",
    "advanced-trade-ws.coinbase.com": "coinbase",
    "api.gateio.ws": "gate",
    "api.gemini.com": "gemini",
    "api.huobi.pro": "htx",
    "api.htx.com": "htx",
    "ws.kraken.com": "kraken",
    "api.kraken.com": "kraken",
    "ws.okx.com": "okx",
    "www.okx.com": "okx",
    "api.kucoin.com": "kucoin",
}


class CryptofeedFormatError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Record:
    kind: str  # OPEN, SENT, RECV or HTTP
    url: str  # the connection's URL (RECV: the last opened one), or the request URL
    ts_ns: int
    payload: bytes
    line: int


def venue_of(url: str) -> str | None:
    """The ccxt exchange id behind a WebSocket or REST URL, when known."""
    host = urlparse(url).hostname or ""
    if host in HOSTS:
        return HOSTS[host]
    if "kucoin" in host:
        return "kucoin"
    return None


def _ns(ts: str) -> int:
    sec, _, frac = ts.partition(".")
    return int(sec) * 1_000_000_000 + int((frac + "000000000")[:9])


def _payload(text: str) -> bytes:
    if text.startswith(("b'", 'b"')):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError) as e:
            raise CryptofeedFormatError(f"bad bytes literal: {e}") from None
        if not isinstance(value, bytes):
            raise CryptofeedFormatError("bad bytes literal")
        return value
    return text.encode()


def read_records(path: str | Path, progress: ByteProgress | None = None) -> Iterator[Record]:
    """Every record of a capture, in file order. Raises CryptofeedFormatError naming the line.
    ``progress`` follows the bytes read (``arb replay``'s progress bar)."""
    path = Path(path)
    url = ""
    with (path.open("rb") as raw,
          progress.reading(raw) if progress is not None else contextlib.nullcontext(),
          io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape") as f):
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            try:
                if m := _RECV.match(line):
                    yield Record(RECV, url, _ns(m[1]), _payload(m[2]), lineno)
                elif m := _OPEN.match(line):
                    url = m[1]
                    yield Record(OPEN, url, _ns(m[2]), b"", lineno)
                elif m := _SENT.match(line):
                    yield Record(SENT, m[1], _ns(m[2]), m[3].encode(), lineno)
                elif m := _HTTP.match(line):
                    yield Record(HTTP, m[1], _ns(m[2]), m[3].encode(), lineno)
                else:
                    raise CryptofeedFormatError("not a cryptofeed capture record")
            except CryptofeedFormatError as e:
                raise CryptofeedFormatError(f"{path}:{lineno}: {e}") from None


def sniff(path: str | Path) -> bool:
    """Whether ``path`` looks like a cryptofeed capture (its first record opens a connection
    or is a REST response)."""
    try:
        with Path(path).open("r", encoding="utf-8", errors="replace") as f:
            first = f.readline().rstrip("\n")
    except OSError:
        return False
    return bool(_OPEN.match(first) or _HTTP.match(first))
