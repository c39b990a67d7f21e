"""Events over a transport: the engine's sink that publishes, and the consumer loop of the roles.

``BusSink`` is an engine ``Sink`` (like the storage writer): it is called right after the hot
path, never inside it, turns each record into its typed struct, numbers it and hands the bytes
to the transport (a deque append for Redis; the network is the publisher thread's business).

``EventConsumer`` reads a group's entries, decodes them, drops the ones it has already seen
(``run:seq``), hands the rest to the role and acknowledges only after the role returned: a
role that dies mid-batch gets the batch again (from its own pending entries, or claimed by
another member with XAUTOCLAIM). A message that does not decode is counted, dead-lettered and
acknowledged: it never stops a role.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from cryptoarb.bus import messages as M
from cryptoarb.bus.base import BusError, Delivery, Transport
from cryptoarb.core.opportunity import Opportunity
from cryptoarb.core.orders import ArbTrade, Fill, Order
from cryptoarb.core.pnl import PnlSnapshot
from cryptoarb.redact import redact_config
from cryptoarb.storage.rows import jsonable

#: the groups that must see every event (what a Redis publisher keeps until they acknowledged it)
RECORDER = "recorder"
ANALYTICS = "analytics"
API = "api"


def open_transport(url: str, *, prefix: str = "arb:", maxlen: int = 100_000,
                   required_groups: tuple[str, ...] = ()) -> Transport:
    """``memory://`` (one process), ``redis://host:port/db`` or ``ipc:///path`` (a peer of a
    parent's hub, :mod:`cryptoarb.bus.ipc`); ``BusError`` when unusable."""
    if url.startswith("memory:"):
        from cryptoarb.bus.memory import MemoryTransport

        return MemoryTransport(maxlen)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from cryptoarb.bus.redis_bus import RedisTransport

        return RedisTransport(url, prefix, maxlen, required_groups, M.ALL_KINDS)
    if url.startswith("ipc://"):  # a peer of a parent's Unix-socket hub (bus/ipc.py, sharded runs)
        from cryptoarb.bus.ipc import open_ipc

        return open_ipc(url, maxlen)
    raise BusError(f"bus URL {url!r}: use memory:// or redis://HOST:PORT/DB (or ipc:///PATH)")


def _v(x: Any) -> Any:
    return getattr(x, "value", x)


class BusSink:
    """The engine's events onto the bus (an engine ``Sink``)."""

    def __init__(self, transport: Transport, run_id: str, on_publish: Callable[[str, int], None] | None = None):
        self.transport = transport
        self.run_id = run_id
        self.seq = 0
        self.on_publish = on_publish  # (stream, bytes) for the metrics
        self._publish = transport.publish

    def _emit(self, cls: type[Any], *fields: Any) -> None:
        self.seq += 1
        ev = cls(self.run_id, self.seq, *fields)
        data = M.encode(ev)
        stream = M.STREAMS[cls]
        self._publish(stream, data)
        if self.on_publish is not None:
            self.on_publish(stream, len(data))

    def opportunity(self, o: Opportunity) -> None:
        self._emit(M.OppEvent, int(o.id), o.group, o.label, o.buy_key, o.sell_key, o.qty_base, o.buy_vwap,
                   o.sell_vwap, o.cost_quote, o.fees_quote, o.profit_quote, o.profit_bps, int(o.exchange_ns),
                   int(o.local_ns))

    def order(self, o: Order) -> None:
        self._emit(M.OrderEvent, o.id, o.arb_id, o.venue, o.symbol, o.side, o.type, o.qty, o.limit_price,
                   o.expected_price, _v(o.status), o.filled_qty, o.notional, o.fee, o.fee_currency, o.reason,
                   o.created_ns, o.updated_ns)

    def fill(self, f: Fill) -> None:
        self._emit(M.FillEvent, f.order_id, f.venue, f.symbol, f.side, f.price, f.qty, f.fee, f.fee_currency,
                   f.liquidity, f.ts_ns)

    def arb_trade(self, t: ArbTrade) -> None:
        self._emit(M.TradeEvent, t.id, t.opportunity_id, t.group, _v(t.status), t.expected_pnl, t.realized_pnl,
                   t.fees_quote, t.expected_qty_base, t.matched_qty_base, t.unhedged_qty_base, t.created_ns,
                   t.closed_ns)

    def balances(self, ts_ns: int, rows: Iterable[tuple[str, str, Decimal]]) -> None:
        self._emit(M.BalancesEvent, ts_ns, [(v, a, Decimal(x)) for v, a, x in rows])

    def pnl(self, ts_ns: int, snap: PnlSnapshot) -> None:
        r, u, t = snap.exact
        self._emit(M.PnlEvent, ts_ns, snap.currency, r, u, t, snap.unhedged_quote, snap.max_unhedged_quote)

    def feature(self, row: Mapping[str, Any]) -> None:
        self._emit(M.FeatureEvent, jsonable(dict(row)))

    def audit(self, actor: str, action: str, detail: Mapping[str, Any]) -> None:
        self._emit(M.AuditEvent, time.time(), actor, action, jsonable(redact_config(dict(detail))))

    def start_run(self, mode: str, config: Mapping[str, Any]) -> None:
        self._emit(M.RunEvent, mode, redact_config(jsonable(dict(config))), time.time_ns(), None)

    def end_run(self, mode: str) -> None:
        self._emit(M.RunEvent, mode, {}, 0, time.time_ns())

    def book_top(self, key: str, bid: float, bid_qty: float, ask: float, ask_qty: float, local_ns: int,
                 valid: bool) -> None:
        self._emit(M.BookTopEvent, key, bid, bid_qty, ask, ask_qty, local_ns, valid)


class Seen:
    """``run:seq`` pairs already handled, per run: a watermark below which every number was
    seen, and the numbers above it. Bounded: past ``limit`` the oldest numbers are forgotten."""

    def __init__(self, limit: int = 1_000_000) -> None:
        self.limit = limit
        self._wm: dict[str, int] = {}
        self._above: dict[str, set[int]] = {}

    def __contains__(self, ev: tuple[str, int]) -> bool:
        run, seq = ev
        return seq <= self._wm.get(run, 0) or seq in self._above.get(run, ())

    def add(self, run: str, seq: int) -> bool:
        """True if new (and now remembered)."""
        if (run, seq) in self:
            return False
        wm = self._wm.get(run, 0)
        above = self._above.setdefault(run, set())
        if seq == wm + 1:
            wm += 1
            while wm + 1 in above:
                wm += 1
                above.discard(wm)
            self._wm[run] = wm
        else:
            above.add(seq)
            if len(above) > self.limit:
                keep = sorted(above)[len(above) // 2:]
                self._wm[run] = keep[0] - 1
                self._above[run] = set(keep)
        return True


Handle = Callable[[list[M.Event]], None]


class EventConsumer:
    """A role's reading loop over one consumer group."""

    def __init__(self, transport: Transport, group: str, consumer: str, streams: Iterable[str], handle: Handle,
                 *, claim_idle_ms: int = 5_000, count: int = 500,
                 on_bad: Callable[[str], None] | None = None, seen: Seen | None = None) -> None:
        self.transport = transport
        self.sub = transport.subscribe(group, consumer, list(streams))
        self.handle = handle
        self.claim_idle_ms = claim_idle_ms
        self.count = count
        self.on_bad = on_bad
        self.seen = seen if seen is not None else Seen()
        self.received = 0
        self.duplicates = 0
        self.bad = 0
        self.claimed = 0
        self.failures = 0  # batches the role raised on (delivered again)
        self._claim_due = 0.0

    def poll(self, block_ms: int = 200) -> int:
        """One round: claim stale entries of dead members (every ``claim_idle_ms``/2), read new
        ones, handle, acknowledge. Returns how many new events were handled."""
        now = time.monotonic()
        deliveries: list[Delivery] = []
        if now >= self._claim_due:
            self._claim_due = now + self.claim_idle_ms / 2000
            deliveries = self.sub.claim(self.claim_idle_ms, self.count)
            self.claimed += len(deliveries)
        if not deliveries:
            deliveries = self.sub.read(self.count, block_ms)
        if not deliveries:
            return 0
        events: list[M.Event] = []
        seen = self.seen
        batch: set[tuple[str, int]] = set()
        for d in deliveries:
            try:
                ev = M.decode(d.data)
            except M.BadMessage as e:
                self.bad += 1
                self.transport.dead_letter(d, str(e))
                if self.on_bad is not None:
                    self.on_bad(d.stream)
                continue
            ident = (ev.run, ev.seq)
            if ident in seen or ident in batch:
                self.duplicates += 1
            else:
                batch.add(ident)
                events.append(ev)
        if events:
            self.handle(events)  # raises: nothing acknowledged or remembered, delivered again
            for run, seq in batch:
                seen.add(run, seq)
        self.sub.ack(deliveries)
        self.received += len(events)
        return len(events)
