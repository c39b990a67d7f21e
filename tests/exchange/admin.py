"""The local venue's admin endpoints (tests drive the venue with these; no exchange has them).

- ``POST /admin/fault`` (JSON, see ``faults.py``) arms a fault; ``GET`` lists; ``DELETE`` clears all.
- ``GET /admin/book``; ``POST /admin/book`` ``{"seek_line": N}`` | ``{"advance_lines": N}`` |
  ``{"pace": X}``: where the capture's book stands, and moving it.
- ``POST /admin/clock`` ``{"offset_ms": N}``: the venue's clock runs N ms ahead of this machine's.
- ``GET /admin/requests``: every non-admin request seen (method, path, status), oldest first.
- ``GET /admin/orders?account=NAME`` and ``GET /admin/balances?account=NAME``: the venue's own
  durable state, in Binance's shapes, to compare a client's journal and ledger with.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.exchange.faults import FaultError
from tests.exchange.market import CaptureError
from tests.exchange.matching import fmt
from tests.exchange.protocol import order_json

if TYPE_CHECKING:
    from tests.exchange.binance_rest import Venue


def _venue(request: web.Request) -> Venue:
    v: Venue = request.app["venue"]
    return v


def _bad(msg: str) -> web.Response:
    return web.json_response({"error": msg}, status=400)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except json.JSONDecodeError:
        raise web.HTTPBadRequest(text='{"error": "the body is not JSON"}', content_type="application/json") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text='{"error": "the body must be a JSON object"}', content_type="application/json")
    return body


async def arm_fault(request: web.Request) -> web.Response:
    try:
        f = _venue(request).faults.arm(await _body(request))
    except FaultError as e:
        return _bad(str(e))
    return web.json_response(f.as_dict())


async def list_faults(request: web.Request) -> web.Response:
    return web.json_response([f.as_dict() for f in _venue(request).faults.faults])


async def clear_faults(request: web.Request) -> web.Response:
    return web.json_response({"cleared": _venue(request).faults.clear()})


async def get_book(request: web.Request) -> web.Response:
    """The captured book's position, or ``?symbol=ETHBTC``'s (a synthetic one says so)."""
    v = _venue(request)
    for mt in v.matchers.values():
        mt.fill_resting(v.now_ms())
    sym = request.query.get("symbol") or v.rules.symbol
    if sym not in v.matchers:
        return _bad(f"unknown symbol {sym!r} (served: {', '.join(v.matchers)})")
    return web.json_response(v.matchers[sym].market.position())


async def move_book(request: web.Request) -> web.Response:
    v = _venue(request)
    body = await _body(request)
    try:
        if "seek_line" in body:
            v.market.seek(int(body["seek_line"]))
        if "advance_lines" in body:
            v.market.advance(int(body["advance_lines"]))
        if "pace" in body:
            v.market.set_pace(float(body["pace"]))
    except (CaptureError, ValueError, TypeError) as e:
        return _bad(str(e))
    for mt in v.matchers.values():
        mt.fill_resting(v.now_ms())
    return web.json_response(v.market.position())


async def set_clock(request: web.Request) -> web.Response:
    v = _venue(request)
    body = await _body(request)
    try:
        v.clock_offset_ms = int(body["offset_ms"])
    except (KeyError, ValueError, TypeError):
        return _bad("expected {\"offset_ms\": <integer>}")
    return web.json_response({"offset_ms": v.clock_offset_ms})


async def requests_seen(request: web.Request) -> web.Response:
    return web.json_response(_venue(request).requests)


def _account(request: web.Request) -> str | None:
    name = request.query.get("account", "")
    known = {n for n, _ in _venue(request).keys.values()}
    return name if name in known else None


async def orders(request: web.Request) -> web.Response:
    v = _venue(request)
    name = _account(request)
    if name is None:
        return _bad("unknown or missing ?account=")
    for mt in v.matchers.values():
        mt.fill_resting(v.now_ms())
    return web.json_response([order_json(o) for o in v.store.orders(name, limit=1_000_000, from_id=0)])


async def balances(request: web.Request) -> web.Response:
    v = _venue(request)
    name = _account(request)
    if name is None:
        return _bad("unknown or missing ?account=")
    return web.json_response({a: {"free": fmt(f), "locked": fmt(lk)} for a, (f, lk) in v.store.balances(name).items()})


def add_admin_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/admin/fault", arm_fault)
    r.add_get("/admin/fault", list_faults)
    r.add_delete("/admin/fault", clear_faults)
    r.add_get("/admin/book", get_book)
    r.add_post("/admin/book", move_book)
    r.add_post("/admin/clock", set_clock)
    r.add_get("/admin/requests", requests_seen)
    r.add_get("/admin/orders", orders)
    r.add_get("/admin/balances", balances)
