"""Shared pieces of the offline ccxt.pro drivers: the ws client stand-in, market dicts, per-exchange spec.

The ccxt plumbing shared with :mod:`cryptoarb.bench.ccxt_ref` (``available``, the ws client's
JSON parser, driving a coroutine without a loop) is reused from :mod:`cryptoarb.bench.ccxt_common`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptoarb.bench.ccxt_common import available, ws_json_parser
from cryptoarb.bench.venues import Capture

Classifier = Callable[[Any], int]
Markets = list[dict[str, Any]]


def parser_name() -> str:
    return ws_json_parser()[1] if available() else "-"


# ------------------------------------------------------------------------------ offline plumbing


def _done_future() -> asyncio.Future[None]:
    """An already-completed future: ``asyncio.ensure_future`` returns it as is, no loop needed."""
    loop = asyncio.new_event_loop()
    try:
        fut: asyncio.Future[None] = loop.create_future()
        fut.set_result(None)
    finally:
        loop.close()
    return fut


class _Client:
    """Stands in for ccxt's ws ``Client``: what the public order-book handlers touch."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.futures: dict[str, Any] = {}
        self.subscriptions: dict[str, Any] = {}
        self.rejections: dict[str, Any] = {}
        self.rejected: list[BaseException] = []
        self.sent: list[Any] = []
        self.error: BaseException | None = None
        self.lastPong: int | None = None
        self.keepAlive = 0

    def resolve(self, result: Any, message_hash: Any = None) -> Any:
        if message_hash in self.futures:
            del self.futures[message_hash]
        return result

    def reject(self, result: Any, message_hash: Any = None) -> Any:
        self.rejected.append(result)
        if message_hash is not None:
            self.rejections[str(message_hash)] = result
        return result

    def close(self, code: int = 1000) -> asyncio.Future[None]:
        return _done_future()

    def send(self, message: Any) -> asyncio.Future[None]:
        self.sent.append(message)
        return _done_future()


# ------------------------------------------------------------------------------ markets


def _market(
    market_id: str,
    base: str,
    quote: str,
    kind: str = "spot",
    settle: str | None = None,
    expiry: str | None = None,
    contract_size: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A minimal ccxt market structure; ``kind`` is ``spot``, ``swap`` or ``future``."""
    spot = kind == "spot"
    symbol = f"{base}/{quote}"
    if not spot:
        settle = settle or quote
        symbol += f":{settle}" + (f"-{expiry}" if expiry else "")
    linear = None if spot else settle == quote
    return {
        "id": market_id,
        "lowercaseId": market_id.lower(),
        "symbol": symbol,
        "base": base,
        "quote": quote,
        "settle": settle,
        "baseId": base,
        "quoteId": quote,
        "settleId": settle,
        "type": kind,
        "spot": spot,
        "margin": False,
        "swap": kind == "swap",
        "future": kind == "future",
        "option": False,
        "index": False,
        "active": True,
        "contract": not spot,
        "linear": linear,
        "inverse": None if spot else not linear,
        "contractSize": None if spot else (contract_size or 1.0),
        "expiry": None,
        "expiryDatetime": None,
        "strike": None,
        "optionType": None,
        "precision": {"amount": None, "price": None},
        "limits": {"amount": {"min": None, "max": None}, "price": {"min": None, "max": None}},
        "info": {"symbol": market_id},
        **extra,
    }


_QUOTES = (
    "USDT", "USDC", "BUSD", "DAI", "USD", "EUR", "GBP", "CHF", "JPY",
    "SGD", "AUD", "CAD", "TRY", "BTC", "XBT", "ETH", "LTC", "BNB", "HT", "TRX", "XRP", "EOS",
)


def _split(native: str, quotes: Sequence[str] = _QUOTES) -> tuple[str, str]:
    """``BTCGBP`` / ``ltceth`` -> (base, quote) by the longest known quote suffix."""
    n = native.upper()
    for q in sorted(quotes, key=len, reverse=True):
        if n.endswith(q) and len(n) > len(q):
            return n[: -len(q)], q
    raise ValueError(f"cannot split {native!r} into base and quote")


def _sent_json(cap: Capture) -> list[Any]:
    out = []
    for rec in cap.sent():
        try:
            out.append(json.loads(rec.payload))
        except ValueError:
            continue
    return out


def _unique(markets: Markets) -> Markets:
    seen: dict[str, dict[str, Any]] = {}
    for m in markets:
        seen.setdefault(m["symbol"], m)
    return list(seen.values())


def _dict(msg: Any) -> dict[str, Any]:
    return msg if isinstance(msg, dict) else {}


def _from_sent(per_message: Callable[[dict[str, Any]], Iterable[dict[str, Any]]]) -> Callable[[Capture], Markets]:
    """A ``Spec.markets`` builder: ``per_message`` yields the markets one SENT message subscribes to
    (it gets the message as a dict, ``{}`` for a JSON array or scalar); duplicates are dropped."""

    def markets(cap: Capture) -> Markets:
        return _unique([mk for m in _sent_json(cap) for mk in per_message(_dict(m))])

    return markets


# ------------------------------------------------------------------------------ per exchange


def _stateless(classify: Classifier) -> Callable[[], Classifier]:
    """A ``Spec.classifier`` factory for a classifier that keeps no state: every run gets it as is."""
    return lambda: classify


@dataclass
class Spec:
    """How to drive one exchange's ccxt.pro code on its capture."""

    ccxt_id: str
    markets: Callable[[Capture], Markets]
    classifier: Callable[[], Classifier]  # a fresh (possibly stateful) classifier per run
    prepare: Callable[[Any, _Client, Markets], None] | None = None
    rest: bool = False  # books start from the capture's REST snapshots (spawned load_order_book)
    #: adapts a captured REST body to what current ccxt's fetch_order_book requires (body, local_ns)
    rest_fixup: Callable[[Any, int], Any] | None = None
    #: the capture's format is one current ccxt no longer speaks: the reason, confirmed by a run
    legacy: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    note: str = ""
