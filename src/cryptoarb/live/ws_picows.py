"""The picows transport of ``VenueFeed`` (``[live] transport = "picows"``, ``live/transport.py``).

picows parses frames in Cython and calls ``on_ws_frame`` for each; here a whole message is
copied once into ``bytes`` (the handler keeps nothing of it, but it outlives the callback) and
queued for the feed's receive loop, which drains what has already arrived without waiting
(``recv_nowait``: a burst in one read is handled as a batch). Fragmented messages are joined;
text and binary are both delivered as bytes; the venue's ping frames are answered by picows
(auto-pong); our own protocol pings (``ping_interval``) are picows' auto-ping, periodic, and a
pong missing for ``PONG_TIMEOUT`` (at most the interval: picows' rule) drops the connection.
A close frame from the venue is echoed and its code and reason kept. TLS: ``wss://`` gets the
default SSL context (certificates checked).

Back-pressure: past ``HIGH_WATER`` queued messages the socket stops being read (the venue sees a
slow consumer, as with ``websockets``' ``max_queue``) until the loop has caught up to ``LOW_WATER``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque

from picows import (
    WSAutoPingStrategy,
    WSCloseCode,
    WSError,
    WSFrame,
    WSListener,
    WSMsgType,
    WSProtocolError,
    WSTransport,
    ws_connect,
)
from picows.url import WSInvalidURL

from cryptoarb.live.transport import MAX_SIZE, PONG_TIMEOUT, BadURL, TransportClosed, TransportError

HIGH_WATER = 64
#: seconds a close may wait for unsent data to leave (websockets' close_timeout is the same)
CLOSE_TIMEOUT = 10.0
LOW_WATER = 16

_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY
_CONT = WSMsgType.CONTINUATION
_CLOSE = WSMsgType.CLOSE
_PING = WSMsgType.PING


class _Listener(WSListener):
    """picows' callbacks: whole messages into ``queue``; wakes the receive loop when it waits."""

    def __init__(self) -> None:
        super().__init__()
        self.queue: deque[bytes] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.parts: bytearray | None = None  # a fragmented message being joined
        self.transport: WSTransport | None = None
        self.closed = False
        self.paused = False
        self.code: int | None = None
        self.reason = ""
        self.max_size = MAX_SIZE

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        mt = frame.msg_type
        if mt in (_TEXT, _BINARY):
            if frame.fin:
                self._push(frame.get_payload_as_bytes())
            else:
                self.parts = bytearray(frame.get_payload_as_memoryview())
        elif mt == _CONT:
            if self.parts is None:
                return  # a continuation of nothing: picows would have refused a broken stream
            self.parts += frame.get_payload_as_memoryview()
            if len(self.parts) > self.max_size:
                raise WSProtocolError(WSCloseCode.MESSAGE_TOO_BIG, "message too big")
            if frame.fin:
                raw, self.parts = bytes(self.parts), None
                self._push(raw)
        elif mt == _CLOSE:
            # read from the payload: a venue's own codes (4000-4999) are not picows' enum members
            body = frame.get_payload_as_bytes()
            self.code = int.from_bytes(body[:2], "big") if len(body) >= 2 else 1005
            self.reason = body[2:].decode("utf-8", "replace")
            transport.send_close(WSCloseCode.OK)
            transport.disconnect()
        elif mt == _PING:  # auto-pong answers pings before they reach here; kept for safety
            transport.send_pong(frame.get_payload_as_bytes())

    def _push(self, raw: bytes) -> None:
        q = self.queue
        q.append(raw)
        w = self.waiter
        if w is not None:
            self.waiter = None
            if not w.done():
                w.set_result(None)
        if len(q) > HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.underlying_transport.pause_reading()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.closed = True
        w = self.waiter
        if w is not None:
            self.waiter = None
            if not w.done():
                w.set_result(None)


class PicowsConnection:
    """One picows connection behind the feed's interface (``transport.WsConnection``)."""

    __slots__ = ("_l", "_t")

    def __init__(self, transport: WSTransport, listener: _Listener) -> None:
        self._t = transport
        self._l = listener

    async def recv(self) -> bytes:
        lst = self._l
        q = lst.queue
        while not q:
            if lst.closed:
                raise self._closed()
            w = lst.waiter = asyncio.get_running_loop().create_future()
            await w
        if lst.paused and len(q) <= LOW_WATER:
            self._resume()
        return q.popleft()

    def recv_nowait(self) -> bytes | None:
        lst = self._l
        q = lst.queue
        if not q:
            return None
        if lst.paused and len(q) <= LOW_WATER:
            self._resume()
        return q.popleft()

    def _resume(self) -> None:
        self._l.paused = False
        if not self._l.closed:
            self._t.underlying_transport.resume_reading()

    def _closed(self) -> TransportClosed:
        lst = self._l
        return TransportClosed(lst.code if lst.code is not None else 1006, lst.reason)

    async def send(self, text: str) -> None:
        if self._l.closed or self._t.is_close_frame_sent:
            raise self._closed()
        self._t.send(_TEXT, text.encode())

    async def close(self) -> None:
        if not self._l.closed:
            self._t.send_close(WSCloseCode.OK)
            self._t.disconnect()
        # ends with the socket (the venue's close echo is not waited for: the stream is over);
        # a peer that stops reading cannot hold the close: aborted after CLOSE_TIMEOUT
        try:
            with contextlib.suppress(WSError, OSError):  # why it ended is in close_code and close_reason
                await asyncio.wait_for(self._t.wait_disconnected(), CLOSE_TIMEOUT)
        except TimeoutError:
            self._t.disconnect(graceful=False)

    @property
    def close_code(self) -> int | None:
        return self._l.code

    @property
    def close_reason(self) -> str:
        return self._l.reason


async def open_picows(url: str, *, open_timeout: float, ping_interval: float | None,
                      max_size: int) -> PicowsConnection:
    ctx = ssl.create_default_context() if url.startswith("wss:") else None
    every = ping_interval or PONG_TIMEOUT
    try:
        transport, listener = await asyncio.wait_for(ws_connect(
            _Listener, url, ssl_context=ctx, websocket_handshake_timeout=open_timeout,
            enable_auto_ping=ping_interval is not None, auto_ping_idle_timeout=every,
            auto_ping_reply_timeout=min(PONG_TIMEOUT, every), auto_ping_strategy=WSAutoPingStrategy.PING_PERIODICALLY,
            enable_auto_pong=True, max_frame_size=max_size, logger_name="cryptoarb.ws",
        ), open_timeout)
    except WSInvalidURL as e:
        raise BadURL(str(e)) from None
    except WSError as e:
        raise TransportError(f"{type(e).__name__}: {e}") from None
    assert isinstance(listener, _Listener)
    listener.max_size = max_size
    return PicowsConnection(transport, listener)


__all__ = ["CLOSE_TIMEOUT", "HIGH_WATER", "LOW_WATER", "PicowsConnection", "open_picows"]
