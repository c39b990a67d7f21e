"""Local alert receivers speaking the real protocols, on 127.0.0.1 ports of their own.

* :class:`Webhook`: an HTTP server recording the JSON that apprise's ``json://`` plugin POSTs.
* :class:`Smtp`: an aiosmtpd server recording the mails apprise's ``mailto://`` plugin sends.
* :class:`BlackHole`: accepts TCP connections and never answers (a hanging channel).
* :func:`closed_port`: a port nothing listens on (a dead channel: connection refused).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_port() -> int:
    return free_port()  # bound then closed: nothing listens there


def wait_for(cond: Any, timeout: float = 20.0, step: float = 0.02) -> bool:
    """Poll ``cond()`` until true (a generous deadline: a condition, not a speed test)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return bool(cond())


class Webhook:
    """POSTed JSON bodies in ``received`` (with the request path and headers)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                outer.received.append({"path": self.path, "headers": dict(self.headers), "json": json.loads(body)})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "hook", scheme: str = "json") -> str:
        return f"{scheme}://127.0.0.1:{self.port}/{path}"

    def titles(self) -> list[str]:
        return [r["json"]["title"] for r in self.received]

    def __enter__(self) -> Webhook:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class Smtp:
    """An aiosmtpd server; ``messages`` holds the parsed mails (``email.message.Message``)."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[Any] = []
        outer = self

        class Handler:
            async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
                outer.messages.append(message_from_bytes(envelope.content))
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def url(self, to: str = "ops@example.com") -> str:
        return f"mailto://127.0.0.1:{self.port}?from=cryptoarb@example.com&to={to}"

    def bodies(self) -> list[str]:
        out = []
        for m in self.messages:
            part = next((p for p in m.walk() if p.get_content_type() == "text/plain"), m)
            out.append(part.get_payload(decode=True).decode())
        return out

    def __enter__(self) -> Smtp:
        self.controller.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.controller.stop()


class BlackHole:
    """Accepts connections, reads nothing, answers nothing: a channel that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(conn)

    def __enter__(self) -> BlackHole:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop = True
        self._thread.join()
        for c in self.conns:
            c.close()
        self.sock.close()
