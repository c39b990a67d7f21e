"""Binance's REST conventions as the local venue applies them: parameters from the query string
and the form body, request signing (API key, HMAC-SHA256 signature, timestamp within
recvWindow), and the JSON shapes of orders, trades and symbols (numbers as 8-decimal strings).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from aiohttp import web

from tests.exchange.matching import SymbolRules, VenueError, fmt, mandatory
from tests.exchange.store import Fill, Order

if TYPE_CHECKING:
    from tests.exchange.binance_rest import Venue

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
API_KEY = re.compile(r"^[A-Za-z0-9]{1,128}$")
MAX_RECV_WINDOW = 60_000


def error(e: VenueError) -> web.Response:
    return web.json_response({"code": e.code, "msg": e.msg}, status=e.status)


def venue_of(request: web.Request) -> Venue:
    v: Venue = request.app["venue"]
    return v


# -- parameters and signing -----------------------------------------------------------------
async def params_of(request: web.Request) -> tuple[dict[str, str], str, str]:
    """(parameters from query and body, raw query, raw body)."""
    raw_q = request.rel_url.raw_query_string
    raw_b = (await request.text()) if request.can_read_body else ""
    params = dict(parse_qsl(raw_q, keep_blank_values=True))
    params.update(parse_qsl(raw_b, keep_blank_values=True))
    return params, raw_q, raw_b


def _unsigned(raw: str) -> str:
    return "&".join(p for p in raw.split("&") if p and not p.startswith("signature="))


def authenticate(venue: Venue, request: web.Request, params: dict[str, str], raw_q: str, raw_b: str) -> str:
    """The account of a signed request, or a VenueError as Binance answers it."""
    key = request.headers.get("X-MBX-APIKEY", "")
    if not API_KEY.match(key):
        raise VenueError(-2014, "API-key format invalid.", 401)
    found = venue.keys.get(key)
    if found is None:
        raise VenueError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
    account, secret = found
    sig = params.get("signature")
    if not sig:
        raise mandatory("signature")
    payload = _unsigned(raw_q) + _unsigned(raw_b)
    want = hmac.new(secret, payload.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, sig.lower()):
        raise VenueError(-1022, "Signature for this request is not valid.")
    ts = params.get("timestamp")
    if not ts:
        raise mandatory("timestamp")
    try:
        t = int(ts)
        window = int(params.get("recvWindow", "5000"))
    except ValueError:
        raise VenueError(-1100, "Illegal characters found in parameter 'timestamp'.") from None
    if window > MAX_RECV_WINDOW or window <= 0:
        raise VenueError(-1131, "recvWindow must be less than 60000")
    now = venue.now_ms()
    if t > now + 1000:
        raise VenueError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    if now - t > window:
        raise VenueError(-1021, "Timestamp for this request is outside of the recvWindow.")
    return account


def signed(fn: Callable[[web.Request, str, dict[str, str]], Awaitable[web.StreamResponse]]) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        params, raw_q, raw_b = await params_of(request)
        account = authenticate(venue_of(request), request, params, raw_q, raw_b)
        return await fn(request, account, params)
    return handler


def check_symbol(venue: Venue, params: dict[str, str], required: bool = True) -> str | None:
    sym = params.get("symbol")
    if not sym:
        if required:
            raise mandatory("symbol")
        return None
    if sym not in venue.matchers:
        raise VenueError(-1121, "Invalid symbol.")
    return sym


def int_param(params: dict[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise VenueError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.") \
            from None


# -- Binance JSON shapes ----------------------------------------------------------------------
def order_json(o: Order) -> dict[str, Any]:
    return {
        "symbol": o.symbol, "orderId": o.order_id, "orderListId": -1, "clientOrderId": o.client_order_id,
        "price": fmt(o.price), "origQty": fmt(o.orig_qty), "executedQty": fmt(o.executed_qty),
        "cummulativeQuoteQty": fmt(o.cum_quote), "status": o.status, "timeInForce": o.time_in_force,
        "type": o.type, "side": o.side, "stopPrice": fmt(Decimal(0)), "icebergQty": fmt(Decimal(0)),
        "time": o.time, "updateTime": o.update_time, "isWorking": True, "workingTime": o.time,
        "origQuoteOrderQty": fmt(o.orig_quote_qty), "selfTradePreventionMode": "EXPIRE_MAKER",
    }


def new_order_json(o: Order, fills: list[dict[str, Any]], resp_type: str) -> dict[str, Any]:
    """The POST /order answer: ACK, RESULT or FULL (with the fills)."""
    ack = {"symbol": o.symbol, "orderId": o.order_id, "orderListId": -1, "clientOrderId": o.client_order_id,
           "transactTime": o.update_time}
    if resp_type == "ACK":
        return ack
    full = order_json(o)
    for k in ("stopPrice", "icebergQty", "time", "updateTime", "isWorking"):
        full.pop(k)
    out = {**ack, **full}
    if resp_type == "FULL":
        out["fills"] = [{"price": fmt(f["price"]), "qty": fmt(f["qty"]), "commission": fmt(f["commission"]),
                         "commissionAsset": f["commission_asset"], "tradeId": f["trade_id"]} for f in fills]
    return out


def trade_json(f: Fill) -> dict[str, Any]:
    return {"symbol": f.symbol, "id": f.trade_id, "orderId": f.order_id, "orderListId": -1,
            "price": fmt(f.price), "qty": fmt(f.qty), "quoteQty": fmt(f.quote_qty),
            "commission": fmt(f.commission), "commissionAsset": f.commission_asset, "time": f.time,
            "isBuyer": f.is_buyer, "isMaker": f.is_maker, "isBestMatch": True}


def symbol_json(r: SymbolRules) -> dict[str, Any]:
    return {
        "symbol": r.symbol, "status": "TRADING", "baseAsset": r.base, "baseAssetPrecision": 8,
        "quoteAsset": r.quote, "quotePrecision": 8, "quoteAssetPrecision": 8, "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8, "orderTypes": ["LIMIT", "MARKET"], "icebergAllowed": False,
        "ocoAllowed": False, "otoAllowed": False, "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": False,
        "cancelReplaceAllowed": False, "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
        "filters": r.filters(), "permissions": [], "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }
