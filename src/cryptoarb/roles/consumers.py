"""The consuming roles: ``recorder`` (bus -> outbox -> PostgreSQL), ``analytics`` (aggregates,
feature log, event log) and the bridge that feeds the API's in-process stream hub.

Each is a handler of decoded event batches run by ``run_consumer``: read, handle, acknowledge,
publish the group's metrics about once a second, until stopped.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Protocol

import msgspec

from cryptoarb.bus import messages as M
from cryptoarb.bus.events import EventConsumer
from cryptoarb.bus.outbox import Outbox
from cryptoarb.obs.metrics import Metrics

log = logging.getLogger(__name__)

#: the recorder reads every stream (a publisher keeps each event until every required group has
#: acknowledged it) and stores all but book tops (live state, not history)
RECORDED = M.ALL_KINDS


def run_consumer(consumer: EventConsumer, metrics: Metrics, group: str, stop: Callable[[], bool],
                 refresh: Callable[[], None] | None = None, until_idle_s: float | None = None) -> None:
    """Poll until ``stop()``; with ``until_idle_s``, also stop after that long without an event."""
    last_event = time.monotonic()
    next_refresh = 0.0
    while not stop():
        try:
            if consumer.poll(200):
                last_event = time.monotonic()
        except Exception:  # the role could not take the batch (disk full...): not acknowledged, again later
            log.exception("%s: handling a batch failed; it is delivered again", group)
            consumer.failures += 1
            consumer.sub.rewind()
            time.sleep(1.0)
        now = time.monotonic()
        if now >= next_refresh:
            next_refresh = now + 1.0
            publish_consumer_metrics(consumer, metrics, group)
            if refresh is not None:
                refresh()
        if until_idle_s is not None and now - last_event > until_idle_s:
            break
    publish_consumer_metrics(consumer, metrics, group)
    if refresh is not None:
        refresh()


def publish_consumer_metrics(c: EventConsumer, m: Metrics, group: str) -> None:
    m.set("arb_bus_received", float(c.received), group)
    m.set("arb_bus_duplicates", float(c.duplicates), group)
    m.set("arb_bus_bad", float(c.bad), group)
    m.set("arb_bus_claimed", float(c.claimed), group)
    m.set("arb_bus_lag", float(c.sub.lag()), group)
    m.set("arb_bus_pending", float(c.sub.pending()), group)


class Recorder:
    """Bus events into the outbox (durably, before they are acknowledged)."""

    def __init__(self, outbox: Outbox, metrics: Metrics) -> None:
        self.outbox = outbox
        self.metrics = metrics

    def handle(self, events: list[M.Event]) -> None:
        kept = [e for e in events if not isinstance(e, M.BookTopEvent)]
        if kept:
            self.outbox.put(kept)

    def refresh(self) -> None:
        m, o = self.metrics, self.outbox
        m.set("arb_outbox_depth", float(o.depth()))
        m.set("arb_outbox_written", float(o.written))
        m.set("arb_outbox_dead", float(o.dead))
        m.set("arb_db_up", 1.0 if o.db_up else 0.0)


_IDS: dict[type[Any], Callable[[Any], Any]] = {
    M.OppEvent: lambda e: e.id,
    M.OrderEvent: lambda e: [e.id, e.status],
    M.FillEvent: lambda e: [e.order_id, e.ts_ns, str(e.qty)],
    M.TradeEvent: lambda e: [e.id, e.status],
}


class Analytics:
    """Aggregates per run (counts, profit found, trades by status, realised PnL), a feature log
    (JSON lines for model training) and an optional event log (one line per event handled)."""

    def __init__(self, metrics: Metrics, features: Path | None = None, events: Path | None = None,
                 summary: Path | None = None) -> None:
        self.metrics = metrics
        self.runs: dict[str, dict[str, Any]] = {}
        self.summary_path = summary
        self._features: IO[str] | None = features.open("a") if features else None
        self._events: IO[str] | None = events.open("a") if events else None

    def handle(self, events: list[M.Event]) -> None:
        lines: list[str] = []
        for e in events:
            r = self.runs.get(e.run)
            if r is None:
                r = self.runs[e.run] = {"events": {}, "profit_found_quote": 0.0, "trades": {}, "realised_pnl": None,
                                        "currency": None}
            kind = M.STREAMS[type(e)]
            r["events"][kind] = r["events"].get(kind, 0) + 1
            if isinstance(e, M.OppEvent):
                r["profit_found_quote"] += e.profit_quote
            elif isinstance(e, M.TradeEvent) and e.closed_ns:
                r["trades"][e.status] = r["trades"].get(e.status, 0) + 1
            elif isinstance(e, M.PnlEvent):
                r["realised_pnl"] = str(e.realised)
                r["currency"] = e.currency
            elif isinstance(e, M.FeatureEvent) and self._features is not None:
                self._features.write(json.dumps({"run": e.run, **e.row}) + "\n")
            ident = _IDS.get(type(e))
            if ident is not None and self._events is not None:
                lines.append(json.dumps({"kind": kind, "run": e.run, "seq": e.seq, "id": ident(e)}))
        if self._events is not None and lines:
            self._events.write("\n".join(lines) + "\n")
            self._events.flush()
        if self._features is not None:
            self._features.flush()

    def refresh(self) -> None:
        if self.summary_path is not None:
            tmp = self.summary_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.runs, indent=1))
            tmp.replace(self.summary_path)

    def close(self) -> None:
        self.refresh()
        for f in (self._features, self._events):
            if f is not None:
                f.close()


class Hub(Protocol):
    """The API's in-process stream hub (``api.hub.StreamHub``): fan-out to stream clients."""

    queue_size: int

    def publish(self, kind: str, payload: Any) -> Any: ...

    def backlog(self) -> int: ...

    @property
    def running(self) -> bool: ...


#: bus stream -> the hub's kind (the API's stream vocabulary; other streams keep their name)
HUB_KINDS = {"opportunities": "opportunity", "trades": "trade", "orders": "order", "fills": "fill", "pnl": "pnl",
             "risk": "breaker", "books": "book"}


def hub_payload(e: M.Event) -> tuple[str, dict[str, Any]]:
    """The hub kind and a JSON-able payload in the API's shapes (``run_id``, decimals as strings,
    an open trade's ``closed_ns`` null, a book keyed by ``group`` = its key)."""
    values = msgspec.to_builtins(e)[1:]  # without the tag; decimals as strings
    d = dict(zip(e.__struct_fields__, values, strict=True))
    d["run_id"] = d.pop("run")
    stream = M.STREAMS[type(e)]
    if isinstance(e, M.TradeEvent):
        d["closed_ns"] = e.closed_ns or None
    elif isinstance(e, M.BookTopEvent):
        d["group"] = e.key
    elif isinstance(e, M.AuditEvent):
        d["ts_ns"] = int(e.ts * 1e9)
        d["reason"] = str(e.detail.get("reason", ""))
    return HUB_KINDS.get(stream, stream), d


class HubFeeder:
    """Bus events into the API's stream hub: in the distributed mode ``arb api --bus`` runs this
    beside its server (group ``api``), so stream clients see every engine's events once.

    The hub hands everything it holds to each client's queue in one go, before the clients'
    senders run: a bus batch larger than a client's queue would drop even a client that reads
    everything. So a batch goes in slices of half a queue, each once the hub has handed on the
    previous one (while its loop runs); the bus keeps the rest meanwhile (not yet acknowledged)."""

    def __init__(self, hub: Hub, metrics: Metrics | None = None, max_wait_s: float = 5.0) -> None:
        self.hub = hub
        self.metrics = metrics or Metrics("api")
        self.step = max(1, hub.queue_size // 2)
        self.max_wait_s = max_wait_s  # a hub stuck this long: publish anyway (it drops, never blocks)

    def handle(self, events: list[M.Event]) -> None:
        publish, step = self.hub.publish, self.step
        for i in range(0, len(events), step):
            if i:
                self._handed_on()
            for e in events[i:i + step]:
                publish(*hub_payload(e))
        self._handed_on()

    def _handed_on(self) -> None:
        hub = self.hub
        deadline = time.monotonic() + self.max_wait_s
        while hub.running and hub.backlog() and time.monotonic() < deadline:
            time.sleep(0.0005)

    def refresh(self) -> None:
        pass


def start_hub_feeder(url: str, settings: Any, hub: Hub, consumer: str) -> Callable[[], None]:
    """Feed ``hub`` from the bus on a daemon thread (group ``api``); returns the function that
    stops it. ``BusError`` when Redis is unreachable (the caller reports it and exits)."""
    import threading

    from cryptoarb.bus.events import API, open_transport

    b = settings.bus
    transport = open_transport(url, prefix=b.prefix, maxlen=b.maxlen)
    feeder = HubFeeder(hub)
    c = EventConsumer(transport, API, consumer, M.ALL_KINDS, feeder.handle, claim_idle_ms=b.claim_idle_ms)
    stopped = threading.Event()
    t = threading.Thread(target=run_consumer, args=(c, feeder.metrics, API, stopped.is_set), name="bus-to-hub",
                         daemon=True)
    t.start()

    def stop() -> None:
        stopped.set()
        t.join(5)
        transport.close()

    return stop
