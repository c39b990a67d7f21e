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
import json
import signal
import sys
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.exchange import endpoints as ep
from tests.exchange.admin import add_admin_routes
from tests.exchange.faults import WEIGHTS, FaultBoard, WeightLimiter, depth_weight
from tests.exchange.market import CaptureError, CaptureMarket
from tests.exchange.matching import Matcher, SymbolRules, VenueError
from tests.exchange.protocol import API_KEY, Handler, error, venue_of
from tests.exchange.store import Store
from tests.exchange.stream import DepthStream
from tests.exchange.synthetic import ScaledMarket

CONFIG_ERROR = 2


class ConfigError(ValueError):
    """The venue's config file is unusable."""


class Venue:
    """Everything one server process holds: accounts, book, durable state, faults, clock."""

    def __init__(self, config: dict[str, Any], state_dir: Path, market: CaptureMarket) -> None:
        self.rules = SymbolRules(**{k: (Decimal(str(v)) if k not in ("symbol", "base", "quote") else v)
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
        #: every symbol served: the captured one, then the SYNTHETIC ones derived from it by scaling
        #: (``tests/exchange/synthetic.py``: made-up books, not market data; docs/local-venue.md)
        self.matchers: dict[str, Matcher] = {self.rules.symbol: self.matcher}
        for spec in config.get("synthetic", []):
            spec = dict(spec)
            scale = Decimal(str(spec.pop("price_scale")))
            qty_scale = Decimal(str(spec.pop("qty_scale")))
            rules = SymbolRules(**{k: (Decimal(str(v)) if k not in ("symbol", "base", "quote") else v)
                                   for k, v in spec.items()})
            sm = ScaledMarket(market, scale, qty_scale, rules.tick_size, rules.step_size)
            self.matchers[rules.symbol] = Matcher(self.store, sm, rules, fees, self.now_ms)  # type: ignore[arg-type]
        if len(self.matchers) > 1:  # the captured book's moves fill resting orders of every symbol
            movers = [m._moved for m in self.matchers.values()]
            market.on_move = lambda: [fn() for fn in movers] and None
        self.faults = FaultBoard()
        self.limiter = WeightLimiter(int(config.get("weight_limit_1m", 6000)))
        self.clock_offset_ms = 0
        self.requests: list[dict[str, Any]] = []  # every request seen (method, path, status), for tests

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.clock_offset_ms


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
    for mt in v.matchers.values():  # the book moved on since the last request: so did resting orders
        mt.fill_resting(v.now_ms())
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
    r.add_get("/api/v3/ping", ep.ping)
    r.add_get("/api/v3/time", ep.server_time)
    r.add_get("/api/v3/exchangeInfo", ep.exchange_info)
    r.add_get("/api/v3/depth", ep.depth)
    r.add_get("/api/v3/ticker/bookTicker", ep.book_ticker)
    r.add_get("/api/v3/account", ep.account_info)
    r.add_post("/api/v3/order", ep.new_order)
    r.add_get("/api/v3/order", ep.get_order)
    r.add_delete("/api/v3/order", ep.cancel_order)
    r.add_get("/api/v3/openOrders", ep.open_orders)
    r.add_delete("/api/v3/openOrders", ep.cancel_open_orders)
    r.add_get("/api/v3/allOrders", ep.all_orders)
    r.add_get("/api/v3/myTrades", ep.my_trades)
    r.add_get("/sapi/v1/capital/config/getall", ep.capital_config)
    r.add_get("/sapi/v1/margin/allPairs", ep.empty_list)
    r.add_get("/sapi/v1/margin/isolated/allPairs", ep.empty_list)
    r.add_get("/sapi/v1/system/status", ep.system_status)
    r.add_get("/fapi/v1/exchangeInfo", ep.no_symbols)
    r.add_get("/dapi/v1/exchangeInfo", ep.no_symbols)
    add_admin_routes(app)
    stream = DepthStream(venue)
    app["stream"] = stream
    r.add_get("/stream", stream.handle)
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
    symbol = cfg.get("symbol", {})
    fields = set(SymbolRules.__dataclass_fields__)
    if not isinstance(symbol, dict) or set(symbol) - fields:
        unknown = ", ".join(sorted(set(symbol) - fields)) if isinstance(symbol, dict) else "not an object"
        raise ConfigError(f"config file {path}: 'symbol' has unknown field(s) {unknown}; "
                          f"known: {', '.join(sorted(fields))}")
    synthetic = cfg.get("synthetic", [])
    need = {"symbol", "base", "quote", "price_scale", "qty_scale"}
    if not isinstance(synthetic, list):
        raise ConfigError(f"config file {path}: 'synthetic' must be a list of symbols")
    for i, spec in enumerate(synthetic):
        if not isinstance(spec, dict) or need - set(spec) or set(spec) - fields - need:
            raise ConfigError(f"config file {path}: synthetic[{i}] needs {', '.join(sorted(need))} "
                              f"(and may set {', '.join(sorted(fields - need))})")
    return cfg


async def serve(venue: Venue, port: int) -> None:
    app = make_app(venue)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"READY http://127.0.0.1:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    pacer = asyncio.ensure_future(app["stream"].pace(stop))
    try:
        await stop.wait()
    finally:
        await pacer
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
