"""Reference side of the benchmark: captured Binance depth frames replayed through ccxt.pro's own code.

:func:`ccxt_pro_replay` feeds raw frames from a capture into the order-book code that
``ccxt.pro.binance`` / ``binanceusdm`` / ``binancecoinm`` actually run, fully offline:

1. The exchange instance gets one market injected with ``set_markets`` (no ``load_markets``).
2. ccxt's real ``watch_order_book`` runs. Only ``watch_multiple`` (the socket layer) is
   stubbed, to capture the url, request id and subscription that ccxt builds.
3. The subscription confirmation ``{"result": null, "id": N}`` goes through
   ``exchange.handle_message``. ccxt then creates ``orderbooks[symbol]`` itself
   (``handle_order_book_subscription``) and asks ``spawn`` to run ``fetch_order_book_snapshot``.
   ``spawn`` is stubbed so that coroutine waits for the snapshot line of the capture.
4. Depth frames before the snapshot line go through ``handle_message``, so ccxt buffers them in
   ``orderbook.cache``.
5. At the snapshot line, the spawned ``fetch_order_book_snapshot`` coroutine runs for real. The
   only stub is the HTTP call ``exchange.fetch``, which returns the captured REST body. So ccxt's
   ``fetch_order_book`` parses it, and ccxt resets the book and replays its cached deltas by its
   own rules.
6. Each later depth frame is timed with ``time.perf_counter_ns()`` around what ccxt's websocket
   client does with an inbound text frame: ``json_parser.loads`` (the parser ccxt's ws client
   picked: orjson when importable, else stdlib json) plus ``exchange.handle_message(client, msg)``.
   Routing, market lookup, nonce checks and delta application all happen inside that call.
   The timing leaves out decoding bytes to str, which aiohttp does before ccxt sees the frame.

bookTicker and trade frames are skipped before any ccxt call. The client object is a minimal
stand-in for ccxt's ws ``Client``: ``url``, ``futures``, ``subscriptions``, ``rejections``,
``resolve`` and ``reject``. ccxt reports a nonce gap by calling ``client.reject(ChecksumError)``
and dropping ``orderbooks[symbol]``. Every reject, plus any exception that escapes
``handle_message``, counts in :attr:`CcxtResult.errors`. After that, ccxt would need a new REST
snapshot, which a capture cannot provide, so later frames are still timed but ccxt ignores them.

ccxt is a dev dependency: check :func:`available` first. The plumbing this shares with
:mod:`.ccxt_venues` (availability, market dicts, capture reading, driving a coroutine) lives in
:mod:`.ccxt_common` and is re-exported here under its historical names.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cryptoarb.bench.ccxt_common import (
    VENUES,
    available,
    binance_market,
    ccxt_version,
    read_capture,
)
from cryptoarb.bench.ccxt_common import drive as _drive
from cryptoarb.bench.ccxt_common import ws_json_parser as _ws_json_parser

__all__ = [
    "VENUES",
    "CcxtResult",
    "available",
    "binance_market",
    "ccxt_pro_replay",
    "ccxt_version",
    "read_capture",
]


@dataclass
class CcxtResult:
    venue: str
    symbol: str
    #: one entry per depth frame handled after the snapshot was in: parse + handle_message, ns
    latencies_ns: list[int] = field(default_factory=list)
    #: depth frames fed to ccxt, buffered ones included
    messages: int = 0
    #: depth frames ccxt cached while waiting for its snapshot
    buffered: int = 0
    #: cached frames ccxt applied when the snapshot arrived
    applied_from_cache: int = 0
    #: frames after the snapshot that ccxt applied to the book
    applied_live: int = 0
    #: top 5 levels at the end, best first, as [price, qty] floats
    bids: list[list[float]] = field(default_factory=list)
    asks: list[list[float]] = field(default_factory=list)
    #: levels held in ccxt's book at the end. ccxt trims to ``limit`` only when a watcher
    #: resolves, and this replay has none, so the book grows.
    bid_levels: int = 0
    ask_levels: int = 0
    #: errors ccxt reported (client.reject) or raised out of handle_message
    errors: int = 0
    error_messages: list[str] = field(default_factory=list)
    #: lastUpdateId of the snapshot, and ccxt's book nonce at the end (None if ccxt dropped the book)
    snapshot_nonce: int | None = None
    final_nonce: int | None = None
    #: REST url ccxt's fetch_order_book built for the snapshot (answered from the capture)
    snapshot_url: str | None = None
    #: websocket url ccxt would have subscribed to (decides spot vs futures routing in ccxt)
    ws_url: str = ""
    #: JSON parser ccxt's ws client uses ("orjson" or "json")
    parser: str = ""
    ccxt_version: str = ""

    @property
    def applied(self) -> int:
        return self.applied_from_cache + self.applied_live


class _ReplayClient:
    """Stands in for ``ccxt.async_support.base.ws.client.Client`` with only what the order-book
    handlers use. ``resolve`` costs the same as the real one does when no watcher is waiting: a
    lookup in ``futures``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.futures: dict[str, Any] = {}
        self.subscriptions: dict[str, Any] = {}
        self.rejections: dict[str, Any] = {}
        self.rejected: list[BaseException] = []

    def resolve(self, result: Any, message_hash: str) -> Any:
        if message_hash in self.futures:
            del self.futures[message_hash]
        return result

    def reject(self, result: Any, message_hash: str | None = None) -> Any:
        self.rejected.append(result)
        if message_hash is not None:
            self.rejections[message_hash] = result
        return result


_SNAPSHOT = 1
_DEPTH = 2


def _classify(raw: bytes) -> int:
    """_DEPTH for a depth diff frame, _SNAPSHOT for the REST snapshot line, 0 for anything else."""
    if raw.startswith(b'{"stream":"'):
        end = raw.find(b'"', 11)
        return _DEPTH if b"@depth" in raw[11:end] else 0
    head = raw[:64]
    if b'"lastUpdateId"' in head:
        return _SNAPSHOT
    if b'"depthUpdate"' in head:
        return _DEPTH
    return 0


def _top(side: Any, n: int = 5) -> list[list[float]]:
    return [[float(level[0]), float(level[1])] for level in side[:n]]


def _make_exchange(venue: str, symbol: str, checksum: bool) -> Any:
    import ccxt.pro as ccxtpro

    if venue not in VENUES:
        raise ValueError(f"unsupported venue {venue!r}: expected one of {sorted(VENUES)}")
    exchange = getattr(ccxtpro, venue)({"enableRateLimit": False})
    watch_options = exchange.options.get("watchOrderBook")
    exchange.options["watchOrderBook"] = {**(watch_options or {}), "checksum": checksum}
    exchange.set_markets({symbol: binance_market(venue, symbol)})
    return exchange


def _subscribe(exchange: Any, symbol: str, limit: int | None) -> tuple[_ReplayClient, list[Any]]:
    """Run ccxt's watch_order_book up to the socket, then confirm the subscription the way
    Binance does. Returns the client and the ``(method, args)`` ccxt asked to spawn."""
    captured: dict[str, Any] = {}
    spawned: list[Any] = []

    async def fake_watch_multiple(
        url: str,
        message_hashes: list[str],
        message: Any = None,
        subscribe_hashes: list[str] | None = None,
        subscription: Any = None,
    ) -> Any:
        captured.update(url=url, message=message, subscribe_hashes=subscribe_hashes or [], sub=subscription)
        return exchange.order_book({})

    def fake_spawn(method: Any, *args: Any) -> None:
        spawned.append((method, args))

    exchange.watch_multiple = fake_watch_multiple
    exchange.spawn = fake_spawn
    try:
        _drive(exchange.watch_order_book(symbol, limit))
    finally:
        del exchange.watch_multiple
    client = _ReplayClient(captured["url"])
    subscription = captured["sub"]
    for subscribe_hash in captured["subscribe_hashes"]:
        client.subscriptions[subscribe_hash] = subscription
    # Binance answers {"method":"SUBSCRIBE","id":N} with {"result":null,"id":N}
    request_id = captured["message"]["id"] if captured["message"] else subscription["id"]
    exchange.handle_message(client, {"result": None, "id": request_id})
    if symbol not in exchange.orderbooks or not spawned:
        raise RuntimeError(
            f"ccxt {ccxt_version()} did not set up the {symbol} book on subscription confirmation "
            "(its watch_order_book flow changed)"
        )
    return client, spawned


def _deliver_snapshot(exchange: Any, client: _ReplayClient, spawned: list[Any], raw: bytes, result: CcxtResult) -> None:
    """Answer ccxt's pending snapshot request with the captured REST body and let ccxt's
    fetch_order_book_snapshot run: parse, reset the book, replay the cached deltas."""
    response = json.loads(raw)
    result.snapshot_nonce = response.get("lastUpdateId")
    requested: list[str] = []

    async def fake_fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        requested.append(url)
        return response

    original_apply = exchange.handle_order_book_message
    applied = 0

    def counting_apply(client_: Any, message: Any, orderbook: Any) -> Any:
        nonlocal applied
        applied += 1
        return original_apply(client_, message, orderbook)

    exchange.fetch = fake_fetch
    exchange.handle_order_book_message = counting_apply
    try:
        while spawned:
            method, args = spawned.pop(0)
            _drive(method(*args))
    finally:
        del exchange.fetch
        del exchange.handle_order_book_message
    result.applied_from_cache = applied
    result.snapshot_url = requested[0] if requested else None


def ccxt_pro_replay(
    venue: str,
    lines: Iterable[tuple[int, bytes]],
    symbol: str,
    *,
    limit: int | None = None,
    checksum: bool = True,
) -> CcxtResult:
    """Replay a Binance capture through ccxt.pro's order-book code and time each depth frame.

    ``venue``: ``binance``, ``binanceusdm`` or ``binancecoinm``. ``lines``: ``(local_ns, raw_json)``
    in capture order (see :func:`read_capture`). ``symbol``: ccxt unified symbol. ``limit`` is
    passed to ``watch_order_book`` as is. With ``None``, ccxt asks for 1000 levels in the snapshot.
    The captured snapshot is used whatever its size. ``checksum`` sets
    ``options["watchOrderBook"]["checksum"]``. That is ccxt's default of True, which turns a nonce
    gap into a ChecksumError and drops the book. With False, ccxt ignores the gapped frame
    without an error. Its nonce then never chains again, so it ignores every later frame too and
    the book stays frozen.
    """
    exchange = _make_exchange(venue, symbol, checksum)
    loads, parser_name = _ws_json_parser()
    client, spawned = _subscribe(exchange, symbol, limit)
    result = CcxtResult(
        venue=venue,
        symbol=symbol,
        ws_url=client.url,
        parser=parser_name,
        ccxt_version=ccxt_version() or "",
    )
    handle = exchange.handle_message
    orderbooks: dict[str, Any] = exchange.orderbooks
    latencies = result.latencies_ns
    escaped: list[BaseException] = []
    perf = time.perf_counter_ns
    snapshot_in = False
    messages = 0
    applied_live = 0

    for _local_ns, raw in lines:
        kind = _classify(raw)
        if kind == 0:
            continue
        if kind == _SNAPSHOT:
            if not snapshot_in:
                _deliver_snapshot(exchange, client, spawned, raw, result)
                snapshot_in = True
            continue
        text = raw.decode()  # aiohttp hands ccxt str frames, so this decode is not ccxt's work
        messages += 1
        if not snapshot_in:
            result.buffered += 1
            try:
                handle(client, loads(text))
            except Exception as exc:
                escaped.append(exc)
            continue
        book: Any = orderbooks.get(symbol)
        before_nonce = book["nonce"] if book is not None else None
        before_dt = book["datetime"] if book is not None else None
        t0 = perf()
        try:
            handle(client, loads(text))
        except Exception as exc:
            escaped.append(exc)
        t1 = perf()
        latencies.append(t1 - t0)
        # applied = ccxt's handle_order_book_message ran. It always sets nonce=u and a fresh datetime.
        after = orderbooks.get(symbol)
        if (
            after is not None
            and after is book
            and (after["nonce"] != before_nonce or after["datetime"] is not before_dt)
        ):
            applied_live += 1

    result.messages = messages
    result.applied_live = applied_live
    problems: list[BaseException] = [*client.rejected, *escaped]
    result.errors = len(problems)
    result.error_messages = [f"{type(e).__name__}: {e}" for e in problems]
    book = orderbooks.get(symbol)
    if book is not None:
        result.final_nonce = book.get("nonce")
        result.bids = _top(book["bids"])
        result.asks = _top(book["asks"])
        result.bid_levels = len(book["bids"])
        result.ask_levels = len(book["asks"])
    return result
