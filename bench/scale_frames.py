"""The venue protocols of the load harness (issue #15): real frames, renamed markets, metadata.

Each protocol turns one recorded market into a *template sequence* (the symbol replaced by a
placeholder), so any number of renamed markets (``S0000/USDT``, ...) replay the same real
frames without ever breaking a chain:

- ``binance``: combined streams ``<sym>@depth@100ms`` (``SUBSCRIBE``) + REST ``/api/v3/depth``;
  the real BTCUSDT diffs of ``../shared/data/binance-2024-08-08`` that chain onto the recorded
  REST snapshot (6,400+ per market; a market whose recording is used up stops);
- ``okx``: ``books`` pushes of BTC-USDT from ``exchange-captures/OKX.ws.1.0`` (2022, a
  snapshot then updates, CRC32 checksum of the top 25 levels: renaming ``instId`` keeps it),
  with ``seqId``/``prevSeqId`` numbered into them as today's OKX sends; the recording (98
  pushes) loops, each lap starting with its snapshot again (``prevSeqId`` -1: a fresh book, as
  after a resubscription), the first lap cut short at a point of each market's own so that
  markets do not all reach their snapshot at once;
- ``bitget``: ``books`` pushes of AVAXUSDT from ``exchange-captures/BITGET.ws.1.0`` (the 2022
  v1 stream, ``instType`` ``sp`` written as v2's ``SPOT``; checksums kept; 56 pushes), looping
  the same way.

Every frame ends with a reserved stamp slot, ``,"_t":<19 digits>}``: the venue writes the
frame's *scheduled* send time (ns) there just before sending it; handlers ignore the key. Each
protocol also answers the ccxt market-metadata calls its ccxt class makes in ``load_markets``
(spot only: the engine's ccxt config sets ``options.fetchMarkets.types = ["spot"]``).
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BINANCE = DATA / "binance-2024-08-08" / "spot_btcusdt_20240808.gz"
CAPTURES = DATA / "exchange-captures"
SYM = b"\x00S\x00"  # placeholder for the native symbol in a template
LOW = b"\x00s\x00"  # ... lower-cased (Binance stream names)
STAMP_DIGITS = 19
STAMP_KEY = b',"_t":'
PROTOCOLS = ("binance", "okx", "bitget")


def markets(n: int) -> list[str]:
    """Renamed bases: S0000, S0001, ... (unified ``S0000/USDT``)."""
    return [f"S{i:04d}" for i in range(n)]


def with_slot(frame: bytes) -> bytes:
    """``frame`` (a JSON object) with the reserved stamp slot before its closing brace."""
    assert frame.endswith(b"}"), frame[-40:]
    return frame[:-1] + STAMP_KEY + b"1" + b"0" * (STAMP_DIGITS - 1) + b"}"  # valid JSON until stamped


@dataclass
class Protocol:
    """One venue protocol: how markets are named, the template frames, what REST answers."""

    venue: str
    native: Callable[[str], str]  # base -> native symbol
    templates: list[bytes]  # one market's frames, symbol as SYM/LOW, stamp slot included
    loops: bool  # a market may replay its templates again (each lap starts with a snapshot)
    rest: dict[str, Callable[[dict[str, str], list[str]], bytes]]  # path -> body(query, bases)

    def frame(self, base: str, i: int) -> bytes | None:
        """Frame ``i`` of market ``base`` (None: the recording is used up).

        A looping recording restarts (with its snapshot) after a first lap cut short at a point
        of its own for each market: markets taking turns would otherwise all reach their
        snapshot at once, a storm of heavy frames no venue sends (a 25 KB OKX snapshot for
        every market within a fraction of a second)."""
        n = len(self.templates)
        if i >= n and not self.loops:
            return None
        if self.loops:
            first = n - (int(base[1:]) * 7919) % max(1, n // 2)  # any prefix of a lap is a valid chain
            i = i if i < first else (i - first) % n
        nat = self.native(base).encode()
        return self.templates[i].replace(SYM, nat).replace(LOW, nat.lower())

    def subscriptions(self, msg: bytes) -> tuple[list[str], list[bytes]]:
        """Native symbols of the books a client message subscribes, and the replies to send."""
        return SUBSCRIBE[self.venue](msg)


# -- Binance -------------------------------------------------------------------------------
def _binance() -> Protocol:
    snapshot, last, diffs = b"", -1, []
    with gzip.open(BINANCE, "rb") as f:  # diffs recorded before the snapshot's line may follow it
        for line in f:
            raw = line.rstrip(b"\n").partition(b" ")[2]
            if raw.startswith(b'{"lastUpdateId"') and not snapshot:
                snapshot, last = raw, json.loads(raw)["lastUpdateId"]
            elif raw.startswith(b'{"stream":"btcusdt@depth'):
                diffs.append(raw)
    templates = [with_slot(d.replace(b"btcusdt@", LOW + b"@", 1).replace(b'"s":"BTCUSDT"', b'"s":"' + SYM + b'"', 1))
                 for d in diffs if json.loads(d)["data"]["u"] > last]
    if not snapshot or not templates:
        raise SystemExit(f"{BINANCE}: no snapshot with depth diffs after it")

    def exchange_info(_q: dict[str, str], bases: list[str]) -> bytes:
        return json.dumps({"timezone": "UTC", "serverTime": int(time.time() * 1000), "rateLimits": [],
                           "exchangeFilters": [], "symbols": [{
                               "symbol": f"{b}USDT", "status": "TRADING", "baseAsset": b, "baseAssetPrecision": 8,
                               "quoteAsset": "USDT", "quotePrecision": 8, "quoteAssetPrecision": 8,
                               "orderTypes": ["LIMIT", "MARKET"], "isSpotTradingAllowed": True,
                               "isMarginTradingAllowed": False, "permissions": ["SPOT"], "permissionSets": [["SPOT"]],
                               "filters": [{"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000",
                                            "tickSize": "0.01"},
                                           {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000",
                                            "stepSize": "0.00001"},
                                           {"filterType": "NOTIONAL", "minNotional": "5"}]} for b in bases]}).encode()

    return Protocol("binance", lambda b: f"{b}USDT", templates, False,
                    {"/api/v3/exchangeInfo": exchange_info, "/api/v3/depth": lambda _q, _b: snapshot})


def _binance_subs(msg: bytes) -> tuple[list[str], list[bytes]]:
    m = json.loads(msg)
    if m.get("method") != "SUBSCRIBE":
        return [], []
    names = [s.split("@")[0].upper() for s in m["params"] if s.endswith("@depth@100ms")]
    return names, [json.dumps({"result": None, "id": m.get("id")}).encode()]


# -- OKX and Bitget: in-stream snapshots, checksums -----------------------------------------
def _capture(name: str, native: bytes) -> list[bytes]:
    """The ``books`` pushes of one market in a cryptofeed capture, from its first snapshot on."""
    out: list[bytes] = []
    for line in (CAPTURES / name).read_bytes().splitlines():
        head, sep, raw = line.partition(b": ")
        if not sep or b" <- " in head or b'"channel":"books"' not in raw or b'"action"' not in raw:
            continue
        if b'"instId":"' + native + b'"' in raw and (out or b'"action":"snapshot"' in raw):
            out.append(raw)
    if not out:
        raise SystemExit(f"{CAPTURES / name}: no books snapshot for {native.decode()}")
    return out


def _okx() -> Protocol:
    templates, prev = [], -1
    for seq, raw in enumerate(_capture("OKX.ws.1.0", b"BTC-USDT"), 1):
        if b'"action":"snapshot"' in raw:
            prev = -1
        raw = raw.replace(b'"instId":"BTC-USDT"', b'"instId":"' + SYM + b'"')
        templates.append(with_slot(raw.replace(b'"data":[{', b'"data":[{"seqId":%d,"prevSeqId":%d,' % (seq, prev), 1)))
        prev = seq

    def instruments(q: dict[str, str], bases: list[str]) -> bytes:
        data = [] if q.get("instType", "SPOT") != "SPOT" else [{
            "instType": "SPOT", "instId": f"{b}-USDT", "uly": "", "instFamily": "", "baseCcy": b, "quoteCcy": "USDT",
            "settleCcy": "", "ctValCcy": "", "ctVal": "", "ctMult": "", "optType": "", "stk": "",
            "listTime": "1606468572000",
            "expTime": "", "lever": "10", "tickSz": "0.1", "lotSz": "0.00000001", "minSz": "0.00001", "ctType": "",
            "alias": "", "state": "live", "maxLmtSz": "9999999999", "maxMktSz": "1000000"} for b in bases]
        return json.dumps({"code": "0", "msg": "", "data": data}).encode()

    return Protocol("okx", lambda b: f"{b}-USDT", templates, True, {"/api/v5/public/instruments": instruments})


def _push_subs(msg: bytes) -> tuple[list[str], list[bytes]]:
    if msg == b"ping":
        return [], [b"pong"]
    m = json.loads(msg)
    if m.get("op") != "subscribe":
        return [], []
    args = [a for a in m["args"] if a.get("channel") == "books"]
    return [a["instId"] for a in args], [json.dumps({"event": "subscribe", "arg": a}).encode() for a in args]


def _bitget() -> Protocol:
    templates = [with_slot(raw.replace(b'"instType":"sp"', b'"instType":"SPOT"', 1)
                           .replace(b'"instId":"AVAXUSDT"', b'"instId":"' + SYM + b'"'))
                 for raw in _capture("BITGET.ws.1.0", b"AVAXUSDT")]

    def symbols(_q: dict[str, str], bases: list[str]) -> bytes:
        return json.dumps({"code": "00000", "msg": "success", "requestTime": int(time.time() * 1000), "data": [{
            "symbol": f"{b}USDT", "baseCoin": b, "quoteCoin": "USDT", "minTradeAmount": "0",
            "maxTradeAmount": "10000000000", "takerFeeRate": "0.001", "makerFeeRate": "0.001",
            "pricePrecision": "4", "quantityPrecision": "4", "quotePrecision": "6", "status": "online",
            "minTradeUSDT": "5", "buyLimitPriceRatio": "0.05", "sellLimitPriceRatio": "0.05",
            "areaSymbol": "no", "orderQuantity": "200"} for b in bases]}).encode()

    def empty(_q: dict[str, str], _b: list[str]) -> bytes:
        return b'{"code":"00000","msg":"success","data":[]}'

    return Protocol("bitget", lambda b: f"{b}USDT", templates, True,
                    {"/api/v2/spot/public/symbols": symbols, "/api/v2/spot/public/coins": empty,
                     "/api/v2/margin/currencies": empty})


SUBSCRIBE: dict[str, Callable[[bytes], tuple[list[str], list[bytes]]]] = {
    "binance": _binance_subs, "okx": _push_subs, "bitget": _push_subs}
_BUILD: dict[str, Callable[[], Protocol]] = {"binance": _binance, "okx": _okx, "bitget": _bitget}


def protocol(venue: str) -> Protocol:
    try:
        return _BUILD[venue]()
    except KeyError:
        raise SystemExit(f"no local venue speaks {venue!r} (known: {', '.join(PROTOCOLS)})") from None


def ccxt_config(venue: str, base_url: str) -> dict[str, Any]:
    """The ccxt config pointing every REST URL of ``venue`` at the local venue (paths kept)."""
    from urllib.parse import urlsplit

    import ccxt

    def local(u: Any) -> Any:
        if isinstance(u, dict):
            return {k: local(v) for k, v in u.items()}
        if isinstance(u, str) and u.startswith("http"):
            return base_url + urlsplit(u.replace("{hostname}", "h")).path
        return u

    api = getattr(ccxt, venue)().urls["api"]
    return {"enableRateLimit": False, "urls": {"api": local(api)}, "options": {"fetchMarkets": {"types": ["spot"]}}}
