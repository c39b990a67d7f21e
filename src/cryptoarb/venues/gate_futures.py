"""Gate USDT-settled perpetual futures: the wire formats ``GateHandler`` reads for swap markets.

Gate streams its perpetuals on a separate endpoint (``wss://fx-ws.gateio.ws/v4/ws/usdt``, ccxt.pro
``gate.urls.api.swap.usdt``) with the spot book's procedure under other names (Gate futures WS v4
"Order book update", "How to maintain local order book"):

- ``futures.order_book_update`` with payload ``[contract, "100ms", "100"]`` pushes diffs
  ``{"t": ms, "s": contract, "U": first id, "u": last id, "b": [{"p": "price", "s": size}], "a": [...]}``
  (levels are objects, sizes absolute, in *contracts*: each is ``quanto_multiplier`` of the base,
  ccxt's ``contractSize``, our ``Instrument.contract_size``; 0 deletes);
- ``GET /futures/usdt/order_book?contract=..&limit=100&with_id=true`` answers
  ``{"id": update id, "current": s, "update": s, "bids": [{"p", "s"}], "asks": [...]}``;
- the join is the spot one (:mod:`cryptoarb.venues.join`): drop ``u <= id``, first ``U <= id + 1``,
  then ``U == previous u + 1``; the stream keeps the best 100 levels.

Only USDT-settled perpetuals: BTC-settled (inverse) ones live on ``/ws/btc`` and dated futures on
``/ws/delivery/usdt``, neither served here (``check``).
"""

from __future__ import annotations

import msgspec

from cryptoarb.core.instruments import Instrument, Kind
from cryptoarb.venues._decode import Level

WS_URL = "wss://fx-ws.gateio.ws/v4/ws/usdt"
SNAPSHOT_METHOD = "public_futures_get_settle_order_book"
SETTLE = "usdt"
CHANNEL = "futures.order_book_update"
#: the diffs' update interval and the levels the stream maintains (= the REST snapshot's limit)
INTERVAL = "100ms"
LEVELS = 100


class FLevel(msgspec.Struct):
    p: float
    s: float


class FDepth(msgspec.Struct):
    s: str
    U: int
    u: int
    b: list[FLevel] = []
    a: list[FLevel] = []
    t: int = 0  # ms


class FBook(msgspec.Struct):
    id: int = -1
    bids: list[FLevel] = []
    asks: list[FLevel] = []
    update: float = 0.0  # s, with ms decimals
    message: str = ""  # an error body: {"label": ..., "message": ...}


decode_depth = msgspec.json.Decoder(FDepth, strict=False).decode
decode_book = msgspec.json.Decoder(FBook, strict=False).decode


def levels(side: list[FLevel]) -> list[Level]:
    """``[{"p", "s"}]`` -> the ``(price, size)`` pairs every book takes."""
    return [(lv.p, lv.s) for lv in side]


def is_futures(inst: Instrument) -> bool:
    return inst.kind is not Kind.SPOT


def check(inst: Instrument) -> str:
    """Why ``inst`` cannot be streamed here ("" when it can)."""
    if inst.kind is Kind.INVERSE:
        return f"gate {inst.symbol}: BTC-settled (inverse) perpetuals are not supported, only USDT-settled"
    if inst.kind is Kind.LINEAR and (inst.quote != "USDT" or "-" in inst.symbol.partition(":")[2]):
        return f"gate {inst.symbol}: only USDT-settled perpetuals are supported (no dated or other-settled futures)"
    return ""


def unify(native: str) -> str:
    """``BTC_USDT`` (a USDT-settled perpetual) -> ``BTC/USDT:USDT``."""
    base, sep, quote = native.upper().rpartition("_")
    return f"{base}/{quote}:{quote}" if sep and base and quote else ""


__all__ = ["CHANNEL", "INTERVAL", "LEVELS", "SETTLE", "SNAPSHOT_METHOD", "WS_URL", "FBook", "FDepth", "check",
           "decode_book", "decode_depth", "is_futures", "levels", "unify"]
