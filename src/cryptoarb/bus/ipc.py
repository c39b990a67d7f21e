"""A bus between processes of one machine, with no server: a Unix socket owned by the parent.

``IpcHub`` (the parent) listens on a socket path; each ``IpcTransport`` (a shard, or any
process given ``ipc:///path``) connects to it. The semantics are the bus interface's
(``base.py``) across the socket: what one side ``publish``-es, the other side's subscriptions
read -- the hub reads every peer's streams, a peer reads what the hub publishes (broadcast to
every peer). Received entries land in an in-process :class:`MemoryTransport`, which gives
consumer groups, acknowledgements, pending and claims exactly as in one process.

``publish`` never blocks: it appends to a deque, and a sender thread writes batches (one
msgpack frame of ``[stream, data]`` pairs per batch). A peer whose socket closes (the other
process died or stopped) sets ``closed``; nothing is retried across a lost connection (the
processes of one run live and die together: docs/scale.md, "Sharding").
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import threading
from collections import deque
from multiprocessing.connection import Client, Connection, Listener
from typing import Any

import msgspec

from cryptoarb.bus.base import DLQ, BusError, Delivery
from cryptoarb.bus.memory import MemorySubscription, MemoryTransport

_BATCH = 1000
_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(list[tuple[str, bytes]])


class _Link:
    """One socket: a sender thread draining a deque, a reader thread filling ``inbox``."""

    def __init__(self, conn: Connection, inbox: MemoryTransport, name: str) -> None:
        self.conn = conn
        self.inbox = inbox
        self.closed = threading.Event()
        self._q: deque[tuple[str, bytes]] = deque()
        self._cv = threading.Condition()
        self._inflight = 0
        self._send = threading.Thread(target=self._sender, name=f"ipc-send-{name}", daemon=True)
        self._recv = threading.Thread(target=self._reader, name=f"ipc-recv-{name}", daemon=True)
        self._send.start()
        self._recv.start()

    def put(self, stream: str, data: bytes) -> None:
        self._q.append((stream, data))
        with self._cv:
            self._cv.notify()

    def _sender(self) -> None:
        q = self._q
        while not self.closed.is_set():
            with self._cv:
                while not q and not self.closed.is_set():
                    self._cv.wait(0.5)
            batch: list[tuple[str, bytes]] = []
            while q and len(batch) < _BATCH:
                batch.append(q.popleft())
            if not batch:
                continue
            self._inflight = len(batch)
            try:
                self.conn.send_bytes(_enc.encode(batch))
            except (OSError, ValueError):
                self.closed.set()
            self._inflight = 0
            with self._cv:
                self._cv.notify_all()

    def _reader(self) -> None:
        try:
            while True:
                for stream, data in _dec.decode(self.conn.recv_bytes()):
                    self.inbox.publish(stream, data)
        except (EOFError, OSError, msgspec.DecodeError, msgspec.ValidationError):
            pass
        finally:
            self.closed.set()
            with self._cv:
                self._cv.notify_all()
            # wake readers blocked on the inbox: the link is gone
            with self.inbox._cond:
                self.inbox._cond.notify_all()

    def flush(self, timeout: float) -> bool:
        with self._cv:
            return self._cv.wait_for(lambda: (not self._q and not self._inflight) or self.closed.is_set(), timeout) \
                and not self._q

    def backlog(self) -> int:
        return len(self._q) + self._inflight

    def close(self) -> None:
        self.closed.set()
        with self._cv:
            self._cv.notify_all()
        # shut the socket down first: a close alone would not wake our own reader blocked on it,
        # and the other side would not see the end
        with contextlib.suppress(OSError, ValueError):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, fileno=os.dup(self.conn.fileno()))
            with sock:
                sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.conn.close()


class IpcTransport:
    """A peer: connects to the hub at ``address`` (a Unix socket path)."""

    def __init__(self, address: str, authkey: bytes | None = None, maxlen: int = 100_000) -> None:
        try:
            conn = Client(address, family="AF_UNIX", authkey=authkey)
        except (OSError, EOFError) as e:
            raise BusError(f"bus ipc://{address}: cannot connect ({type(e).__name__}: {e})") from None
        except Exception as e:  # multiprocessing.AuthenticationError
            raise BusError(f"bus ipc://{address}: {e}") from None
        self.inbox = MemoryTransport(maxlen)
        self._link = _Link(conn, self.inbox, "peer")

    @property
    def closed(self) -> threading.Event:
        """Set once the hub is gone (its process stopped or died)."""
        return self._link.closed

    def publish(self, stream: str, data: bytes) -> None:
        self._link.put(stream, data)

    def flush(self, timeout: float) -> bool:
        return self._link.flush(timeout)

    def subscribe(self, group: str, consumer: str, streams: list[str]) -> MemorySubscription:
        return self.inbox.subscribe(group, consumer, streams)

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        self.inbox.dead_letter(delivery, reason)

    def backlog(self) -> int:
        return self._link.backlog()

    def close(self) -> None:
        self._link.flush(5.0)
        self._link.close()


class IpcHub:
    """The parent side: listens on a fresh socket path (``address``); reads what every peer
    publishes; ``publish`` goes to every peer connected."""

    def __init__(self, maxlen: int = 100_000, authkey: bytes | None = None) -> None:
        self._dir = tempfile.mkdtemp(prefix="arb-ipc-")
        self.address = os.path.join(self._dir, "bus.sock")
        self.authkey = authkey if authkey is not None else os.urandom(16)
        self._listener = Listener(self.address, family="AF_UNIX", authkey=self.authkey)
        self.inbox = MemoryTransport(maxlen)
        self.links: list[_Link] = []
        self._lock = threading.Lock()
        self._closing = False
        self._accept = threading.Thread(target=self._acceptor, name="ipc-accept", daemon=True)
        self._accept.start()

    @property
    def url(self) -> str:
        return f"ipc://{self.address}"

    def _acceptor(self) -> None:
        while not self._closing:
            try:
                conn = self._listener.accept()
            except Exception:  # closed, or a peer that failed authentication
                if self._closing:
                    return
                continue
            with self._lock:
                if self._closing:  # accepted while closing: this peer must see the end too
                    conn.close()
                    return
                self.links.append(_Link(conn, self.inbox, f"hub{len(self.links)}"))

    def publish(self, stream: str, data: bytes) -> None:
        with self._lock:
            links = list(self.links)
        for link in links:
            if not link.closed.is_set():
                link.put(stream, data)

    def flush(self, timeout: float) -> bool:
        with self._lock:
            links = list(self.links)
        return all(link.flush(timeout) for link in links)

    def subscribe(self, group: str, consumer: str, streams: list[str]) -> MemorySubscription:
        return self.inbox.subscribe(group, consumer, streams)

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        self.inbox.publish(DLQ, f"{delivery.stream} {delivery.id} {reason}".encode() + b"\n" + delivery.data)

    def backlog(self) -> int:
        with self._lock:
            return sum(link.backlog() for link in self.links)

    def close(self) -> None:
        self.flush(5.0)
        with self._lock:
            self._closing = True
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            for link in self.links:
                link.close()
        with contextlib.suppress(OSError):
            os.unlink(self.address)
        with contextlib.suppress(OSError):
            os.rmdir(self._dir)


def open_ipc(url: str, maxlen: int = 100_000, authkey: Any = None) -> IpcTransport:
    """``ipc:///path/to/socket`` -> a peer of the hub listening there."""
    path = url[len("ipc://"):]
    if not path.startswith("/"):
        raise BusError(f"bus URL {url!r}: use ipc:///absolute/path/to/socket")
    key = os.environ.get("ARB_IPC_KEY")
    return IpcTransport(path, authkey if authkey is not None else (bytes.fromhex(key) if key else None), maxlen)
