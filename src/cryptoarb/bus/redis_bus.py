"""Redis Streams transport: consumer groups, acknowledgements, bounded streams, XAUTOCLAIM.

Publishing never touches the network on the caller's thread: ``publish`` appends to a deque
and a publisher thread sends batches (one pipeline of ``XADD ... MAXLEN ~ n``). While Redis is
away the deque grows and the thread reconnects with backoff.

Nothing published is forgotten until every *required* group (the roles that must see every
event: the recorder, the API...) has read and acknowledged it: the thread keeps what it sent
and, twice a second, drops what ``XINFO GROUPS`` / ``XPENDING`` say every required group has
acknowledged. A Redis that comes back with another ``run_id`` (restarted without persistence)
gets the required groups recreated and everything kept published again. Consumers drop what
they have seen (events carry ``run:seq``), so a republish duplicates nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from cryptoarb.bus.base import DLQ, BusError, Delivery

log = logging.getLogger(__name__)

_DOWN = (redis.ConnectionError, redis.TimeoutError, ConnectionError, OSError)


def _id(raw: Any) -> tuple[int, int]:
    s = raw.decode() if isinstance(raw, bytes) else str(raw)
    a, _, b = s.partition("-")
    return int(a), int(b or 0)


def connect(url: str, timeout: float = 2.0) -> redis.Redis:
    """A client for ``url``, proven with a PING; ``BusError`` (one line) when unreachable."""
    try:
        # no client-side retries: the publisher and the subscriptions reconnect themselves, and an
        # unreachable server at start must be an error within seconds, not after backoffs
        r = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=max(timeout, 5.0),
                                 retry=Retry(NoBackoff(), 0))
    except ValueError as e:
        raise BusError(f"invalid Redis URL {url!r}: {e}") from None
    try:
        r.ping()
    except _DOWN as e:
        raise BusError(f"cannot reach Redis at {_where(r)}: {e}") from None
    except redis.RedisError as e:
        raise BusError(f"Redis at {_where(r)} refused us: {e}") from None
    return r


def _where(r: redis.Redis) -> str:
    kw = r.connection_pool.connection_kwargs
    return f"{kw.get('host', '?')}:{kw.get('port', '?')}/{kw.get('db', 0)}"


class RedisTransport:
    def __init__(
        self,
        url: str,
        prefix: str = "arb:",
        maxlen: int = 100_000,
        required_groups: tuple[str, ...] = (),
        streams: tuple[str, ...] = (),
        batch: int = 500,
        retain_max: int = 2_000_000,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.maxlen = maxlen
        self.required = tuple(required_groups)
        self.streams = tuple(streams)
        self.batch = batch
        self.retain_max = retain_max
        self.r = connect(url)
        self.server_id = self._server_id()
        self.published = 0
        self.republished = 0
        self.publish_errors = 0
        self.retain_dropped = 0
        self._out: deque[tuple[str, bytes]] = deque()
        self._sending = 0  # events taken off ``_out`` and not yet sent (and kept): in flight
        self._kept: dict[str, deque[tuple[tuple[int, int], bytes]]] = {}
        self._kept_n = 0
        self._wake = threading.Event()
        self._stop = False
        self._idle = threading.Event()
        self._idle.set()
        self._thread: threading.Thread | None = None
        if self.required:
            self._ensure_groups(self.required, self.streams)

    # -- publishing ---------------------------------------------------------------------
    def publish(self, stream: str, data: bytes) -> None:
        self._out.append((stream, data))
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="bus-publisher", daemon=True)
            self._thread.start()
        self._idle.clear()
        self._wake.set()

    def _unsent(self) -> int:
        # read in this order: the thread counts a batch in ``_sending`` before it takes it off
        # ``_out``, and adds it to ``_kept`` before it clears ``_sending``
        return len(self._out) + self._sending

    def flush(self, timeout: float) -> bool:
        """Wait until everything published here is in Redis (not merely taken by the thread)."""
        deadline = time.monotonic() + timeout
        while self._unsent():
            if time.monotonic() >= deadline:
                return False
            self._wake.set()
            self._idle.wait(min(0.05, max(0.0, deadline - time.monotonic())))
        return True

    def backlog(self) -> int:
        return self._unsent() + self._kept_n

    def wait_confirmed(self, timeout: float) -> bool:
        """Wait until every required group acknowledged everything published here."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._unsent() and self._kept_n == 0:
                return True
            self._wake.set()
            time.sleep(0.05)
        return False

    def _run(self) -> None:
        confirm_due = 0.0
        down_since = 0.0
        while not self._stop:
            batch: list[tuple[str, bytes]] = []
            out = self._out
            if out:  # counted in flight before taken off ``_out``: an event is always in one of them
                self._sending = min(len(out), self.batch)
                while out and len(batch) < self.batch:
                    batch.append(out.popleft())
                self._sending = len(batch)
            if not batch:
                self._idle.set()
                now = time.monotonic()
                if self._kept_n and now >= confirm_due:
                    confirm_due = now + 0.5
                    try:
                        # the client reconnects silently: a restarted server shows only in its run_id
                        self._reconnected()  # may queue a republish
                        down_since = 0.0
                        if self._out:
                            continue
                        self._confirm()
                    except _DOWN:
                        down_since = down_since or now
                    except Exception as e:  # a surprise here must not end the publisher
                        log.warning("bus: confirming failed: %s", e)
                self._wake.wait(0.1)
                self._wake.clear()
                continue
            try:
                if down_since:
                    self._reconnected()
                    down_since = 0.0
                pipe = self.r.pipeline(transaction=False)
                p = self.prefix
                for stream, data in batch:
                    pipe.xadd(p + stream, {"d": data}, maxlen=self.maxlen, approximate=True)
                ids = pipe.execute()
            except _DOWN as e:
                self.publish_errors += 1
                out.extendleft(reversed(batch))  # sent again: consumers drop a duplicate
                self._sending = 0
                if not down_since:
                    down_since = time.monotonic()
                    log.warning("bus: Redis unreachable, buffering (%s)", e)
                time.sleep(min(1.0, 0.05 * 2 ** min(self.publish_errors, 5)))
                continue
            self.published += len(batch)
            if self.required:
                kept = self._kept
                for (stream, data), i in zip(batch, ids, strict=True):
                    q = kept.get(stream)
                    if q is None:
                        q = kept[stream] = deque()
                    q.append((_id(i), data))
                self._kept_n += len(batch)
                if self._kept_n > self.retain_max:
                    self._drop_oldest(self._kept_n - self.retain_max)
            self._sending = 0

    def _drop_oldest(self, n: int) -> None:
        for q in self._kept.values():
            while q and n > 0:
                q.popleft()
                n -= 1
                self._kept_n -= 1
                self.retain_dropped += 1

    def _server_id(self) -> str:
        try:
            return str(self.r.info("server").get("run_id", ""))
        except _DOWN as e:
            raise BusError(f"cannot reach Redis at {_where(self.r)}: {e}") from None

    def _reconnected(self) -> None:
        """After an outage: a different server (restarted, empty) gets every kept event again."""
        sid = str(self.r.info("server").get("run_id", ""))
        if sid == self.server_id:
            return
        log.warning("bus: Redis restarted (run_id changed): republishing %d kept event(s)", self._kept_n)
        self.server_id = sid
        if self.required:
            self._ensure_groups(self.required, tuple({*self.streams, *self._kept}))
        again: list[tuple[int, int, str, bytes]] = []
        for stream, q in self._kept.items():
            again.extend((i[0], i[1], stream, d) for i, d in q)
        again.sort()
        self._kept = {}
        self._kept_n = 0
        self.republished += len(again)
        self._out.extendleft(reversed([(s, d) for _, _, s, d in again]))

    def _confirm(self) -> None:
        """Forget what every required group has acknowledged."""
        for stream, q in self._kept.items():
            if not q:
                continue
            name = self.prefix + stream
            try:
                groups = {g["name"].decode(): g for g in self.r.xinfo_groups(name)}
            except redis.ResponseError:
                continue  # no stream: a restarted Redis, handled on reconnection
            limit: tuple[int, int] | None = None
            for gname in self.required:
                g = groups.get(gname)
                if g is None:
                    limit = (0, 0)
                    break
                done = _id(g["last-delivered-id"])
                low = self.r.xpending(name, gname)["min"] if g["pending"] else None
                if low is not None:  # (acknowledged meanwhile: None)
                    first = _id(low)
                    done = min(done, (first[0], first[1] - 1) if first[1] else (first[0] - 1, 1 << 62))
                limit = done if limit is None or done < limit else limit
            if limit is None:
                continue
            while q and q[0][0] <= limit:
                q.popleft()
                self._kept_n -= 1

    def _ensure_groups(self, groups: tuple[str, ...], streams: tuple[str, ...]) -> None:
        for g in groups:
            for s in streams:
                _create_group(self.r, self.prefix + s, g)

    # -- consuming ----------------------------------------------------------------------
    def subscribe(self, group: str, consumer: str, streams: list[str]) -> RedisSubscription:
        return RedisSubscription(self, group, consumer, streams)

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        self.r.xadd(self.prefix + DLQ, {"stream": delivery.stream, "id": delivery.id, "reason": reason[:500],
                                        "d": delivery.data}, maxlen=self.maxlen, approximate=True)

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)
        self.r.close()


def _create_group(r: redis.Redis, key: str, group: str) -> None:
    try:
        r.xgroup_create(key, group, id="0", mkstream=True)
    except redis.ResponseError as e:
        if "BUSYGROUP" not in str(e):
            raise


class RedisSubscription:
    """One member of a consumer group over several streams."""

    def __init__(self, bus: RedisTransport, group: str, consumer: str, streams: list[str]) -> None:
        self.bus = bus
        self.r = bus.r
        self.group = group
        self.consumer = consumer
        self.keys = [bus.prefix + s for s in streams]
        self._strip = len(bus.prefix)
        self._own = True  # read this consumer's own unacknowledged entries first
        self.errors = 0
        self._groups()

    def _groups(self) -> None:
        for k in self.keys:
            _create_group(self.r, k, self.group)

    def _deliveries(self, reply: Any) -> list[Delivery]:
        out: list[Delivery] = []
        for key, entries in reply or ():
            stream = (key.decode() if isinstance(key, bytes) else key)[self._strip:]
            for eid, fields in entries:
                data = (fields or {}).get(b"d", b"")
                out.append(Delivery(stream, eid.decode(), data if isinstance(data, bytes) else b""))
        return out

    def read(self, count: int, block_ms: int) -> list[Delivery]:
        try:
            if self._own:
                got = self._deliveries(self.r.xreadgroup(self.group, self.consumer, dict.fromkeys(self.keys, "0"),
                                                         count=count))
                if got:
                    return got
                self._own = False
            return self._deliveries(self.r.xreadgroup(self.group, self.consumer, dict.fromkeys(self.keys, ">"),
                                                      count=count, block=block_ms))
        except redis.ResponseError as e:
            if "NOGROUP" not in str(e):
                raise
            self._groups()  # Redis restarted: the groups went with it
            self._own = True
            return []
        except _DOWN:
            self._down()
            return []

    def _down(self) -> None:
        self.errors += 1
        self._own = True  # entries read but not acknowledged come back first
        time.sleep(min(1.0, 0.05 * 2 ** min(self.errors, 5)))
        try:
            self.r.ping()
            self.errors = 0
        except _DOWN:
            pass

    def rewind(self) -> None:
        self._own = True

    def ack(self, deliveries: list[Delivery]) -> None:
        if not deliveries:
            return
        p = self.bus.prefix
        by: dict[str, list[str]] = {}
        for d in deliveries:
            by.setdefault(p + d.stream, []).append(d.id)
        try:
            pipe = self.r.pipeline(transaction=False)
            for k, ids in by.items():
                pipe.xack(k, self.group, *ids)
            pipe.execute()
        except _DOWN:
            self._down()  # unacknowledged: delivered again, dropped as seen

    def claim(self, min_idle_ms: int, count: int) -> list[Delivery]:
        out: list[Delivery] = []
        try:
            for k in self.keys:
                _, entries, *_ = self.r.xautoclaim(k, self.group, self.consumer, min_idle_ms, "0-0", count=count)
                out.extend(self._deliveries([(k, [e for e in entries if e and e[0]])]))
        except redis.ResponseError as e:
            if "NOGROUP" not in str(e):
                raise
            self._groups()
        except _DOWN:
            self._down()
        return out

    def pending(self) -> int:
        try:
            return sum(int(self.r.xpending(k, self.group)["pending"]) for k in self.keys)
        except (redis.ResponseError, *_DOWN):
            return 0

    def lag(self) -> int:
        total = 0
        try:
            for k in self.keys:
                for g in self.r.xinfo_groups(k):
                    if g["name"].decode() == self.group:
                        total += int(g.get("lag") or 0)
        except (redis.ResponseError, *_DOWN):
            return 0
        return total
