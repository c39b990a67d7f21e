"""``arb record``: raw traffic to gzip captures that ``arb replay`` replays exactly.

Format: one line per frame, ``<local_ns> <raw json>`` (hftbacktest's collector format), one file
per venue stream, rotated hourly (``<out>/<venue>/<venue>-YYYYMMDDTHH.gz``). REST snapshots are
lines ``<local_ns> {"rest":"<ccxt symbol>","data":<native body>}``; replay hands them to the
handler's ``on_snapshot`` as the live feed did. Binary gzip frames (HTX) are stored as their
JSON text, which the handler accepts as well.
"""

from __future__ import annotations

import gzip
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO

import orjson


class Recorder:
    """Writes frames as they arrive. A write that fails (folder gone, disk full) is not raised
    into the feed (which would take it for a lost connection and loop): the recorder keeps the
    first ``error``, drops what follows and calls ``on_error`` so the caller stops the run."""

    def __init__(self, out_dir: Path, rotate_s: int = 3600, flush_s: float = 1.0,
                 on_error: Callable[[str], None] | None = None) -> None:
        self.out_dir = out_dir
        self.on_error = on_error
        self.error = ""
        self.rotate_ns = rotate_s * 1_000_000_000
        self.flush_s = flush_s
        self._files: dict[str, tuple[int, IO[bytes]]] = {}
        self._last_flush = time.monotonic()
        self.lines = 0
        self.paths: list[Path] = []

    def _file(self, venue: str, local_ns: int) -> IO[bytes]:
        slot = local_ns // self.rotate_ns
        cur = self._files.get(venue)
        if cur is not None and cur[0] == slot:
            return cur[1]
        if cur is not None:
            cur[1].close()
        stamp = time.strftime("%Y%m%dT%H", time.gmtime(slot * self.rotate_ns / 1e9))
        path = self.out_dir / venue / f"{venue}-{stamp}.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        f: IO[bytes] = gzip.open(path, "ab")  # type: ignore[assignment]  # noqa: SIM115 (kept open)
        self._files[venue] = (slot, f)
        self.paths.append(path)
        return f

    def frame(self, venue: str, local_ns: int, raw: bytes) -> None:
        if raw[:2] == b"\x1f\x8b":
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError, zlib.error):
                return  # the handler reports the corrupt frame; it cannot be stored as text
        if b"\n" in raw:
            raw = raw.replace(b"\r", b"").replace(b"\n", b" ")  # JSON whitespace only
        self._write(venue, local_ns, raw)

    def rest(self, venue: str, symbol: str, local_ns: int, body: bytes) -> None:
        self._write(venue, local_ns, b'{"rest":' + orjson.dumps(symbol) + b',"data":' + body + b"}")

    def _write(self, venue: str, local_ns: int, raw: bytes) -> None:
        if self.error:
            return
        try:
            f = self._file(venue, local_ns)
            f.write(b"%d %s\n" % (local_ns, raw))
            self.lines += 1
            now = time.monotonic()
            if now - self._last_flush >= self.flush_s:
                self.flush()
                self._last_flush = now
        except OSError as e:
            self.error = f"cannot write: {e.strerror or e}" + (f" ({e.filename})" if e.filename else "")
            if self.on_error is not None:
                self.on_error(self.error)

    def flush(self) -> None:
        for _, f in self._files.values():
            f.flush()

    def close(self) -> None:
        for _, f in self._files.values():
            try:
                f.close()
            except OSError as e:
                self.error = self.error or f"cannot write: {e.strerror or e}"
        self._files.clear()
