"""Bad values in messages (issue 8, defect 10): each repro on the real captures, through the
replay path. Impossible values and crossed books invalidate the book (never data), an
implausible sequence jump resyncs instead of freezing the book, an unroutable message is
counted and skipped, and the summary JSON stays strict JSON."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cryptoarb.bench.fuzz import Msg, load_streams, replay_messages, venue_of
from cryptoarb.cli import app
from cryptoarb.config import load_settings
from cryptoarb.core.book import VALID
from cryptoarb.engine import Engine
from cryptoarb.replay.reader import parse_sources
from cryptoarb.replay.run import replay
from tests.conftest import require_shared_data

pytestmark = pytest.mark.realdata

SPOT = "spot_btcusdt_20240808.gz"
FROZEN_LINE = 18706  # a spot diff well after the snapshot (the repro)


def _lines(path: Path) -> list[bytes]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        return f.read().splitlines()


def _edited(src: Path, dst: Path, edits: dict[int, bytes | None], extra: dict[int, bytes] | None = None) -> Path:
    """A plain copy of ``src`` with lines replaced (``None``: kept) and lines inserted after."""
    out = []
    for n, line in enumerate(_lines(src), 1):
        new = edits.get(n)
        out.append(line if new is None else new)
        if extra and n in extra:
            out.append(extra[n])
    dst.write_bytes(b"\n".join(out) + b"\n")
    return dst


def _engine(paths: list[str]) -> tuple[Engine, object]:
    sources = parse_sources(paths)
    e = Engine(load_settings(storage={"enabled": False}), [s.venue for s in sources])
    return e, replay(e, sources)


def _spot_line(n: int) -> tuple[bytes, dict]:
    line = _lines(require_shared_data("binance-2024-08-08") / SPOT)[n - 1]
    ts, raw = line.split(b" ", 1)
    return ts, json.loads(raw)


# -- (a) NaN in a REST snapshot: a bad message, not a crash ---------------------------------------
def test_nan_price_in_the_gate_rest_snapshot_is_a_bad_message(tmp_path: Path) -> None:
    caps = require_shared_data("exchange-captures")
    line9 = _lines(caps / "GATEIO.http.0.0")[8]
    bad = re.sub(rb'"asks":\[\["[0-9.]+"', b'"asks":[["-nan"', line9, count=1)
    assert bad != line9
    _edited(caps / "GATEIO.http.0.0", tmp_path / "GATEIO.http.0.0", {9: bad})
    (tmp_path / "GATEIO.ws.1.0").write_bytes((caps / "GATEIO.ws.1.0").read_bytes())
    e, res = _engine([str(tmp_path / "GATEIO.ws.1.0"), str(tmp_path / "GATEIO.http.0.0")])
    assert res.stats.bad_count == 1  # type: ignore[attr-defined]
    h = e.handlers["gate"]
    assert h.bad_books == 1
    assert not e.books["gate BTC/USDC"].valid
    assert sum(b.valid for b in e.books.values()) == len(e.books) - 1  # the other nine are untouched


# -- (b) impossible values and crossed books in diffs: the book resyncs, exit 0, strict JSON -------
@pytest.mark.parametrize(
    ("side", "level"),
    [("a", ["-1", "1"]), ("a", ["NaN", "1"]), ("b", ["Infinity", "1"]), ("b", ["61000", "-nan"]),
     ("a", ["62000", "1e308"]), ("b", ["0", "2"]), ("a", ["1", "0.5"])],  # the last: an ask far under the bid
    ids=lambda x: str(x),
)
def test_an_impossible_level_invalidates_the_binance_book(tmp_path: Path, side: str, level: list[str]) -> None:
    src = require_shared_data("binance-2024-08-08") / SPOT
    ts, m = _spot_line(FROZEN_LINE)
    m["data"][side].append(level)
    path = _edited(src, tmp_path / "spot.txt", {FROZEN_LINE: ts + b" " + json.dumps(m).encode()})
    out = tmp_path / "summary.json"
    r = CliRunner().invoke(app, ["replay", f"binance:{path}", "--no-store", "--summary-json", str(out)])
    assert r.exit_code == 0, r.output
    summary = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in the summary JSON"))
    book = summary["books"]["binance BTC/USDT"]
    assert book["gaps"] == 1 and book["resyncs"] == 1  # invalidated at that diff, resync asked
    e, _ = _engine([f"binance:{path}"])
    b = e.books["binance BTC/USDT"]
    assert b.state != VALID and not b.valid  # no later snapshot in the capture: stays out of use
    assert e.handlers["binance"].bad_books == 1
    assert all(0 < p < 1e15 and 0 < q < 1e15 for p, q in [*b.bids(), *b.asks()]) or not b.valid


# -- (c) an implausible update id: a gap, not a frozen book ----------------------------------------
def test_a_too_large_update_id_does_not_freeze_the_binance_book(tmp_path: Path) -> None:
    src = require_shared_data("binance-2024-08-08") / SPOT
    ts, m = _spot_line(FROZEN_LINE)
    m["data"]["u"] *= 2
    path = _edited(src, tmp_path / "spot.txt", {FROZEN_LINE: ts + b" " + json.dumps(m).encode()})
    e, _ = _engine([f"binance:{path}"])
    sync = e.handlers["binance"].syncs["BTC/USDT"]
    assert sync.gaps == 1 and not sync.book.valid
    assert sync.stale_skipped == 0  # before: 4,683 diffs skipped as "already applied", book VALID


FROZEN = {  # stream: the JSON key of a diff's last update id, and a marker of diff frames
    "binance": ("u", b"@depth"),
    "binanceusdm": ("u", b"@depth"),
    "binancecoinm cm_btcusd_perp_20240808": ("u", b"@depth"),
    "gate": ("u", b"order_book_update"),
    "kucoin": ("sequenceEnd", b"level2"),
    "htx": ("version", b"depth.step0"),  # the capture's full books (mbp diffs: tests/test_venue_htx.py)
}


@pytest.fixture(scope="module")
def streams() -> dict[str, list[Msg]]:
    return load_streams(require_shared_data(), 1200)


@pytest.mark.parametrize("stream", sorted(FROZEN))
def test_a_doubled_update_id_resyncs(streams: dict[str, list[Msg]], stream: str) -> None:
    """On every venue whose diffs carry an update-id range, doubling the last id of one diff
    (mid-stream, its book valid and more diffs to come) makes a gap at the next diff."""
    msgs = streams[stream]
    venue = venue_of(stream)
    clean = replay_messages(venue, msgs, track=True)
    key, marker = FROZEN[stream][0].encode(), FROZEN[stream][1]
    pat = re.compile(rb'"' + key + rb'":(\d+)')
    done = 0
    for book_key, last in clean.last_change.items():
        # the first diff of that book past a third of the stream, with later ones after it
        native = clean.books[book_key].instrument.exchange_symbol.encode()
        plain = [gzip.decompress(raw) if raw.startswith(b"\x1f\x8b") else raw for _, raw, _ in msgs]  # HTX: gzip
        idx = [i for i, ((_, _, rest), raw) in enumerate(zip(msgs, plain, strict=True))
               if rest is None and marker in raw and native in raw and pat.search(raw) and len(msgs) // 3 < i < last]
        if not idx:
            continue
        i = idx[0]
        ns, raw, rest = msgs[i]
        new = pat.sub(lambda mm: b'"' + key + b'":' + str(2 * int(mm.group(1))).encode(), plain[i], 1)
        mutated = list(msgs)
        mutated[i] = (ns, gzip.compress(new) if raw.startswith(b"\x1f\x8b") else new, rest)
        got = replay_messages(venue, mutated)
        book = got.books[book_key]
        differs = book.snapshot_levels() != clean.books[book_key].snapshot_levels()
        assert not (book.valid and differs), f"{venue} {book_key}: frozen after message {i}"
        assert got.gaps > clean.gaps, f"{venue} {book_key}: no gap after message {i}"
        done += 1
        if done == 3:
            break
    assert done, f"no {venue} book with diffs to mutate"


# -- (d) an unroutable message is counted and skipped ----------------------------------------------
@pytest.mark.parametrize("frame", [b'{"stream":"@depth","data":{}}',
                                   b'{"stream":"btcusdx@depth@100ms","data":{"e":"depthUpdate","E":1,"U":1,'
                                   b'"u":2,"b":[],"a":[]}}'])
def test_an_unroutable_message_never_ends_the_replay(tmp_path: Path, frame: bytes) -> None:
    src = require_shared_data("binance-2024-08-08") / SPOT
    ts, _ = _spot_line(FROZEN_LINE)
    path = _edited(src, tmp_path / "spot.txt", {}, {FROZEN_LINE: ts + b" " + frame})
    e, res = _engine([f"binance:{path}"])
    assert res.stats.bad_count == 1  # type: ignore[attr-defined]
    assert "unroutable" in res.stats.bad[0].reason  # type: ignore[attr-defined]
    assert e.handlers["binance"].unroutable == 1
    clean, _ = _engine([f"binance:{src}"])
    assert e.books["binance BTC/USDT"].valid
    assert e.books["binance BTC/USDT"].snapshot_levels() == clean.books["binance BTC/USDT"].snapshot_levels()


def test_an_unroutable_message_with_strict_stops_with_one_line(tmp_path: Path) -> None:
    src = require_shared_data("binance-2024-08-08") / SPOT
    ts, _ = _spot_line(FROZEN_LINE)
    path = _edited(src, tmp_path / "spot.txt", {}, {FROZEN_LINE: ts + b' {"stream":"@depth","data":{}}'})
    r = CliRunner().invoke(app, ["replay", f"binance:{path}", "--no-store", "--strict"])
    assert r.exit_code != 0
    assert f"spot.txt:{FROZEN_LINE + 1}" in r.output and "Traceback" not in r.output
