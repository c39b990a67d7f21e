"""The feed's WebSocket transports (live/transport.py, live/ws_picows.py) against a local server
speaking the real protocol: whole messages out of fragments, text and binary alike, the venue's
pings answered, our protocol pings sent, a close frame's code and reason kept, bad URLs refused."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from cryptoarb.config import load_settings
from cryptoarb.config_check import ConfigError
from cryptoarb.live.loop import run_in_loop
from cryptoarb.live.transport import TRANSPORTS, BadURL, TransportClosed, open_ws


def _serve(session: Callable[[ServerConnection], Awaitable[None]], transport: str,
           client: Callable[[Any], Awaitable[Any]], ping_interval: float | None = None) -> Any:
    async def main() -> Any:
        async with serve(session, "127.0.0.1", 0, ping_interval=None) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            ws = await open_ws(transport, f"ws://127.0.0.1:{port}/", open_timeout=5, ping_interval=ping_interval)
            try:
                return await asyncio.wait_for(client(ws), 10)
            finally:
                await ws.close()

    return asyncio.run(main())


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_messages_come_whole_as_bytes_and_the_close_code_and_reason_are_kept(transport: str) -> None:
    async def session(ws: ServerConnection) -> None:
        await ws.send('{"a":1}')
        await ws.send(b"\x01\x02binary")
        await ws.send(iter(['{"frag', 'mented":', '"é"}']))  # one message in three frames
        await ws.close(4001, "venue going away")

    async def client(ws: Any) -> tuple[list[bytes], Any]:
        got = []
        try:
            while True:
                got.append(await ws.recv())
        except TransportClosed as e:
            return got, (e.code, e.reason, ws.close_code, ws.close_reason)

    got, closed = _serve(session, transport, client)
    assert got == [b'{"a":1}', b"\x01\x02binary", '{"fragmented":"é"}'.encode()]
    assert closed[:2] == (4001, "venue going away") and closed[2] == 4001 and closed[3] == "venue going away"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_venues_pings_are_answered_and_ours_are_sent(transport: str) -> None:
    pongs: list[float] = []
    pinged = asyncio.Event()

    async def session(ws: ServerConnection) -> None:
        orig = ws.protocol.recv_frame

        def spy(frame: Any) -> None:
            if frame.opcode.name == "PING":
                pinged.set()
            orig(frame)

        ws.protocol.recv_frame = spy  # type: ignore[method-assign]
        t0 = time.monotonic()
        await asyncio.wait_for(await ws.ping(), 5)  # the client's pong
        pongs.append(time.monotonic() - t0)
        await ws.send("after the pong")
        await ws.wait_closed()

    async def client(ws: Any) -> bytes:
        first: bytes = await ws.recv()
        await asyncio.wait_for(pinged.wait(), 5)  # our protocol ping (ping_interval) came too
        return first

    assert _serve(session, transport, client, ping_interval=0.1) == b"after the pong"
    assert len(pongs) == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_sending_text_and_draining_what_already_arrived(transport: str) -> None:
    async def session(ws: ServerConnection) -> None:
        async for msg in ws:
            for i in range(int(msg)):
                await ws.send(f"{i}")

    async def client(ws: Any) -> list[bytes]:
        await ws.send("50")
        got = [await ws.recv()]
        while len(got) < 50:
            more = ws.recv_nowait()
            got.append(more if more is not None else await ws.recv())
        return got

    assert _serve(session, transport, client) == [str(i).encode() for i in range(50)]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("url", ["http://127.0.0.1:9/", "not a url"])
def test_a_bad_url_is_a_clear_error(transport: str, url: str) -> None:
    with pytest.raises(BadURL):
        asyncio.run(open_ws(transport, url, open_timeout=1, ping_interval=None))


def test_transport_and_loop_settings_are_checked() -> None:
    s = load_settings(storage={"enabled": False})
    assert (s.live.transport, s.live.loop) == ("picows", "uvloop")
    assert load_settings(live={"transport": "websockets", "loop": "asyncio"}).live.transport == "websockets"
    with pytest.raises(ConfigError, match=r"live\.transport"):
        load_settings(live={"transport": "aiohttp"})
    with pytest.raises(ConfigError, match=r"live\.loop"):
        load_settings(live={"loop": "trio"})


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_the_live_loop_is_the_one_named(loop: str) -> None:
    async def kind() -> str:
        return type(asyncio.get_running_loop()).__module__.split(".")[0]

    assert run_in_loop(loop, kind()) == loop
    with pytest.raises(ValueError, match="trio"):
        run_in_loop("trio", kind())


def _self_signed(tmp: Path) -> Path:
    """A certificate for 127.0.0.1 (and its key, in one PEM file), made for the test."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    pem = tmp / "venue.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return pem


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_wss_checks_the_venues_certificate(transport: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """wss:// is TLS with the default context: a certificate the system trusts is accepted (here
    one made for the test, trusted through SSL_CERT_FILE), any other refused."""
    pem = _self_signed(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(pem)

    async def session(ws: ServerConnection) -> None:
        await ws.send("over tls")
        await ws.wait_closed()

    async def main() -> bytes:
        async with serve(session, "127.0.0.1", 0, ssl=server_ctx) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            ws = await open_ws(transport, f"wss://127.0.0.1:{port}/", open_timeout=5, ping_interval=None)
            try:
                got: bytes = await asyncio.wait_for(ws.recv(), 5)
                return got
            finally:
                await ws.close()

    with pytest.raises((ssl.SSLError, OSError)):  # not trusted yet: refused
        asyncio.run(main())
    monkeypatch.setenv("SSL_CERT_FILE", str(pem))
    assert asyncio.run(main()) == b"over tls"
