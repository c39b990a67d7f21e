"""One timed offline replay of a capture through one ccxt.pro exchange instance (see the package doc)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlparse

from cryptoarb.bench.ccxt_common import drive, ws_json_parser
from cryptoarb.bench.ccxt_venues.common import Markets, Spec, _Client
from cryptoarb.bench.venues import KINDS, Capture, summarize
from cryptoarb.replay.cryptofeed import HTTP
from cryptoarb.venues.base import OTHER

#: a frame of the capture: (record kind, url, local_ns, raw payload)
Frame = tuple[str, str, int, bytes]


def _rest_market_id(url: str) -> str:
    parts = urlparse(url)
    query = parse_qs(parts.query)
    for key in ("symbol", "currency_pair", "instId", "pair", "product_id", "market"):
        if key in query:
            return query[key][0]
    return parts.path.rstrip("/").rsplit("/", 1)[-1]


def _gunzip() -> Callable[[bytes], str]:
    from ccxt.async_support.base.ws.functions import gunzip

    return gunzip  # type: ignore[no-any-return]


def _is_json(text: Any) -> bool:  # ccxt.async_support.base.ws.functions.is_json_encoded_object
    return isinstance(text, str) and len(text) >= 2 and (text[0] == "{" or text[0] == "[")


class _Run:
    """One offline replay of a capture through one ccxt.pro exchange instance."""

    def __init__(self, spec: Spec, cap: Capture, markets: Markets) -> None:
        import ccxt.pro as ccxtpro

        self.spec = spec
        ex = getattr(ccxtpro, spec.ccxt_id)({"enableRateLimit": False})
        if spec.options:
            ex.options["watchOrderBook"] = {**(ex.options.get("watchOrderBook") or {}), **spec.options}
        ex.set_markets(markets)
        self.ex = ex
        self.markets = markets
        self.client = _Client(cap.ws_url)
        self.spawned: list[tuple[Any, tuple[Any, ...]]] = []
        self.spawned_names: dict[str, int] = {}
        self.bodies: dict[str, Any] = {}
        self.loads_run = 0
        self.load_errors: list[str] = []
        ex.spawn = self._spawn
        ex.delay = lambda _timeout, method, *args: self._spawn(method, *args)
        if spec.prepare is not None:
            spec.prepare(ex, self.client, markets)

    def _spawn(self, method: Any, *args: Any) -> None:
        name = getattr(method, "__name__", str(method))
        self.spawned_names[name] = self.spawned_names.get(name, 0) + 1
        self.spawned.append((method, args))

    def rest(self, url: str, raw: bytes, local_ns: int) -> None:
        """A captured REST response: keep it for the market's pending (or next) load_order_book."""
        mid = _rest_market_id(url)
        found = self.ex.markets_by_id.get(mid) if self.ex.markets_by_id else None
        if not found:
            return
        body = json.loads(raw)
        if self.spec.rest_fixup is not None:
            body = self.spec.rest_fixup(body, local_ns)
        self.bodies[found[0]["symbol"]] = body

    @staticmethod
    def _loader_symbol(method: Any, args: tuple[Any, ...]) -> str | None:
        """The symbol a spawned REST-snapshot loader is for; None for any other spawned call."""
        name = getattr(method, "__name__", "")
        if name == "load_order_book" and len(args) >= 3:  # (client, messageHash, symbol, limit, params)
            return str(args[2])
        if name == "fetch_order_book_snapshot" and len(args) >= 3:  # binance: (client, message, subscription)
            return str(args[2].get("symbol"))
        return None

    def run_loads(self) -> None:
        """Run every spawned snapshot loader whose market's REST body has arrived."""
        if not self.spawned:
            return
        keep = []
        for method, args in self.spawned:
            symbol = self._loader_symbol(method, args)
            if symbol is None:
                continue
            if symbol not in self.bodies:
                keep.append((method, args))
                continue
            # one captured response answers one request: a retry after a failed sync would need a
            # fresh snapshot, which the capture does not have
            body = self.bodies.pop(symbol)

            async def fake_fetch(url: str, method: str = "GET", headers: Any = None, body_: Any = None,
                                 _body: Any = body) -> Any:
                return _body

            self.ex.fetch = fake_fetch
            try:
                drive(method(*args))
                self.loads_run += 1
            except Exception as e:
                self.load_errors.append(f"{method.__name__} {symbol}: {type(e).__name__}: {e}")
            finally:
                del self.ex.fetch
        self.spawned = keep

    def books(self) -> tuple[int, int]:
        """(books ccxt holds with levels on both sides and, for REST venues, a snapshot nonce; total)"""
        ok = 0
        for m in self.markets:
            book = self.ex.orderbooks.get(m["symbol"])
            if book is None:
                continue
            if not (len(book["bids"]) and len(book["asks"])):
                continue
            if self.spec.rest and book.get("nonce") is None:
                continue
            ok += 1
        return ok, len(self.markets)


def _ccxt_once(spec: Spec, cap: Capture, frames: list[Frame], markets: Markets) -> dict[str, Any]:
    run = _Run(spec, cap, markets)
    loads, _ = ws_json_parser()
    gunzip = _gunzip()
    handle = run.ex.handle_message
    client = run.client
    classify = spec.classifier()
    perf = time.perf_counter_ns
    by_kind: dict[int, list[int]] = {k: [] for k in KINDS}
    other = 0
    escaped: list[BaseException] = []
    rest = spec.rest
    for kind, url, ts, raw in frames:
        if kind == HTTP:
            if rest:
                run.rest(url, raw, ts)
                run.run_loads()
            continue
        binary = raw[:2] == b"\x1f\x8b"
        data: Any = raw if binary else raw.decode()  # aiohttp hands ccxt str for text frames
        t0 = perf()
        try:
            if binary:
                data = gunzip(data)
            msg = loads(data) if _is_json(data) else data
            handle(client, msg)
        except Exception as e:
            t1 = perf()
            escaped.append(e)
            msg = None
        else:
            t1 = perf()
        if rest and run.spawned:
            run.run_loads()
        k = classify(msg) if msg is not None else OTHER
        lat = by_kind.get(k)
        if lat is None:
            other += 1
        else:
            lat.append(t1 - t0)
    problems: list[BaseException] = [*client.rejected, *escaped]
    books_ok, books_total = run.books()
    out: dict[str, Any] = {name: summarize(by_kind[k]) for k, name in KINDS.items()}
    out.update(
        other=other,
        books_ok=books_ok,
        books_total=books_total,
        errors=len(problems) + len(run.load_errors),
        rejected=len(client.rejected),
        exceptions=len(escaped),
        snapshot_loads=run.loads_run,
        checksum_spawns=sum(n for name, n in run.spawned_names.items() if "check" in name.lower()),
    )
    messages = [f"{type(e).__name__}: {e}" for e in problems] + run.load_errors
    out["first_errors"] = _first_distinct(messages, 3)
    return out


def _first_distinct(messages: list[str], n: int) -> list[str]:
    out: list[str] = []
    for m in messages:
        m = re.sub(r"\s+", " ", m)[:200]
        if m not in out:
            out.append(m)
        if len(out) == n:
            break
    return out
