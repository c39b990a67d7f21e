"""A local Sentry ingest endpoint: accepts what sentry-sdk sends (envelopes, gzip/brotli/deflate)
on 127.0.0.1 and keeps the decoded items, for tests that check what would reach Sentry."""

from __future__ import annotations

import gzip
import json
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def parse_envelope(body: bytes) -> list[tuple[dict[str, Any], bytes]]:
    """(item header, payload) of each item of a Sentry envelope."""
    _, _, rest = body.partition(b"\n")
    items = []
    while rest.strip():
        line, _, rest = rest.partition(b"\n")
        header = json.loads(line)
        n = header.get("length")
        if n is None:
            payload, _, rest = rest.partition(b"\n")
        else:
            payload, rest = rest[:n], rest[n + 1:]
        items.append((header, payload))
    return items


class SentryServer:
    """``dsn`` points here; ``raw`` holds every decoded request body, ``events`` the event items."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []
        self.events: list[dict[str, Any]] = []
        self.got = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                enc = self.headers.get("Content-Encoding", "")
                if enc == "gzip":
                    body = gzip.decompress(body)
                elif enc == "deflate":
                    body = zlib.decompress(body)
                elif enc == "br":
                    import brotli  # type: ignore[import-not-found]

                    body = brotli.decompress(body)
                outer.raw.append(body)
                for header, payload in parse_envelope(body):
                    if header.get("type") == "event":
                        outer.events.append(json.loads(payload))
                        outer.got.set()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"id":"0"}')

            def log_message(self, *args: Any) -> None:
                pass

        self._srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._srv.server_address[1]
        self.dsn = f"http://publickey@127.0.0.1:{self.port}/1"
        threading.Thread(target=self._srv.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._srv.shutdown()
        self._srv.server_close()
