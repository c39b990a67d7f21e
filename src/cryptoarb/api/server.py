"""Serving the API: standalone (``arb api``) or beside a run on its own thread.

Beside a run (``arb demo``, ``arb run --live --api``) uvicorn gets a thread and an event loop of
its own: requests, JSON encoding and the stream's fan-out never run on the engine's thread or
loop. The engine meets the API only through :class:`~cryptoarb.api.link.EngineLink` (listeners
that append to a deque, a snapshot a few times a second, queued commands).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import uvicorn
from sqlalchemy import Engine

from cryptoarb.api.app import create_app
from cryptoarb.api.auth import Tokens, load_secret
from cryptoarb.api.context import ApiContext
from cryptoarb.api.hub import StreamHub
from cryptoarb.api.link import EngineLink
from cryptoarb.config import Settings
from cryptoarb.redact import install_log_redaction

log = logging.getLogger(__name__)


class PortInUse(OSError):
    pass


def build_context(settings: Settings, db: Engine, dev: bool = False, link: EngineLink | None = None,
                  hub: StreamHub | None = None) -> ApiContext:
    """The API's context; refuses a weak JWT secret outside dev mode (auth.SecretRefused)."""
    secret, _where = load_secret(settings.api, dev)
    install_log_redaction([secret])  # the secret never shows in a log line
    a = settings.api
    hub = hub or (link.hub if link is not None else StreamHub(a.max_stream_clients, a.stream_queue))
    return ApiContext(settings, db, Tokens(db, secret, a), hub, link, dev=dev or a.dev)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound now (so a busy port is an error before anything runs)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise PortInUse(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _config(ctx: ApiContext, access_log: bool) -> uvicorn.Config:
    return uvicorn.Config(create_app(ctx), log_level="warning", access_log=access_log, lifespan="on",
                          ws_max_size=65_536, ws_ping_interval=20.0, ws_ping_timeout=20.0, timeout_graceful_shutdown=2)


@dataclass
class ApiThread:
    """uvicorn on a daemon thread: :meth:`start` returns once it accepts connections."""

    ctx: ApiContext
    sock: socket.socket
    server: Any = None
    thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"

    def start(self, timeout: float = 10.0) -> ApiThread:
        self.server = uvicorn.Server(_config(self.ctx, access_log=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, name="arb-api",
                                       daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout)
        self.sock.close()


def serve_forever(ctx: ApiContext, sock: socket.socket) -> None:
    """``arb api``: uvicorn in this thread until Ctrl-C/SIGTERM."""
    server = uvicorn.Server(_config(ctx, access_log=False))
    server.run(sockets=[sock])
