"""A local Binance spot REST venue: enough of ``/api/v3`` (and the few ``/sapi``, ``/fapi``,
``/dapi`` calls ccxt makes while loading markets) for ccxt's ``binance`` and ``binanceus``
classes to trade against it unmodified, their ``urls`` pointed at it.

Run: ``python -m tests.exchange.binance_rest --config venue.json --state-dir DIR --capture
../shared/data/binance-2024-08-08/spot_btcusdt_20240808.gz [--start-line N] [--pace X] [--port P]``.
It prints ``READY http://127.0.0.1:PORT`` once listening. See docs/local-venue.md.

Signed endpoints check, as Binance does: the ``X-MBX-APIKEY`` header (-2014 missing/malformed,
-2015 unknown), the HMAC-SHA256 ``signature`` over the query string followed by the body
(-1022), and ``timestamp`` within ``recvWindow`` of the server clock and at most 1 s ahead
(-1021). Errors are Binance's ``{"code": ..., "msg": ...}`` bodies.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import re
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from tests.exchange.admin import add_admin_routes
from tests.exchange.faults import WEIGHTS, FaultBoard, WeightLimiter, depth_weight
from tests.exchange.market import CaptureError, CaptureMarket
from tests.exchange.matching import Matcher, SymbolRules, VenueError, fmt, mandatory
from tests.exchange.store import Fill, Order, Store

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
API_KEY = re.compile(r"^[A-Za-z0-9]{1,128}$")
MAX_RECV_WINDOW = 60_000
CONFIG_ERROR = 2


class ConfigError(ValueError):
    """The venue's config file is unusable."""


class Venue:
    """Everything one server process holds: accounts, book, durable state, faults, clock."""

    def __init__(self, config: dict[str, Any], state_dir: Path, market: CaptureMarket) -> None:
        self.rules = SymbolRules(**{k: (Decimal(v) if k not in ("symbol", "base", "quote") else v)
                                    for k, v in config.get("symbol", {}).items()})
        self.keys: dict[str, tuple[str, bytes]] = {}  # api key -> (account name, secret)
        fees: dict[str, tuple[Decimal, Decimal]] = {}
        self.store = Store(state_dir)
        for acc in config.get("accounts", []):
            name = acc["name"]
            self.keys[acc["api_key"]] = (name, acc["secret"].encode())
            fees[name] = (Decimal(str(acc.get("taker_fee", "0.001"))), Decimal(str(acc.get("maker_fee", "0.001"))))
            self.store.seed(name, {a: Decimal(str(v)) for a, v in acc.get("balances", {}).items()})
        self.market = market
        self.matcher = Matcher(self.store, market, self.rules, fees, self.now_ms)
        self.faults = FaultBoard()
        self.limiter = WeightLimiter(int(config.get("weight_limit_1m", 6000)))
        self.clock_offset_ms = 0
        self.requests: list[dict[str, Any]] = []  # every request seen (method, path, status), for tests

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.clock_offset_ms


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
    if sym != venue.rules.symbol:
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


# -- public endpoints -------------------------------------------------------------------------
async def ping(request: web.Request) -> web.Response:
    return web.json_response({})


async def server_time(request: web.Request) -> web.Response:
    return web.json_response({"serverTime": venue_of(request).now_ms()})


async def exchange_info(request: web.Request) -> web.Response:
    v = venue_of(request)
    params, _, _ = await params_of(request)
    check_symbol(v, params, required=False)
    return web.json_response({
        "timezone": "UTC", "serverTime": v.now_ms(),
        "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                        "limit": v.limiter.limit}],
        "exchangeFilters": [], "symbols": [symbol_json(v.rules)],
    })


async def depth(request: web.Request) -> web.Response:
    v = venue_of(request)
    params, _, _ = await params_of(request)
    check_symbol(v, params)
    limit = int_param(params, "limit") or 100
    if not 1 <= limit <= 5000:
        raise VenueError(-1100, "Illegal characters found in parameter 'limit'; legal range is '1-5000'.")
    bids, asks = v.market.depth(limit)
    return web.json_response({"lastUpdateId": v.market.book.update_id,
                              "bids": [[fmt(p), fmt(q)] for p, q in bids],
                              "asks": [[fmt(p), fmt(q)] for p, q in asks]})


async def book_ticker(request: web.Request) -> web.Response:
    v = venue_of(request)
    params, _, _ = await params_of(request)
    check_symbol(v, params)
    bids, asks = v.market.depth(1)
    zero = (Decimal(0), Decimal(0))
    (bp, bq), (ap, aq) = (bids or [zero])[0], (asks or [zero])[0]
    return web.json_response({"symbol": v.rules.symbol, "bidPrice": fmt(bp), "bidQty": fmt(bq),
                              "askPrice": fmt(ap), "askQty": fmt(aq)})


# -- signed endpoints -------------------------------------------------------------------------
@signed
async def account_info(request: web.Request, account: str, params: dict[str, str]) -> web.Response:
    v = venue_of(request)
    omit_zero = params.get("omitZeroBalances", "false").lower() == "true"
    balances = [{"asset": a, "free": fmt(f), "locked": fmt(lk)} for a, (f, lk) in v.store.balances(account).items()
                if not (omit_zero and f == 0 and lk == 0)]
    taker, maker = v.matcher.fees[account]
    return web.json_response({
        "makerCommission": int(maker * 10000), "takerCommission": int(taker * 10000), "buyerCommission": 0,
        "sellerCommission": 0, "commissionRates": {"maker": fmt(maker), "taker": fmt(taker), "buyer": fmt(Decimal(0)),
                                                   "seller": fmt(Decimal(0))},
        "canTrade": True, "canWithdraw": False, "canDeposit": False, "brokered": False,
        "requireSelfTradePrevention": False, "preventSor": False, "updateTime": v.now_ms(), "accountType": "SPOT",
        "balances": balances, "permissions": ["SPOT"], "uid": abs(hash(account)) % 10**9,
    })


@signed
async def new_order(request: web.Request, account: str, params: dict[str, str]) -> web.Response:
    v = venue_of(request)
    check_symbol(v, params)
    resp_type = params.get("newOrderRespType") or "FULL"  # Binance's default for LIMIT and MARKET
    if resp_type not in ("ACK", "RESULT", "FULL"):
        raise VenueError(-1100, "Illegal characters found in parameter 'newOrderRespType'.")
    if v.faults.take(("insufficient_balance",), request.method, request.path):
        raise VenueError(-2010, "Account has insufficient balance for requested action.")
    order, fills = v.matcher.place(account, params, v.now_ms())
    return web.json_response(new_order_json(order, fills, resp_type))


def find_order(v: Venue, account: str, params: dict[str, str], client_key: str) -> Order | None:
    symbol = check_symbol(v, params)
    assert symbol is not None
    oid = int_param(params, "orderId")
    cid = params.get(client_key) or None
    if oid is None and cid is None:
        raise VenueError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
    o = v.store.order(account, symbol, order_id=oid, client_order_id=cid)
    if o is not None and oid is not None and cid is not None and o.client_order_id != cid:
        return None
    return o


@signed
async def get_order(request: web.Request, account: str, params: dict[str, str]) -> web.Response:
    v = venue_of(request)
    o = find_order(v, account, params, "origClientOrderId")
    if o is None:
        raise VenueError(-2013, "Order does not exist.")
    return web.json_response(order_json(o))


@signed
async def cancel_order(request: web.Request, account: str, params: dict[str, str]) -> web.Response:
    v = venue_of(request)
    o = find_order(v, account, params, "origClientOrderId")
    if o is None:
        raise VenueError(-2011, "Unknown order sent.")
    done = v.matcher.cancel(account, o, v.now_ms())
    out = order_json(done)
    out["origClientOrderId"] = done.client_order_id
    out["clientOrderId"] = params.get("newClientOrderId") or f"cancel-{done.order_id}"
    out["transactTime"] = done.update_time
    return web.json_response(out)


@signed
async def open_orders(request: web.Request, account: str, params: dict[str, str]) -> web.Response:
    v = venue_of(request)
    symbol = check_symbol(v, params, required=False)
    return web.json_response([order_json(o) for o in v.store.open_orders(account, symbol)])


@signed
async def cancel_open_orders(request: web.Request, account: str, params: dict[str, str]) -> web.Response:
    v = venue_of(request)
    symbol = check_symbol(v, params)
    out = []
    for o in v.store.open_orders(account, symbol):
        done = v.matcher.cancel(account, o, v.now_ms())
        j = order_json(done)
        j["origClientOrderId"] = done.client_order_id
        out.append(j)
    if not out:
        raise VenueError(-2011, "Unknown order sent.")
    return web.json_response(out)


def _limit(params: dict[str, str]) -> int:
    limit = int_param(params, "limit") or 500
    if not 1 <= limit <= 1000:
        raise VenueError(-1100, "Illegal characters found in parameter 'limit'; legal range is '1-1000'.")
    return limit


@signed
async def all_orders(request: web.Request, account: str, params: dict[str, str]) -> web.Response:
    v = venue_of(request)
    symbol = check_symbol(v, params)
    rows = v.store.orders(account, symbol, int_param(params, "orderId"), int_param(params, "startTime"),
                          int_param(params, "endTime"), _limit(params))
    return web.json_response([order_json(o) for o in rows])


@signed
async def my_trades(request: web.Request, account: str, params: dict[str, str]) -> web.Response:
    v = venue_of(request)
    symbol = check_symbol(v, params)
    assert symbol is not None
    rows = v.store.trades(account, symbol, int_param(params, "orderId"), int_param(params, "fromId"),
                          int_param(params, "startTime"), int_param(params, "endTime"), _limit(params))
    return web.json_response([trade_json(f) for f in rows])


@signed
async def capital_config(request: web.Request, account: str, params: dict[str, str]) -> web.Response:
    """/sapi/v1/capital/config/getall: ccxt's fetchCurrencies during load_markets (when keys are set)."""
    v = venue_of(request)
    bal = v.store.balances(account)
    coins = []
    for asset in sorted({v.rules.base, v.rules.quote, *bal}):
        free, locked = bal.get(asset, (Decimal(0), Decimal(0)))
        coins.append({"coin": asset, "name": asset, "free": fmt(free), "locked": fmt(locked), "freeze": "0",
                      "withdrawing": "0", "ipoing": "0", "ipoable": "0", "storage": "0", "isLegalMoney": False,
                      "trading": True, "depositAllEnable": False, "withdrawAllEnable": False, "networkList": []})
    return web.json_response(coins)


@signed
async def empty_list(request: web.Request, account: str, params: dict[str, str]) -> web.Response:
    """Margin pair lists: this venue has no margin trading."""
    return web.json_response([])


async def no_symbols(request: web.Request) -> web.Response:
    """USDⓈ-M / COIN-M exchangeInfo: this venue lists no futures (ccxt asks while loading markets)."""
    return web.json_response({"timezone": "UTC", "serverTime": venue_of(request).now_ms(), "rateLimits": [],
                              "exchangeFilters": [], "assets": [], "symbols": []})


async def system_status(request: web.Request) -> web.Response:
    return web.json_response({"status": 0, "msg": "normal"})


# -- middleware: request log, faults, rate limit, errors ------------------------------------------
def _weight(request: web.Request) -> int:
    if request.path == "/api/v3/depth":
        try:
            return depth_weight(int(request.query.get("limit", "100")))
        except ValueError:
            return 5
    return WEIGHTS.get((request.method, request.path), 1)


def _rate_limited(status: int, v: Venue) -> web.Response:
    now = v.now_ms()
    if status == 418:
        until = max(v.limiter.banned_until, now + 60_000)
        body = {"code": -1003, "msg": f"Way too much request weight used; IP banned until {until}. "
                                      "Please use WebSocket Streams for live updates to avoid bans."}
    else:
        body = {"code": -1003, "msg": f"Too much request weight used; current limit is {v.limiter.limit} request "
                                      "weight per 1 MINUTE. Please use WebSocket Streams for live updates to "
                                      "avoid polling the API."}
    retry = max(1, (60_000 - now % 60_000) // 1000)
    return web.json_response(body, status=status, headers={"Retry-After": str(retry)})


@web.middleware
async def venue_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    v = venue_of(request)
    if request.path.startswith("/admin/"):
        return await handler(request)
    entry: dict[str, Any] = {"method": request.method, "path": request.path, "status": 0}
    v.requests.append(entry)
    resp = await _serve(v, request, handler)
    entry["status"] = resp.status
    return resp


async def _serve(v: Venue, request: web.Request, handler: Handler) -> web.StreamResponse:
    m, path = request.method, request.path
    lat = v.faults.take(("latency",), m, path)
    if lat is not None:
        await asyncio.sleep(lat.delay_ms / 1000)
    if v.faults.take(("maintenance",), m, path):
        return web.json_response({"code": -1016, "msg": "System is under maintenance."}, status=503)
    rl = v.faults.take(("rate_limit",), m, path)
    if rl is not None:
        return _rate_limited(rl.status or 429, v)
    refused = v.limiter.charge(_weight(request), v.now_ms())
    if refused is not None:
        return _rate_limited(refused, v)
    http = v.faults.take(("http_error",), m, path)
    if http is not None and not http.commit:
        return web.Response(status=http.status or 502, text="<html><body><h1>Bad Gateway</h1></body></html>",
                            content_type="text/html")
    v.matcher.fill_resting(v.now_ms())  # the book moved on since the last request: so did resting orders
    try:
        resp = await handler(request)
    except VenueError as e:
        resp = error(e)
    headers = {"X-MBX-USED-WEIGHT-1M": str(v.limiter.used)}
    if http is not None:  # committed: the outcome is unknown to the client
        return web.json_response({"code": -1007, "msg": "Timeout waiting for response from backend server. "
                                  "Send status unknown; execution status unknown."},
                                 status=http.status or 503, headers=headers)
    if v.faults.take(("drop_response",), m, path) is not None:
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError  # nothing more is written: the client sees the connection reset
    resp.headers.update(headers)
    return resp


# -- app and entry point ----------------------------------------------------------------------
def make_app(venue: Venue) -> web.Application:
    app = web.Application(middlewares=[venue_middleware])
    app["venue"] = venue
    r = app.router
    r.add_get("/api/v3/ping", ping)
    r.add_get("/api/v3/time", server_time)
    r.add_get("/api/v3/exchangeInfo", exchange_info)
    r.add_get("/api/v3/depth", depth)
    r.add_get("/api/v3/ticker/bookTicker", book_ticker)
    r.add_get("/api/v3/account", account_info)
    r.add_post("/api/v3/order", new_order)
    r.add_get("/api/v3/order", get_order)
    r.add_delete("/api/v3/order", cancel_order)
    r.add_get("/api/v3/openOrders", open_orders)
    r.add_delete("/api/v3/openOrders", cancel_open_orders)
    r.add_get("/api/v3/allOrders", all_orders)
    r.add_get("/api/v3/myTrades", my_trades)
    r.add_get("/sapi/v1/capital/config/getall", capital_config)
    r.add_get("/sapi/v1/margin/allPairs", empty_list)
    r.add_get("/sapi/v1/margin/isolated/allPairs", empty_list)
    r.add_get("/sapi/v1/system/status", system_status)
    r.add_get("/fapi/v1/exchangeInfo", no_symbols)
    r.add_get("/dapi/v1/exchangeInfo", no_symbols)
    add_admin_routes(app)
    return app


def load_config(path: Path) -> dict[str, Any]:
    try:
        cfg = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"config file {path} is not JSON: {e}") from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("accounts"), list) or not cfg["accounts"]:
        raise ConfigError(f"config file {path} needs a non-empty 'accounts' list")
    for i, acc in enumerate(cfg["accounts"]):
        for k in ("name", "api_key", "secret"):
            if not isinstance(acc, dict) or not isinstance(acc.get(k), str) or not acc[k]:
                raise ConfigError(f"config file {path}: accounts[{i}] needs a non-empty string {k!r}")
        if not API_KEY.match(acc["api_key"]):
            raise ConfigError(f"config file {path}: accounts[{i}].api_key must be 1-128 letters or digits")
        try:
            for v in acc.get("balances", {}).values():
                Decimal(str(v))
        except (InvalidOperation, AttributeError):
            raise ConfigError(f"config file {path}: accounts[{i}].balances must map assets to amounts") from None
    return cfg


async def serve(venue: Venue, port: int) -> None:
    runner = web.AppRunner(make_app(venue), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"READY http://127.0.0.1:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        venue.store.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.exchange.binance_rest",
                                 description="A local Binance spot REST venue on 127.0.0.1 (tests only).")
    ap.add_argument("--config", type=Path, required=True, help="JSON: accounts (name, api_key, secret, balances)")
    ap.add_argument("--state-dir", type=Path, required=True, help="directory of the durable state (SQLite)")
    ap.add_argument("--capture", type=Path, action="append", required=True,
                    help="Binance spot capture file(s) of one stream, in order (repeat the option)")
    ap.add_argument("--start-line", type=int, default=0, help="hold the book after this many capture lines")
    ap.add_argument("--pace", type=float, default=0.0, help="replay speed vs real time (0: hold the book)")
    ap.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free port)")
    args = ap.parse_args(argv)
    try:
        cfg = load_config(args.config)
        market = CaptureMarket(args.capture, args.start_line, args.pace)
        venue = Venue(cfg, args.state_dir, market)
    except (ConfigError, CaptureError, OSError, TypeError, KeyError, InvalidOperation) as e:
        print(f"local venue: {e}", file=sys.stderr)
        return CONFIG_ERROR
    try:
        asyncio.run(serve(venue, args.port))
    except KeyboardInterrupt:
        pass
    except OSError as e:
        print(f"local venue: cannot listen on 127.0.0.1:{args.port}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
