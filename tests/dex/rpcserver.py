"""A JSON-RPC node on 127.0.0.1 in front of the eth-tester chain, so that a real ``arb`` process
(or an in-process client) talks to the deployed Uniswap contracts over HTTP, as it would to a
node provider.

Each request, single or batch, goes through web3's ``EthereumTesterProvider`` with its request
middleware (wire format in, eth-tester's format out) and the answer is put back into wire
format: every integer a hex quantity, bytes as 0x-hex. Reverts and node errors become JSON-RPC
errors. eth-tester is not thread-safe: requests are served one at a time under ``lock``, and a
test must not touch the chain directly while a client is running against the server.

Faults: ``mode = "error"`` answers HTTP 503 to everything (a node outage), so tests can make
the RPC fail mid-run and heal it again.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from aiohttp import web
from eth_tester import EthereumTester
from web3 import Web3
from web3.datastructures import NamedElementOnion
from web3.providers.eth_tester import EthereumTesterProvider


def to_wire(obj: Any) -> Any:
    """A result in JSON-RPC wire format: ints as hex quantities, bytes as 0x-hex."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, int):
        return hex(obj)
    if isinstance(obj, bytes | bytearray):
        return "0x" + bytes(obj).hex()
    if isinstance(obj, dict):
        return {k: to_wire(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_wire(v) for v in obj]
    return str(obj)


class RpcServer:
    """``RpcServer(tester).start()``; ``url``; ``stop()``. Counts methods served in ``methods``."""

    def __init__(self, tester: EthereumTester) -> None:
        self.provider = EthereumTesterProvider(tester)
        self._fn = self.provider.request_func(Web3(self.provider), NamedElementOnion([]))
        self.lock = threading.Lock()
        self.mode: str | None = None
        self.methods: list[str] = []
        self.batches = 0
        self.refused = 0
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    def count(self, method: str) -> int:
        return self.methods.count(method)

    def _one(self, req: dict[str, Any]) -> dict[str, Any]:
        rid = req.get("id")
        method = str(req.get("method", ""))
        self.methods.append(method)
        try:
            resp = self._fn(method, req.get("params") or [])
        except Exception as e:  # reverts (TransactionFailed), bad nonces (ValidationError), ...
            code = 3 if "revert" in str(e).lower() else -32000
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": str(e)}}
        if "error" in resp:
            return {"jsonrpc": "2.0", "id": rid, "error": dict(resp["error"])}
        return {"jsonrpc": "2.0", "id": rid, "result": to_wire(resp.get("result"))}

    async def _handle(self, request: web.Request) -> web.Response:
        if self.mode == "error":
            self.refused += 1
            return web.Response(status=503, text="node unavailable (simulated outage)")
        body = await request.json()
        with self.lock:
            if isinstance(body, list):
                self.batches += 1
                out: Any = [self._one(r) for r in body]
            else:
                out = self._one(body)
        return web.json_response(out)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> RpcServer:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("JSON-RPC server did not start")
        return self

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = web.Application(client_max_size=2**24)
        app.router.add_post("/", self._handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}/"
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> RpcServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
