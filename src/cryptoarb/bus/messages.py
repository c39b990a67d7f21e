"""What travels on the bus: one typed msgspec struct per event kind, msgpack-encoded.

Every event carries its producer's run id and a sequence number the producer assigns in the
order it emits events (``run``, ``seq``). That pair is the event's identity: consumers drop a
pair they have seen (a republish after a Redis restart, a redelivery after a crash) and the
recorder writes it into PostgreSQL at most once (``bus_events``). A replay restarted under the
same run id emits the same events with the same numbers.

Structs are ``array_like`` (a list on the wire, no field names) and tagged, so one decoder reads
any kind: a message costs its values and a one-letter tag. Decimals travel as strings (exact).
The field order of orders, fills and trades is the order of the tuples ``storage.rows`` builds
rows from, so the recorder reuses those builders unchanged.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec


class _Event(msgspec.Struct, array_like=True, tag_field="k"):
    run: str
    seq: int


class OppEvent(_Event, tag="o"):
    id: int
    group: str
    label: str
    buy_key: str
    sell_key: str
    qty_base: float
    buy_vwap: float
    sell_vwap: float
    cost_quote: float
    fees_quote: float
    profit_quote: float
    profit_bps: float
    exchange_ns: int
    local_ns: int


class OrderEvent(_Event, tag="r"):
    id: str
    arb_id: int | None
    venue: str
    symbol: str
    side: str
    type: str
    qty: Decimal
    limit_price: Decimal
    expected_price: Decimal
    status: str
    filled_qty: Decimal
    notional: Decimal
    fee: Decimal
    fee_currency: str
    reason: str
    created_ns: int
    updated_ns: int


class FillEvent(_Event, tag="f"):
    order_id: str
    venue: str
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_currency: str
    liquidity: str
    ts_ns: int


class TradeEvent(_Event, tag="t"):
    id: int
    opportunity_id: int
    group: str
    status: str
    expected_pnl: Decimal
    realized_pnl: Decimal
    fees_quote: Decimal
    expected_qty_base: Decimal
    matched_qty_base: Decimal
    unhedged_qty_base: Decimal
    created_ns: int
    closed_ns: int


class BalancesEvent(_Event, tag="b"):
    ts_ns: int
    rows: list[tuple[str, str, Decimal]]


class PnlEvent(_Event, tag="p"):
    ts_ns: int
    currency: str
    realised: Decimal
    unrealised: Decimal
    total: Decimal
    unhedged_quote: float
    max_unhedged_quote: float


class FeatureEvent(_Event, tag="x"):
    row: dict[str, Any]


class AuditEvent(_Event, tag="a"):
    """Risk decisions: breaker trips and resets, kill switch, venues down (``action``)."""

    ts: float
    actor: str
    action: str
    detail: dict[str, Any]


class RunEvent(_Event, tag="u"):
    """A run starts (``ended_ns`` None, with its redacted configuration) or ends."""

    mode: str
    config: dict[str, Any]
    started_ns: int
    ended_ns: int | None


class BookTopEvent(_Event, tag="k"):
    """A book's top, sampled by the engine off the hot path (not every change)."""

    key: str
    bid: float
    bid_qty: float
    ask: float
    ask_qty: float
    local_ns: int
    valid: bool


Event = (
    OppEvent | OrderEvent | FillEvent | TradeEvent | BalancesEvent | PnlEvent | FeatureEvent | AuditEvent
    | RunEvent | BookTopEvent
)

#: event class -> stream (one stream per kind)
STREAMS: dict[type[Any], str] = {
    OppEvent: "opportunities",
    OrderEvent: "orders",
    FillEvent: "fills",
    TradeEvent: "trades",
    BalancesEvent: "balances",
    PnlEvent: "pnl",
    FeatureEvent: "features",
    AuditEvent: "risk",
    RunEvent: "runs",
    BookTopEvent: "books",
}
ALL_KINDS: tuple[str, ...] = tuple(STREAMS.values())

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Event)


class BadMessage(Exception):
    """A bus message that is not an event of this version: counted and dead-lettered."""


def encode(ev: Event) -> bytes:
    return _encoder.encode(ev)


def decode(data: bytes) -> Event:
    try:
        return _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        raise BadMessage(str(e)) from None


def key(ev: Event) -> str:
    """The event's identity: ``run:seq``."""
    return f"{ev.run}:{ev.seq}"
