"""The WebSocket stream: authentication, what a client receives while a demo engine trades, kinds,
too many clients, slow clients dropped; the hub never blocks its publisher."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect

from cryptoarb.api.hub import StreamHub
from cryptoarb.api.link import EngineLink
from cryptoarb.config import load_settings
from tests.api_support import (
    Api,
    add_users,
    cheap_argon2,  # noqa: F401  (autouse fixture)
    forge,
    make_api,
    open_db,
)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    request.getfixturevalue("cheap_argon2")
    from cryptoarb.demo.run import build_demo

    db, url, _ = open_db("sqlite", tmp_path_factory.mktemp("stream"))
    add_users(db)
    demo = build_demo(load_settings(), seed=1)
    link = EngineLink(demo.engine, StreamHub(max_clients=3, queue_size=50), mode="demo").attach()
    api = make_api(db, url, link=link, login_per_ip=10_000)
    with api.client:
        yield {"api": api, "demo": demo, "link": link, "token": api.login()["access_token"]}
    db.dispose()


def _auth(ws: Any, token: str, kinds: list[str] | None = None) -> dict[str, Any]:
    ws.send_json({"type": "auth", "token": token, **({"kinds": kinds} if kinds else {})})
    hello = ws.receive_json()
    assert hello["kind"] == "hello", hello
    return hello  # type: ignore[no-any-return]


def test_a_client_sees_the_engine_trade(env: dict[str, Any]) -> None:
    api: Api = env["api"]
    with api.client.websocket_connect("/api/stream") as ws:
        hello = _auth(ws, env["token"])
        assert hello["data"]["user"] == "root" and "trade" in hello["data"]["kinds"]
        # the engine runs on its own thread, as beside a real run; the API pumps nothing itself
        t = threading.Thread(target=env["demo"].run, args=(20.0,),
                             kwargs={"live": False, "speed": 0, "tick": env["link"].pump})
        t.start()
        seen: dict[str, list[dict[str, Any]]] = {}
        deadline = time.monotonic() + 60
        while not ({"opportunity", "trade", "book", "venue", "pnl", "risk"} <= seen.keys()):
            assert time.monotonic() < deadline, sorted(seen)
            msg = ws.receive_json()
            assert set(msg) == {"kind", "ts", "data"} and isinstance(msg["ts"], int)
            seen.setdefault(msg["kind"], []).append(msg["data"])
        t.join(30)
    trade = seen["trade"][0]
    assert trade["run_id"] == env["demo"].engine.run_id and len(trade["legs"]) == 2 and trade["closed_ns"]
    assert {"expected_pnl", "realized_pnl", "fees_quote"} <= set(trade)
    opp = seen["opportunity"][0]
    assert opp["profit_bps"] > 0 and opp["buy_key"] != opp["sell_key"]
    book = next(b for b in seen["book"][::-1] if b["books"])  # the first tick may precede the first book
    assert book["group"] and {"key", "venue", "bid", "ask", "age_ms", "valid"} <= set(book["books"][0])
    venue = seen["venue"][-1]
    assert venue["venue"] in env["demo"].engine.venues and {"state", "messages_per_s", "book_age_ms"} <= set(venue)


def test_kinds_filter_and_state_replay(env: dict[str, Any]) -> None:
    env["link"].pump()  # state messages for the hub to remember
    time.sleep(0.2)
    with env["api"].client.websocket_connect("/api/stream") as ws:
        _auth(ws, env["token"], ["pnl"])
        first = ws.receive_json()
        assert first["kind"] == "pnl" and "total" in first["data"]  # the latest state, at once


def test_header_auth(env: dict[str, Any]) -> None:
    with env["api"].client.websocket_connect("/api/stream", headers={"Authorization": f"Bearer {env['token']}"}) as ws:
        assert ws.receive_json()["kind"] == "hello"


@pytest.mark.parametrize(("first", "code", "why"), [
    ({"type": "auth", "token": "garbage"}, 4401, "malformed token"),
    ({"type": "auth", "token": "EXPIRED"}, 4401, "expired"),
    ({"type": "hello"}, 4400, "first message"),
    ("not json", 4400, "JSON"),
    ({"type": "auth", "token": "GOOD", "kinds": ["secrets"]}, 4400, "unknown kinds"),
])
def test_refused_clients(env: dict[str, Any], first: Any, code: int, why: str) -> None:
    if isinstance(first, dict) and first.get("token") == "EXPIRED":
        first = {**first, "token": forge({"exp": int(time.time()) - 1, "iat": int(time.time()) - 60})}
    if isinstance(first, dict) and first.get("token") == "GOOD":
        first = {**first, "token": env["token"]}
    with env["api"].client.websocket_connect("/api/stream") as ws:
        if isinstance(first, str):
            ws.send_text(first)
        else:
            ws.send_json(first)
        with pytest.raises(WebSocketDisconnect) as e:
            ws.receive_json()
    assert e.value.code == code and why in e.value.reason


def test_too_many_clients(env: dict[str, Any]) -> None:
    api = env["api"]
    with (api.client.websocket_connect("/api/stream") as a, api.client.websocket_connect("/api/stream") as b,
          api.client.websocket_connect("/api/stream") as c):
        for ws in (a, b, c):
            _auth(ws, env["token"], ["trade"])
        with api.client.websocket_connect("/api/stream") as d:
            d.send_json({"type": "auth", "token": env["token"]})
            with pytest.raises(WebSocketDisconnect) as e:
                d.receive_json()
        assert e.value.code == 1013 and "too many stream clients (at most 3)" in e.value.reason
    deadline = time.monotonic() + 5
    while env["link"].hub.clients and time.monotonic() < deadline:
        time.sleep(0.02)
    assert env["link"].hub.clients == 0


def test_a_slow_client_is_dropped_and_the_publisher_never_waits() -> None:
    async def scenario() -> None:
        hub = StreamHub(max_clients=10, queue_size=10, inbox_size=1_000)
        runner = asyncio.ensure_future(hub.run())
        await asyncio.sleep(0)
        slow = hub.subscribe(["trade"], name="slow")
        fast = hub.subscribe(["trade"], name="fast")
        for i in range(30):  # from another thread, as the engine does
            await asyncio.to_thread(hub.publish, "trade", {"id": i})
            if not fast.queue.empty():
                fast.queue.get_nowait()
        await asyncio.sleep(0.05)
        assert slow.dropped and not fast.dropped and hub.stats.dropped_clients == 1
        runner.cancel()

    asyncio.run(scenario())
    hub = StreamHub(inbox_size=100)  # no loop running at all: publishing still returns at once
    t0 = time.perf_counter()
    for i in range(1_000):
        hub.publish("opportunity", {"id": i})
    assert hub.stats.dropped_inbox == 900 and time.perf_counter() - t0 < 5
    hub.publish("book", object())  # a payload nobody can convert: counted when drained, never raised
    assert hub.drain() == 100 and hub.stats.dropped_inbox == 901  # the inbox keeps the newest 100
    assert hub.stats.bad_payloads == 1 and hub.stats.published == 99 and "book" in hub.stats.last_error


def test_slow_websocket_client_is_closed_1008(env: dict[str, Any]) -> None:
    api, hub = env["api"], env["link"].hub
    with api.client.websocket_connect("/api/stream") as ws:
        _auth(ws, env["token"], ["opportunity"])
        for i in range(200):  # the client reads nothing meanwhile: its 50-message queue overflows
            hub.publish("opportunity", {"id": i, "tag": uuid.uuid4().hex})
        got = 0
        with pytest.raises(WebSocketDisconnect) as e:
            while True:
                ws.receive_json()
                got += 1
        assert e.value.code == 1008 and "too slow" in e.value.reason and got < 200
