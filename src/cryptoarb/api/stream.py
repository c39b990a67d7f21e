"""``/api/stream``: the live WebSocket, authenticated by an access token.

The token comes in an ``Authorization: Bearer`` header (scripts) or, from a browser, as the first
message within 5 s: ``{"type": "auth", "token": "<access token>", "kinds": ["trade", ...]}``
(``kinds`` optional: every kind). Tokens never go in the URL (it would land in access logs).
The server answers ``{"kind": "hello", "data": {"user", "role", "kinds"}}``, then the latest state
messages, then live ones (docs/api.md). Close codes: 4401 unauthenticated or token expired (get a
fresh token and reconnect), 4400 a bad first message, 1013 too many clients, 1008 too slow (the
client's queue filled up).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from cryptoarb.api.auth import Claims, TokenError
from cryptoarb.api.context import ApiContext
from cryptoarb.api.hub import ALL_KINDS, KINDS, TooManyClients, dumps

router = APIRouter()
AUTH_TIMEOUT_S = 5.0
MAX_FIRST_MESSAGE = 8_192

UNAUTHORIZED, BAD_REQUEST, TRY_LATER, POLICY = 4401, 4400, 1013, 1008


async def _first_message(ws: WebSocket) -> dict[str, Any]:
    try:
        raw = await asyncio.wait_for(ws.receive_text(), AUTH_TIMEOUT_S)
    except TimeoutError:
        raise ValueError(f"no auth message within {AUTH_TIMEOUT_S:g} s") from None
    if len(raw) > MAX_FIRST_MESSAGE:
        raise ValueError("auth message too large")
    try:
        msg = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValueError("the first message must be JSON: {\"type\": \"auth\", \"token\": \"...\"}") from None
    if not isinstance(msg, dict) or msg.get("type") != "auth" or not isinstance(msg.get("token"), str):
        raise ValueError("the first message must be {\"type\": \"auth\", \"token\": \"...\"}")
    return msg


def _kinds(value: Any) -> frozenset[str]:
    if value is None:
        return frozenset(KINDS)
    if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
        raise ValueError("kinds must be a list of strings")
    unknown = sorted(set(value) - set(ALL_KINDS))
    if unknown:
        raise ValueError(f"unknown kinds {unknown} (kinds: {', '.join(ALL_KINDS)})")
    return frozenset(value)


@router.websocket("/api/stream")
async def stream(ws: WebSocket) -> None:
    c: ApiContext = ws.app.state.ctx
    await ws.accept()
    header = ws.headers.get("authorization", "")
    try:
        if header.lower().startswith("bearer "):
            token, kinds = header[7:].strip(), frozenset(KINDS)
        else:
            first = await _first_message(ws)
            token, kinds = first["token"], _kinds(first.get("kinds"))
    except ValueError as e:
        await ws.close(BAD_REQUEST, str(e)[:120])
        return
    except WebSocketDisconnect:
        return
    try:
        user: Claims = await asyncio.to_thread(c.tokens.authenticate, token)
    except TokenError as e:
        await ws.close(UNAUTHORIZED, str(e)[:120])
        return
    try:
        client = c.hub.subscribe(kinds, name=user.sub)
    except TooManyClients as e:
        await ws.close(TRY_LATER, str(e)[:120])
        return
    c.metrics.stream_clients.set(c.hub.clients)
    try:
        await ws.send_text(dumps({"kind": "hello", "ts": time.time_ns(),
                                  "data": {"user": user.sub, "role": user.role, "kinds": sorted(kinds)}}))
        reader = asyncio.ensure_future(_drain_incoming(ws))
        try:
            await _send_loop(ws, client, user, reader, c.metrics.stream_send.observe)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass
    finally:
        c.hub.unsubscribe(client)
        c.metrics.stream_clients.set(c.hub.clients)
        c.metrics.stream_dropped.set(c.hub.stats.dropped_clients)


async def _send_loop(ws: WebSocket, client: Any, user: Claims, reader: asyncio.Future[None],
                     observe: Callable[[float], None]) -> None:
    """Send the client's queue until it goes away, is dropped or its token expires; ``observe``
    gets each message's time from publish to handed to the socket (seconds). One watcher per
    connection (not per message): the sender itself only awaits its queue and the socket."""

    async def sender() -> None:
        q = client.queue
        while True:
            ts, msg = await q.get()
            if client.dropped:
                await ws.close(POLICY, f"too slow: more than {q.maxsize} messages behind; reconnect")
                return
            await ws.send_text(msg)
            client.sent += 1
            observe((time.time_ns() - ts) / 1e9)

    task = asyncio.ensure_future(sender())
    try:
        done, _ = await asyncio.wait({task, reader}, timeout=max(0.0, user.exp - time.time()),
                                     return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()  # the sender's own end (dropped), or its error
        elif reader not in done:  # neither: the token expired
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await ws.close(UNAUTHORIZED, "token expired: refresh it and reconnect")
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _drain_incoming(ws: WebSocket) -> None:
    """Read (and ignore) what the client sends, so a disconnect is noticed at once."""
    while True:
        msg = await ws.receive()
        if msg["type"] == "websocket.disconnect":
            return
