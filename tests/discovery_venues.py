"""Local venues for ``--symbols all``: the venues' real metadata endpoints (what ccxt's
``load_markets`` reads) with a handful of markets each, and Binance's combined-stream protocol.

The market entries are the venues' own formats: Binance ``/api/v3/exchangeInfo`` symbol
objects (the fields and filters Binance sends, values of its BTCUSDT/ETHUSDT-like markets) and
OKX ``/api/v5/public/instruments`` objects (as in ``tests/ccxt_markets/okx.json``'s ``info``,
trimmed copies of ccxt's offline markets, MIT). The books are synthetic but chained as Binance
chains them (``U``/``u`` update ids after the REST ``lastUpdateId``).
"""

from __future__ import annotations

import asyncio
import json
import zlib
from typing import Any

from protovenue import Conn, ProtoVenue

#: (base, quote, status) of each local venue's Binance-protocol markets
BINANCE_MARKETS = {
    "binance": [("BTC", "USDT", "TRADING"), ("ETH", "USDT", "TRADING"), ("SOL", "USDT", "TRADING"),
                ("ETH", "BTC", "TRADING"), ("BTC", "FDUSD", "TRADING"), ("XRP", "USDT", "BREAK"),
                ("BTC", "USDC", "TRADING")],
    "binanceus": [("BTC", "USDT", "TRADING"), ("ETH", "USDT", "TRADING"), ("BTC", "USD", "TRADING"),
                  ("DOGE", "USDT", "TRADING"), ("XRP", "USDT", "TRADING")],
}
OKX_SPOT = [("BTC", "USDT"), ("ETH", "USDT"), ("SOL", "USDT"), ("DOGE", "USDC")]
#: seconds between two diffs of one market (a bench with many markets sends fewer)
DIFF_INTERVAL = 0.05


def binance_symbol(base: str, quote: str, status: str = "TRADING") -> dict[str, Any]:
    return {
        "symbol": base + quote, "status": status, "baseAsset": base, "baseAssetPrecision": 8,
        "quoteAsset": quote, "quotePrecision": 8, "quoteAssetPrecision": 8, "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True, "ocoAllowed": True, "otoAllowed": True, "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True, "cancelReplaceAllowed": True, "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000",
             "tickSize": "0.01000000"},
            {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
            {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
             "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
        ],
        "permissions": [], "permissionSets": [["SPOT"]], "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def exchange_info(markets: list[tuple[str, str, str]]) -> bytes:
    return json.dumps({
        "timezone": "UTC", "serverTime": 1723075200000,
        "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000}],
        "exchangeFilters": [], "symbols": [binance_symbol(*m) for m in markets],
    }).encode()


def okx_instrument(base: str, quote: str, kind: str = "SPOT") -> dict[str, Any]:
    swap = kind == "SWAP"
    inverse = swap and quote == "USD"
    return {
        "alias": "", "baseCcy": "" if swap else base, "category": "1", "ctMult": "1" if swap else "",
        "ctType": ("inverse" if inverse else "linear") if swap else "",
        "ctVal": ("100" if inverse else "0.01") if swap else "",
        "ctValCcy": (quote if inverse else base) if swap else "",
        "expTime": "", "instFamily": f"{base}-{quote}" if swap else "",
        "instId": f"{base}-{quote}-SWAP" if swap else f"{base}-{quote}", "instType": kind, "lever": "10",
        "listTime": "1548133413000", "lotSz": "1" if swap else "0.00000001", "maxIcebergSz": "9999999999",
        "maxLmtSz": "9999999999", "maxMktSz": "1000000", "minSz": "1" if swap else "0.00001",
        "optType": "", "quoteCcy": "" if swap else quote, "settleCcy": (base if inverse else quote) if swap else "",
        "state": "live", "stk": "", "tickSz": "0.1", "uly": f"{base}-{quote}" if swap else "",
    }


def okx_instruments(query: dict[str, str]) -> bytes:
    kind = query.get("instType", "SPOT")
    data = ([okx_instrument(b, q) for b, q in OKX_SPOT] if kind == "SPOT" else
            [okx_instrument("BTC", "USDT", "SWAP"), okx_instrument("BTC", "USD", "SWAP")] if kind == "SWAP" else [])
    return json.dumps({"code": "0", "msg": "", "data": data}).encode()


async def binance_session(conn: Conn) -> None:
    """Binance's combined streams: answers SUBSCRIBE, then a depth diff per subscribed market
    every ``DIFF_INTERVAL``, update ids chaining after the REST snapshot's ``lastUpdateId`` (100)."""
    streams: list[str] = []
    next_u: dict[str, int] = {}

    async def diffs() -> None:
        while True:
            for s in list(streams):
                u = next_u.setdefault(s, 101)
                next_u[s] = u + 1
                data = {"e": "depthUpdate", "E": 1723075200000, "s": s.split("@")[0].upper(), "U": u, "u": u,
                        "b": [["99.00", f"{1 + u % 3}.00000"]], "a": [["101.00", "1.00000"]]}
                await conn.send({"stream": s, "data": data})
            await asyncio.sleep(DIFF_INTERVAL)

    task = asyncio.ensure_future(diffs())
    try:
        while True:
            msg = await conn.recv_json()
            if msg.get("method") == "SUBSCRIBE":
                streams += msg["params"]
            await conn.send({"result": None, "id": msg.get("id")})
    finally:
        task.cancel()


def binance_depth(query: dict[str, str]) -> bytes:
    return json.dumps({"lastUpdateId": 100, "bids": [["99.00", "1.00000"], ["98.00", "2.00000"]],
                       "asks": [["101.00", "1.00000"], ["102.00", "2.00000"]]}).encode()


def binance_venue(venue: str) -> ProtoVenue:
    info = exchange_info(BINANCE_MARKETS[venue])
    return ProtoVenue(binance_session, rest={"/api/v3/exchangeInfo": lambda _q: info,
                                             "/api/v3/depth": binance_depth})


def _okx_crc(bids: list[list[str]], asks: list[list[str]]) -> int:
    """OKX's documented checksum (signed CRC32 of ``bid1Px:bid1Sz:ask1Px:ask1Sz:...``)."""
    parts = [x for b, a in zip(bids, asks, strict=True) for x in (*b[:2], *a[:2])]
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


async def okx_session(conn: Conn) -> None:
    """OKX v5 public WebSocket: answers ``ping`` and each subscribed ``books`` channel with the
    subscribe event and a snapshot push (``seqId`` chain start, checksum as OKX computes it)."""
    while True:
        text = await conn.recv()
        if text == "ping":
            await conn.send("pong")
            continue
        msg = json.loads(text)
        for arg in msg.get("args", []):
            await conn.send({"event": msg.get("op"), "arg": arg, "connId": "a4d3ae55"})
            if msg.get("op") == "subscribe" and arg.get("channel") == "books":
                bids, asks = [["99.9", "1", "0", "1"]], [["100.1", "1", "0", "1"]]
                await conn.send({"arg": arg, "action": "snapshot", "data": [{
                    "asks": asks, "bids": bids, "ts": "1723075200000", "checksum": _okx_crc(bids, asks),
                    "prevSeqId": -1, "seqId": 1}]})


def okx_venue() -> ProtoVenue:
    return ProtoVenue(okx_session, rest={"/api/v5/public/instruments": okx_instruments})


def config_toml(venues: dict[str, ProtoVenue]) -> str:
    """Settings pointing ccxt (metadata, snapshots) and the streams at the local venues."""
    out = ["[storage]\nenabled = false\n"]
    for name, v in venues.items():
        if name == "okx":
            urls = f'{{ api = {{ rest = "{v.http_url}" }} }}'
            out.append(f'[live.venues.okx]\nws_url = "{v.ws_url}"\n[live.venues.okx.ccxt]\nurls = {urls}\n'
                       'options = { fetchMarkets = { types = ["spot", "swap"] } }\n')
        else:
            urls = f'{{ api = {{ public = "{v.http_url}/api/v3" }} }}'
            out.append(f'[live.venues.{name}]\nws_url = "{v.ws_url}"\n[live.venues.{name}.ccxt]\nurls = {urls}\n')
    return "\n".join(out)
