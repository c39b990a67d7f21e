"""Reading capture files: ``<local_timestamp_ns> <raw json>`` per line, gzip or plain text.

This is the format of hftbacktest's Binance collector and of ``arb record``. A venue's files
form one stream in the order given; streams merge by local timestamp.
"""

from __future__ import annotations

import gzip
import heapq
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


class CaptureError(Exception):
    """A capture cannot be read any further (missing, truncated, not a capture)."""


@dataclass(frozen=True)
class Source:
    venue: str
    paths: list[Path] = field(default_factory=list)


@dataclass
class BadLine:
    path: str
    line: int
    reason: str


class LineStats:
    def __init__(self) -> None:
        self.bad: list[BadLine] = []
        self.bad_count = 0

    def add(self, path: Path, lineno: int, reason: str) -> None:
        self.bad_count += 1
        if len(self.bad) < 100:
            self.bad.append(BadLine(str(path), lineno, reason))


def parse_sources(specs: list[str], known_venues: list[str]) -> list[Source]:
    """``VENUE:PATH`` arguments -> one Source per venue (paths in the order given)."""
    by_venue: dict[str, list[Path]] = {}
    for spec in specs:
        venue, sep, path = spec.partition(":")
        if not sep or not venue or not path:
            raise CaptureError(f"{spec!r}: expected VENUE:PATH, e.g. binance:spot_btcusdt.gz")
        if venue not in known_venues:
            raise CaptureError(f"{spec!r}: unknown venue {venue!r} (available: {', '.join(known_venues)})")
        p = Path(path)
        if not p.is_file():
            raise CaptureError(f"{path}: no such file")
        by_venue.setdefault(venue, []).append(p)
    return [Source(v, ps) for v, ps in by_venue.items()]


def _open(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        with gzip.open(path, "rb") as g:
            yield from g
    else:
        with path.open("rb") as f:
            yield from f


def read_lines(path: Path, stats: LineStats) -> Iterator[tuple[int, int, bytes]]:
    """Yield ``(local_ns, line_number, raw)``; malformed lines are counted and skipped."""
    lineno = 0
    try:
        for line in _open(path):
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


def stream(source: Source, stats: LineStats) -> Iterator[tuple[int, str, str, int, bytes]]:
    """One venue's files back to back: ``(local_ns, venue, path, line, raw)``."""
    for path in source.paths:
        p = str(path)
        for local_ns, lineno, raw in read_lines(path, stats):
            yield local_ns, source.venue, p, lineno, raw


def merged(sources: list[Source], stats: LineStats) -> Iterator[tuple[int, str, str, int, bytes]]:
    """All streams merged by local receive time (stable within a stream)."""
    if len(sources) == 1:
        return stream(sources[0], stats)
    return heapq.merge(*(stream(s, stats) for s in sources), key=lambda r: r[0])
