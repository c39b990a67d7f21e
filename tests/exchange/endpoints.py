"""The local venue's Binance endpoints: public market data, the signed account and order
calls, and the few ``/sapi``, ``/fapi``, ``/dapi`` answers ccxt asks for while loading markets.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from aiohttp import web

from tests.exchange.matching import VenueError, fmt
from tests.exchange.protocol import (
    check_symbol,
    int_param,
    new_order_json,
    order_json,
    params_of,
    signed,
    symbol_json,
    trade_json,
    venue_of,
)

if TYPE_CHECKING:
    from tests.exchange.binance_rest import Venue
    from tests.exchange.store import Order


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
        "exchangeFilters": [], "symbols": [symbol_json(m.rules) for m in v.matchers.values()],
    })


async def depth(request: web.Request) -> web.Response:
    v = venue_of(request)
    params, _, _ = await params_of(request)
    sym = check_symbol(v, params)
    assert sym is not None
    limit = int_param(params, "limit") or 100
    if not 1 <= limit <= 5000:
        raise VenueError(-1100, "Illegal characters found in parameter 'limit'; legal range is '1-5000'.")
    market = v.matchers[sym].market
    bids, asks = market.depth(limit)
    return web.json_response({"lastUpdateId": market.book.update_id,
                              "bids": [[fmt(p), fmt(q)] for p, q in bids],
                              "asks": [[fmt(p), fmt(q)] for p, q in asks]})


async def book_ticker(request: web.Request) -> web.Response:
    v = venue_of(request)
    params, _, _ = await params_of(request)
    sym = check_symbol(v, params)
    assert sym is not None
    bids, asks = v.matchers[sym].market.depth(1)
    zero = (Decimal(0), Decimal(0))
    (bp, bq), (ap, aq) = (bids or [zero])[0], (asks or [zero])[0]
    return web.json_response({"symbol": sym, "bidPrice": fmt(bp), "bidQty": fmt(bq),
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
    sym = check_symbol(v, params)
    assert sym is not None
    resp_type = params.get("newOrderRespType") or "FULL"  # Binance's default for LIMIT and MARKET
    if resp_type not in ("ACK", "RESULT", "FULL"):
        raise VenueError(-1100, "Illegal characters found in parameter 'newOrderRespType'.")
    if v.faults.take(("insufficient_balance",), request.method, request.path):
        raise VenueError(-2010, "Account has insufficient balance for requested action.")
    order, fills = v.matchers[sym].place(account, params, v.now_ms())
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
    done = v.matchers[o.symbol].cancel(account, o, v.now_ms())
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
        done = v.matchers[o.symbol].cancel(account, o, v.now_ms())
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
    listed = {a for m in v.matchers.values() for a in (m.rules.base, m.rules.quote)}
    for asset in sorted({*listed, *bal}):
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
