"""``--symbols all``: the markets to follow, found in the venues' own ccxt metadata (issue #15).

One ``load_markets`` per venue, all venues at once. A market is kept when it is active (ccxt's
``active`` not False), of a kind asked for (``spot``; ``swap``: perpetuals only, no dated futures
or options), its quote in ``quotes`` (a linear swap also settles in it, ``BTC/USDT:USDT``; an
inverse swap is matched by its quote, ``BTC/USD:BTC`` under ``USD``), streamable by the venue
(the native handler's market category and ``check_instruments``, or any market for the ccxt.pro
fallback), and when it belongs to a comparison group that spans ``min_venues`` venues.

The groups are the detector's own (:func:`cryptoarb.detect.groups.auto_groups`, with the run's
``basis`` and ``quote_equivalents``): spot markets of one base/quote, and the basis group of
that base/quote with the perpetuals that compare like with like (linear swaps of the same quote;
inverse ones only with their quote, e.g. a USD spot market, or a declared equivalent). A swap
that no spot market of another venue matches is not kept: the detector would compare it with
nothing. ``max_books`` keeps the groups listed on most venues first (small machines).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from cryptoarb.core.instruments import Instrument, Kind
from cryptoarb.detect.groups import Group, auto_groups
from cryptoarb.live.markets import MarketError, amount_mode, from_ccxt_market
from cryptoarb.venues.catalog import Catalog
from cryptoarb.venues.registry import handler_class

DEFAULT_QUOTES = ("USDT", "USDC", "USD")
KINDS = ("spot", "swap")

#: native venues that stream one market category (one ccxt id per Binance API, spot-only
#: venues): anything else of theirs is not streamable here
STREAMED: dict[str, frozenset[Kind]] = {
    "binance": frozenset({Kind.SPOT}), "binanceus": frozenset({Kind.SPOT}),
    "binanceusdm": frozenset({Kind.LINEAR}), "binancecoinm": frozenset({Kind.INVERSE}),
    "kraken": frozenset({Kind.SPOT}), "krakenfutures": frozenset({Kind.LINEAR, Kind.INVERSE}),
    "bitstamp": frozenset({Kind.SPOT}), "gemini": frozenset({Kind.SPOT}),
    "coinbaseexchange": frozenset({Kind.SPOT}),
}
#: ccxt loads every market category of these venues unless told; only what is streamed is asked
#: for (Binance's spot id would otherwise also fetch the USDⓈ-M and COIN-M exchange info)
_LOAD_TYPES: dict[str, list[str]] = {"binance": ["spot"], "binanceus": ["spot"]}


@dataclass(frozen=True)
class DiscoveryRequest:
    """What ``--symbols all`` asks for (``--quote``, ``--kinds``, ``--min-venues``, ``--max-books``)."""

    quotes: tuple[str, ...] = DEFAULT_QUOTES
    kinds: tuple[str, ...] = KINDS
    min_venues: int = 2
    max_books: int | None = None
    #: the quotes were given (``--quote``): one no venue lists is an error; the default list is
    #: a net (Binance lists no USD market, Coinbase no USDT one)
    strict_quotes: bool = False


@dataclass
class Discovery:
    venues: list[str]
    listed: dict[str, int] = field(default_factory=dict)  # venue -> markets ccxt lists
    candidates: dict[str, int] = field(default_factory=dict)  # active, kind, quote, streamable
    kept: dict[str, list[Instrument]] = field(default_factory=dict)  # venue -> what the run follows
    groups: list[Group] = field(default_factory=list)
    quotes_seen: set[str] = field(default_factory=set)
    capped: int = 0  # books left out by max_books

    @property
    def books(self) -> int:
        return sum(len(v) for v in self.kept.values())

    def group_sizes(self) -> dict[int, int]:
        """Number of venues in a group -> how many groups."""
        by = Counter(len({k.split(" ", 1)[0] for k in g.members}) for g in self.groups)
        return dict(sorted(by.items(), reverse=True))


def parse_list(value: str, what: str, allowed: tuple[str, ...] | None = None) -> list[str]:
    items = list(dict.fromkeys(x.strip() for x in value.split(",") if x.strip()))
    if not items:
        raise MarketError(f"{what}: give a comma-separated list")
    if allowed is not None:
        bad = [x for x in items if x not in allowed]
        if bad:
            raise MarketError(f"{what}: unknown {', '.join(bad)} (one or more of: {', '.join(allowed)})")
    return items


def kind_of(m: dict[str, Any]) -> Kind | None:
    """The instrument kind of a ccxt market of interest: spot, or a perpetual swap."""
    if m.get("spot") or m.get("type") == "spot":
        return Kind.SPOT
    if (m.get("swap") or m.get("type") == "swap") and not m.get("expiry"):
        return Kind.INVERSE if m.get("inverse") else Kind.LINEAR
    return None


def _wanted(m: dict[str, Any], kind: Kind, quotes: set[str]) -> bool:
    if kind is Kind.LINEAR:
        return m.get("quote") in quotes and (m.get("settle") or m.get("quote")) == m.get("quote")
    return m.get("quote") in quotes


def _streamable(venue: str, inst: Instrument) -> bool:
    allowed = STREAMED.get(venue)
    if allowed is not None and inst.kind not in allowed:
        return False
    cls = handler_class(venue)
    if cls is None:
        return True  # the ccxt.pro fallback streams whatever ccxt lists (watch_order_book)
    try:
        cls.check_instruments([inst])
    except ValueError:
        return False
    return True


async def load_all(venues: list[str], configs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each venue's ccxt exchange with its markets loaded, all venues at once (one
    ``load_markets`` each); a venue that cannot be loaded is a :class:`MarketError`."""
    import ccxt.async_support as ccxt_async

    async def one(venue: str) -> Any:
        cls = getattr(ccxt_async, venue, None)
        if cls is None:
            raise MarketError(f"unknown venue {venue!r} for ccxt")
        cfg: dict[str, Any] = {"enableRateLimit": True, **configs.get(venue, {})}
        if venue in _LOAD_TYPES:
            opts = dict(cfg.get("options") or {})
            opts.setdefault("fetchMarkets", {"types": _LOAD_TYPES[venue]})
            cfg["options"] = opts
        ex = cls(cfg)
        try:
            await ex.load_markets()
        except Exception as e:
            raise MarketError(f"{venue}: cannot load markets through ccxt ({type(e).__name__}: {e})") from None
        finally:
            await ex.close()
        return ex

    results = await asyncio.gather(*(one(v) for v in venues), return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return dict(zip(venues, results, strict=True))


def select(exchanges: dict[str, Any], quotes: list[str], kinds: list[str], min_venues: int,
           basis: bool = True, equivalents: list[set[str]] | None = None, max_books: int | None = None
           ) -> Discovery:
    """What to follow, from loaded exchanges (venue -> ccxt exchange with ``markets``)."""
    d = Discovery(list(exchanges))
    qs = set(quotes)
    want_spot, want_swap = "spot" in kinds, "swap" in kinds
    by_base: dict[str, list[Instrument]] = {}
    for venue, ex in exchanges.items():
        markets: dict[str, dict[str, Any]] = ex.markets or {}
        d.listed[venue] = len(markets)
        n = 0
        for sym, m in markets.items():
            kind = kind_of(m)
            if kind is None or (kind is Kind.SPOT and not want_spot) or (kind is not Kind.SPOT and not want_swap):
                continue
            if m.get("quote"):
                d.quotes_seen.add(str(m["quote"]))
            if m.get("active") is False or not _wanted(m, kind, qs):
                continue
            try:
                inst = from_ccxt_market(venue, m, int(ex.precisionMode), amount_mode(ex, sym))
            except (MarketError, KeyError, TypeError, ValueError):
                continue  # metadata an instrument cannot be built from: not tradable here
            if not _streamable(venue, inst):
                continue
            n += 1
            by_base.setdefault(inst.base, []).append(inst)
        d.candidates[venue] = n
    eq = equivalents or []
    ranked: list[tuple[int, Group]] = []
    by_key = {i.key: i for insts in by_base.values() for i in insts}
    for base in sorted(by_base):
        for g in auto_groups(by_base[base], basis=basis, equivalents=eq).groups:
            spread = len({by_key[k].venue for k in g.members})
            if spread >= min_venues:
                ranked.append((spread, g))
    ranked.sort(key=lambda x: (-x[0], x[1].name))
    chosen: dict[str, Instrument] = {}
    for _, g in ranked:
        new = [k for k in g.members if k not in chosen]
        if max_books is not None and len(chosen) + len(new) > max_books:
            continue
        d.groups.append(g)
        for k in new:
            chosen[k] = by_key[k]
    if max_books is not None:
        d.capped = len({k for _, g in ranked for k in g.members} - set(chosen))
    for v in d.venues:
        d.kept[v] = sorted((i for i in chosen.values() if i.venue == v), key=lambda i: i.symbol)
    return d


def check_request(venues: list[str], quotes: list[str], min_venues: int) -> None:
    """Bad input found before anything is loaded."""
    if min_venues < 1:
        raise MarketError(f"--min-venues must be at least 1, not {min_venues}")
    if len(venues) < min_venues:
        raise MarketError(f"--symbols all with --min-venues {min_venues} needs at least {min_venues} venues "
                          f"(given: {', '.join(venues)})")


def check_result(d: Discovery, quotes: list[str], strict: bool = True) -> None:
    """A quote no venue lists (when given), or nothing kept: one clear line each."""
    unknown = [q for q in quotes if q not in d.quotes_seen] if strict else []
    if unknown:
        seen = ", ".join(sorted(d.quotes_seen)) or "none"
        raise MarketError(f"--quote: no venue lists {', '.join(unknown)} (quotes seen: {seen})")
    if not d.books:
        raise MarketError(f"--symbols all: no market is listed on enough venues "
                          f"(candidates per venue: {', '.join(f'{v} {n}' for v, n in d.candidates.items())})")


async def discover(catalog: Catalog, venues: list[str], configs: dict[str, dict[str, Any]],
                   req: DiscoveryRequest, basis: bool = True, equivalents: list[set[str]] | None = None
                   ) -> Discovery:
    """Load, select, check; the kept instruments are added to ``catalog``."""
    quotes = list(req.quotes)
    check_request(venues, quotes, req.min_venues)
    exchanges = await load_all(venues, configs)
    d = select(exchanges, quotes, list(req.kinds), req.min_venues, basis, equivalents, req.max_books)
    check_result(d, quotes, req.strict_quotes)
    for insts in d.kept.values():
        for inst in insts:
            catalog.add(inst)
    return d
