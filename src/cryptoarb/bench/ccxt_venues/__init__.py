"""ccxt.pro's side of the per-venue benchmark: its own ``handle_message`` on the captured frames, offline.

For each exchange whose capture current ccxt can still parse, :func:`bench_ccxt` drives the real
``ccxt.pro.<exchange>.handle_message(client, message)`` over the received frames of a cryptofeed
capture, in order, with no network (the techniques of :mod:`cryptoarb.bench.ccxt_ref`):

- markets: minimal market dicts for the symbols the capture subscribes to (found in its SENT
  subscription messages) are injected with ``set_markets``; ``load_markets`` never runs;
- the client is a stand-in for ccxt's ws ``Client`` (``url`` = the capture's URL, ``futures``,
  ``subscriptions``, ``resolve``/``reject`` that only record, ``close``/``send`` that do nothing);
- order books and subscriptions are pre-created the way that exchange's ``watch_order_book``
  would leave them, where its handlers expect them (gate, kucoin, okx); the subscribe handshake
  frames of the capture (Bitfinex channel ids, Bitstamp ``subscription_succeeded``) go through
  ``handle_message`` like any other frame;
- REST-snapshot exchanges (bitstamp, kucoin, gate): ``spawn`` is stubbed, so ccxt's
  ``load_order_book`` coroutine waits until the capture's own REST response for that market has
  arrived (``.http.0.0`` file, merged by time); then it runs for real with only the HTTP call
  (``exchange.fetch``) answered from the capture, so ccxt's ``fetch_order_book`` parses it and ccxt
  replays its cached deltas by its own rules. ``watchOrderBook.snapshotDelay`` is set to 0 so
  ccxt asks for its snapshot on the first delta, as the recording client did; snapshot loading is
  not timed (nor is the native ``on_snapshot``).

Timing: ``perf_counter_ns`` around what ccxt's ws client does with an inbound frame: gunzip for a
binary frame (HTX), the JSON parse with the parser ccxt's client picked (orjson when importable),
then ``exchange.handle_message``. Decoding bytes to ``str`` (done by aiohttp) is left out. Every
received frame is timed; frames are filed as DEPTH (a book delta) or SNAPSHOT (a full book in
the stream) by a per-exchange classifier applied after the timing, matching the kinds the native
handlers return.

Errors: exceptions escaping ``handle_message`` plus every ``client.reject`` (ccxt's way of
reporting a checksum or nonce failure) are counted. Where ccxt cannot process the capture at all
(an API version current ccxt no longer speaks), the result is ``{"reason": ...}``: for those the
frames are still fed once, and the reason says what ccxt made of them.

Layout: :mod:`.common` (client stand-in, market dicts, :class:`Spec`), the per-exchange drivers by
how their books start (:mod:`.stream`: in-stream snapshots; :mod:`.rest`: the capture's REST
snapshots; :mod:`.legacy`: formats current ccxt no longer speaks) and :mod:`.run` (one timed replay).
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from typing import Any

from cryptoarb.bench.ccxt_common import available, ccxt_version
from cryptoarb.bench.ccxt_venues import legacy, rest, stream
from cryptoarb.bench.ccxt_venues.common import _QUOTES as _QUOTES
from cryptoarb.bench.ccxt_venues.common import Spec, parser_name
from cryptoarb.bench.ccxt_venues.common import _split as _split
from cryptoarb.bench.ccxt_venues.run import _ccxt_once
from cryptoarb.bench.venues import Capture, PathLike, load_capture, median_of
from cryptoarb.replay.cryptofeed import HTTP, RECV
from cryptoarb.replay.run import REPLAY_GC_THRESHOLDS

__all__ = ["SPECS", "available", "bench_ccxt", "ccxt_version", "parser_name", "reason_for"]

#: ccxt exchange id (the capture's venue) -> how to drive it
SPECS: dict[str, Spec] = {**rest.SPECS, **stream.SPECS, **legacy.SPECS}

#: venues whose capture is not compared, and why (not a ccxt limitation to confirm by a run)
NOT_COMPARED: dict[str, str] = {}


def reason_for(venue: str) -> str | None:
    """Why ccxt is not compared on ``venue`` without running anything, or None."""
    if not available():
        return "ccxt is not installed (dev dependency)"
    if venue in NOT_COMPARED:
        return NOT_COMPARED[venue]
    if venue not in SPECS:
        return f"no offline ccxt.pro driver for {venue!r}"
    return None


def bench_ccxt(path_or_paths: PathLike | Sequence[PathLike] | Capture, runs: int = 5) -> dict[str, Any]:
    """ccxt.pro's ``handle_message`` on one exchange's capture, ``runs`` times; medians.

    Returns the same shape as :func:`cryptoarb.bench.venues.bench_native` (``DEPTH``/``SNAPSHOT``
    summaries, ``books_ok``/``books_total``, ``errors``), or ``{"reason": ...}`` when ccxt cannot
    be compared on this capture.
    """
    cap = path_or_paths if isinstance(path_or_paths, Capture) else load_capture(path_or_paths)
    base: dict[str, Any] = {"capture": cap.name, "venue": cap.venue}
    why = reason_for(cap.venue)
    if why is not None:
        return {**base, "reason": why}
    spec = SPECS[cap.venue]
    frames = [(r.kind, r.url, r.ts_ns, r.payload) for r in cap.records if r.kind in (RECV, HTTP)]
    try:
        markets = spec.markets(cap)
    except Exception as e:
        return {**base, "reason": f"cannot build ccxt markets from the capture's subscriptions: {e}"}
    if not markets:
        return {**base, "reason": "the capture subscribes to no order book ccxt could be given a market for"}
    base.update(ccxt_id=spec.ccxt_id, ccxt_version=ccxt_version(), parser=parser_name(),
                markets=[m["symbol"] for m in markets])
    if spec.note:
        base["note"] = spec.note
    try:
        first = _ccxt_once(spec, cap, frames, markets)
    except Exception as e:
        return {**base, "reason": f"ccxt.pro {spec.ccxt_id} could not be driven offline: {type(e).__name__}: {e}"}
    book_frames = first["DEPTH"]["count"] + first["SNAPSHOT"]["count"]
    if spec.legacy or (book_frames and not first["books_ok"]):
        seen = (
            f"fed {book_frames} book frames: ccxt built {first['books_ok']} of {first['books_total']} books"
            f", {first['errors']} errors"
        )
        if first["first_errors"]:
            seen += f" (first: {first['first_errors'][0]})"
        if spec.legacy:
            return {**base, "reason": f"{spec.legacy} [{seen}]"}
        return {**base, "reason": f"ccxt.pro {spec.ccxt_id} cannot process this capture: {seen}"}
    per_run = [first]
    thresholds = gc.get_threshold()
    gc.set_threshold(*REPLAY_GC_THRESHOLDS)  # the GC setting the native side runs with
    try:
        for _ in range(max(1, runs)):
            gc.collect()
            per_run.append(_ccxt_once(spec, cap, frames, markets))
    finally:
        gc.set_threshold(*thresholds)
    per_run = per_run[1:]  # the first run (outside the GC setting) was the feasibility check
    result = {**base, "runs": len(per_run), **median_of(per_run)}
    return result
