"""The WebSocket connection a ``VenueFeed`` drives, behind one small interface (issue #15).

The feed only needs: open a connection (with a timeout, the venue's keep-alive), send text,
receive whole messages as ``bytes`` (``recv``, and ``recv_nowait`` for what has already
arrived: a burst is drained before detection runs), close, and why it closed. Two
implementations, chosen by ``[live] transport``:

- ``picows`` (``live/ws_picows.py``): a callback protocol written in Cython; frames are copied
  once into ``bytes`` and queued; less CPU per frame than ``websockets`` (the whole live path:
  0.76x per book message with uvloop, docs/benchmarks.md "Transport and bursts"). It does not
  implement permessage-deflate: venues send uncompressed frames to it (none of ours requires
  compression; see docs/scale.md).
- ``websockets``: the library the feed used before; offers permessage-deflate.

Both answer the venue's ping frames with pongs and, when ``ping_interval`` is set, send
protocol pings and drop a connection whose pong does not come back within ``PONG_TIMEOUT``.
Errors are this module's, whatever the library: ``BadURL`` (not retried), ``TransportError``
(the handshake failed), ``TransportClosed`` (the connection ended; ``code``/``reason`` of the
close frame when there was one). Timeouts are ``TimeoutError``, network failures ``OSError``.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from websockets.exceptions import ConnectionClosed

Transport = Literal["picows", "websockets"]
TRANSPORTS: tuple[str, ...] = ("picows", "websockets")
#: the largest message accepted (a full-depth snapshot of a busy market fits easily)
MAX_SIZE = 2**25
#: seconds a protocol ping waits for its pong before the connection is dropped (websockets' default)
PONG_TIMEOUT = 20.0


class TransportError(Exception):
    """The connection could not be opened (handshake refused, protocol error)."""


class BadURL(TransportError):
    """A URL no connection can be opened to: a configuration error, never retried."""


class TransportClosed(Exception):
    """The connection ended. ``code`` is the close frame's (1006: none came)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}".strip())
        self.code = code
        self.reason = reason


class WsConnection(Protocol):
    """One open WebSocket connection, as the feed uses it."""

    async def recv(self) -> bytes:
        """The next whole message (text frames as their UTF-8 bytes); ``TransportClosed`` at the end."""
        ...

    def recv_nowait(self) -> bytes | None:
        """A message that has already arrived, or None (never waits)."""
        ...

    async def send(self, text: str) -> None:
        """Send one text message (``TransportClosed`` when the connection is gone)."""
        ...

    async def close(self) -> None:
        """Close (idempotent); a ``recv`` waiting ends with ``TransportClosed``."""
        ...

    @property
    def close_code(self) -> int | None: ...

    @property
    def close_reason(self) -> str: ...


async def open_ws(transport: str, url: str, *, open_timeout: float, ping_interval: float | None,
                  max_size: int = MAX_SIZE) -> WsConnection:
    """Open ``url`` with the named transport (``TRANSPORTS``)."""
    if transport == "picows":
        from cryptoarb.live.ws_picows import open_picows

        return await open_picows(url, open_timeout=open_timeout, ping_interval=ping_interval, max_size=max_size)
    if transport == "websockets":
        return await WebsocketsConnection.open(url, open_timeout=open_timeout, ping_interval=ping_interval,
                                               max_size=max_size)
    raise ValueError(f"unknown transport {transport!r}: expected one of {', '.join(TRANSPORTS)}")


class WebsocketsConnection:
    """The ``websockets`` library (asyncio implementation), permessage-deflate offered."""

    __slots__ = ("_ws",)

    def __init__(self, ws: Any) -> None:
        self._ws = ws

    @classmethod
    async def open(cls, url: str, *, open_timeout: float, ping_interval: float | None,
                   max_size: int) -> WebsocketsConnection:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidHandshake, InvalidURI, WebSocketException

        try:
            ws = await connect(url, open_timeout=open_timeout, ping_interval=ping_interval,
                               ping_timeout=PONG_TIMEOUT, max_size=max_size, compression="deflate")
        except InvalidURI as e:
            raise BadURL(str(e)) from None
        except (InvalidHandshake, WebSocketException) as e:
            raise TransportError(f"{type(e).__name__}: {e}") from None
        return cls(ws)

    async def recv(self) -> bytes:
        try:
            # decode=False: a text frame comes as its UTF-8 bytes, not decoded and re-encoded
            frame: bytes = await self._ws.recv(decode=False)
        except ConnectionClosed as e:
            raise TransportClosed(e.rcvd.code if e.rcvd else 1006, e.rcvd.reason if e.rcvd else "") from None
        return frame

    def recv_nowait(self) -> bytes | None:
        return None  # websockets has no public non-blocking receive: every message is a batch of one

    async def send(self, text: str) -> None:
        try:
            await self._ws.send(text)
        except ConnectionClosed as e:
            raise TransportClosed(e.rcvd.code if e.rcvd else 1006, e.rcvd.reason if e.rcvd else "") from None

    async def close(self) -> None:
        await self._ws.close()

    @property
    def close_code(self) -> int | None:
        code: int | None = self._ws.close_code
        return code

    @property
    def close_reason(self) -> str:
        return self._ws.close_reason or ""


__all__ = ["MAX_SIZE", "PONG_TIMEOUT", "TRANSPORTS", "BadURL", "Transport", "TransportClosed", "TransportError",
           "WebsocketsConnection", "WsConnection", "open_ws"]
