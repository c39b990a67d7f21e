"""Reading capture files: ``<local_timestamp_ns> <raw json>`` per line, gzip or plain text.

This is the format of hftbacktest's Binance collector and of ``arb record``. A venue's files
form one stream in the order given; streams merge by local timestamp.
"""

from __future__ import annotations

import contextlib
import gzip
import heapq
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import orjson


class CaptureError(Exception):
    """A capture cannot be read any further (missing, truncated, not a capture)."""


LINES = "lines"  # <local_ns> <raw json>: hftbacktest's collector, arb record
CRYPTOFEED = "cryptofeed"  # cryptofeed's sample_data session captures
TARDIS = "tardis"  # Tardis.dev incremental_book_L2 CSV
TARDIS_HEADER = b"exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount"


@dataclass(frozen=True)
class Source:
    venue: str
    paths: list[Path] = field(default_factory=list)
    fmt: str = LINES


#: a REST snapshot in a stream: ("symbol", ccxt symbol) from arb record, ("url", request url)
#: from a cryptofeed capture; None for a WebSocket frame
Rest = tuple[str, str] | None
Item = tuple[int, str, str, int, bytes, Rest]
_REST_PREFIX = b'{"rest":'
_DATA_KEY = b',"data":'


@dataclass
class BadLine:
    path: str
    line: int
    reason: str


class ByteProgress:
    """How far the capture files have been read, in bytes of the files on disk (compressed for
    gzip), for a progress bar with a percentage and an ETA. A file registers its raw file object
    while it is read; nothing is done per line: :meth:`read` asks the open files where they are."""

    def __init__(self) -> None:
        self.finished = 0  # bytes of the files read to the end
        self._open: dict[int, IO[bytes]] = {}

    @contextlib.contextmanager
    def reading(self, f: IO[bytes]) -> Iterator[None]:
        size = os.fstat(f.fileno()).st_size
        self._open[id(f)] = f
        try:
            yield
            self.finished += size  # read to the end
        finally:
            self._open.pop(id(f), None)

    def read(self) -> int:
        return self.finished + sum(f.tell() for f in list(self._open.values()) if not f.closed)


def total_bytes(sources: list[Source]) -> int:
    """The size on disk of every file of ``sources`` (what :class:`ByteProgress` counts to)."""
    return sum(p.stat().st_size for s in sources for p in s.paths)


class LineStats:
    """Lines that could not be read (counted, the first 100 kept); ``strict`` turns the first
    one into a :class:`CaptureError` naming the file and line."""

    def __init__(self, strict: bool = False) -> None:
        self.bad: list[BadLine] = []
        self.bad_count = 0
        self.strict = strict
        self.progress = ByteProgress()

    def add(self, path: Path, lineno: int, reason: str) -> None:
        if self.strict:
            raise CaptureError(f"{path}:{lineno}: {reason}")
        self.bad_count += 1
        if len(self.bad) < 100:
            self.bad.append(BadLine(str(path), lineno, reason))


def parse_sources(
    specs: list[str], known_venues: list[str] | None = None, skipped: list[tuple[str, str]] | None = None
) -> list[Source]:
    """``VENUE:PATH`` arguments (or a bare PATH for a cryptofeed capture, whose venue is in its
    URLs) -> one Source per venue and format, paths in the order given.

    ``known_venues`` limits the venues accepted (None: any venue with a native handler). With a
    ``skipped`` list, a cryptofeed capture of a venue without a handler is listed there with
    the reason instead of failing the whole run.
    """
    from cryptoarb.replay import cryptofeed

    if known_venues is None:
        from cryptoarb.venues.registry import native_venues

        known_venues = native_venues()
    by_key: dict[tuple[str, str], list[Path]] = {}
    for spec in specs:
        venue, sep, path = spec.partition(":")
        if not sep and Path(spec).is_file() and (cryptofeed.sniff(Path(spec)) or _tardis_exchange(Path(spec))):
            venue, path = "", spec
        elif not sep or not venue or not path:
            raise CaptureError(f"{spec!r}: expected VENUE:PATH (or the PATH of a cryptofeed capture)")
        if venue and venue not in known_venues:
            raise CaptureError(f"{spec!r}: unknown venue {venue!r} (available: {', '.join(known_venues)})")
        p = Path(path)
        if not p.is_file():
            raise CaptureError(f"{path}: no such file")
        tardis = _tardis_exchange(p)
        fmt = CRYPTOFEED if cryptofeed.sniff(p) else TARDIS if tardis else LINES
        if fmt in (CRYPTOFEED, TARDIS):
            found = _capture_venue(p) if fmt == CRYPTOFEED else tardis
            if not venue:
                venue = found
            elif found != venue:
                raise CaptureError(f"{path}: this capture is from {found!r}, not {venue!r}")
        if venue not in known_venues:
            if skipped is not None and fmt == CRYPTOFEED:
                skipped.append((path, f"no native handler for {venue!r} (available: {', '.join(known_venues)})"))
                continue
            raise CaptureError(f"{spec!r}: unknown venue {venue!r} (available: {', '.join(known_venues)})")
        by_key.setdefault((venue, fmt), []).append(p)
    return [Source(v, ps, fmt) for (v, fmt), ps in by_key.items()]


def _tardis_exchange(path: Path) -> str:
    """The ccxt id of a Tardis incremental_book_L2 file's exchange; "" when it is not one."""
    from cryptoarb.venues.tardis import ccxt_id

    try:
        it = _open(path)
        head = next(it, b"").strip()
        first = next(it, b"").strip()
        close = getattr(it, "close", None)
        if close is not None:
            close()
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile):
        return ""
    if head != TARDIS_HEADER:
        return ""
    if not first:
        raise CaptureError(f"{path}: a Tardis file with no rows")
    return ccxt_id(first.split(b",", 1)[0].decode(errors="replace"))


def _tardis_stream(source: Source, stats: LineStats) -> Iterator[Item]:
    """Rows grouped into updates: same symbol, local timestamp and snapshot flag."""
    for path in source.paths:
        p = str(path)
        group: list[bytes] = []
        key: tuple[bytes, bytes, bytes] | None = None
        start = 0
        lineno = 0
        try:
            for lineno, line in enumerate(_open(path, stats.progress), 1):
                if lineno == 1:
                    continue  # the header
                row = line.rstrip(b"\r\n")
                f = row.split(b",", 5)
                if len(f) < 6:
                    stats.add(path, lineno, "not a Tardis incremental_book_L2 row")
                    continue
                k = (f[1], f[3], f[4])
                if k != key and group:
                    yield _tardis_item(key, group, source.venue, p, start, path, stats)
                    group = []
                if not group:
                    key, start = k, lineno
                group.append(row)
            if group:
                yield _tardis_item(key, group, source.venue, p, start, path, stats)
        except (EOFError, gzip.BadGzipFile, zlib.error) as e:
            raise CaptureError(f"{path}: corrupt or truncated gzip after line {lineno}: {e}") from None


def _tardis_item(
    key: tuple[bytes, bytes, bytes] | None, group: list[bytes], venue: str, p: str, start: int, path: Path,
    stats: LineStats,
) -> Item:
    assert key is not None
    try:
        local_ns = int(key[1]) * 1000
    except ValueError:
        local_ns = 0
        stats.add(path, start, f"local_timestamp {key[1][:20]!r} is not an integer")
    return local_ns, venue, p, start, b"\n".join(group), None


def _capture_venue(path: Path) -> str:
    from cryptoarb.replay.cryptofeed import CryptofeedFormatError, read_records, venue_of

    try:
        for rec in read_records(path):
            venue = venue_of(rec.url)
            if venue is None:
                raise CaptureError(f"{path}:{rec.line}: no known venue serves {rec.url!r}")
            return venue
    except CryptofeedFormatError as e:
        raise CaptureError(str(e)) from None
    raise CaptureError(f"{path}: empty capture")


def _open(path: Path, progress: ByteProgress | None = None) -> Iterator[bytes]:
    with path.open("rb") as f:
        magic = f.read(2)
        f.seek(0)
        with progress.reading(f) if progress is not None else contextlib.nullcontext():
            if magic == b"\x1f\x8b":
                with gzip.GzipFile(fileobj=f, mode="rb") as g:
                    yield from g
            else:
                yield from f


def read_lines(path: Path, stats: LineStats) -> Iterator[tuple[int, int, bytes]]:
    """Yield ``(local_ns, line_number, raw)``; malformed lines are counted and skipped."""
    lineno = 0
    try:
        for line in _open(path, stats.progress):
            lineno += 1
            ts, sep, raw = line.partition(b" ")
            if not sep:
                if line.strip():
                    stats.add(path, lineno, "no '<timestamp> <json>' separator")
                continue
            try:
                local_ns = int(ts)
            except ValueError:
                stats.add(path, lineno, f"timestamp {ts[:24]!r} is not an integer")
                continue
            yield local_ns, lineno, raw.rstrip(b"\r\n")
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise CaptureError(f"{path}: corrupt or truncated gzip after line {lineno}: {e}") from None
    except OSError as e:
        raise CaptureError(f"{path}: cannot read after line {lineno}: {e}") from None


def stream(source: Source, stats: LineStats) -> Iterator[Item]:
    """One venue's files: ``(local_ns, venue, path, line, raw, rest)``.

    Line captures play back to back in the order given; the files of a cryptofeed session (its
    WebSocket and REST files) interleave by time.
    """
    if source.fmt == CRYPTOFEED:
        yield from _cryptofeed_stream(source, stats)
        return
    if source.fmt == TARDIS:
        yield from _tardis_stream(source, stats)
        return
    venue = source.venue
    for path in source.paths:
        p = str(path)
        for local_ns, lineno, raw in read_lines(path, stats):
            if raw.startswith(_REST_PREFIX):
                cut = raw.find(_DATA_KEY)
                try:
                    symbol = orjson.loads(raw[len(_REST_PREFIX) : cut]) if cut > 0 else None
                except orjson.JSONDecodeError:
                    symbol = None
                if not isinstance(symbol, str) or not raw.endswith(b"}"):
                    stats.add(path, lineno, "malformed REST snapshot line")
                    continue
                yield local_ns, venue, p, lineno, raw[cut + len(_DATA_KEY) : -1], ("symbol", symbol)
            else:
                yield local_ns, venue, p, lineno, raw, None


def _cryptofeed_stream(source: Source, stats: LineStats) -> Iterator[Item]:
    from cryptoarb.replay.cryptofeed import HTTP, RECV, CryptofeedFormatError, read_records

    def one(path: Path) -> Iterator[Item]:
        p = str(path)
        try:
            for rec in read_records(path, stats.progress):
                if rec.kind == RECV:
                    yield rec.ts_ns, source.venue, p, rec.line, rec.payload, None
                elif rec.kind == HTTP:
                    yield rec.ts_ns, source.venue, p, rec.line, rec.payload, ("url", rec.url)
        except CryptofeedFormatError as e:
            raise CaptureError(str(e)) from None

    yield from heapq.merge(*(one(p) for p in source.paths), key=lambda r: r[0])


def merged(sources: list[Source], stats: LineStats) -> Iterator[Item]:
    """All streams merged by local receive time (stable within a stream)."""
    if len(sources) == 1:
        return stream(sources[0], stats)
    return heapq.merge(*(stream(s, stats) for s in sources), key=lambda r: r[0])
