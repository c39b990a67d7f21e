"""Issue 8, defect 7: WebSocket ping frames went to every venue with a 20 s pong timeout while
several document text pings only, and a 10 s staleness was shorter than several venues'
heartbeat cadence (Bitfinex 15 s, Gate 15 s, Bybit 20 s, OKX 25 s): quiet markets churned."""

from __future__ import annotations

from typing import Any

import pytest

from cryptoarb.config import load_settings
from cryptoarb.core.instruments import Fees, Instrument, Kind
from cryptoarb.engine import Engine
from cryptoarb.live.backoff import Backoff
from cryptoarb.live.feed import VenueFeed
from cryptoarb.venues.connection import SPECS, spec_of
from cryptoarb.venues.registry import NATIVE, handler_class
from feed_transports import feed_transport  # noqa: F401 -- parametrizes every test of the module
from protovenue import Conn, ProtoVenue, run_feed_until

pytestmark = pytest.mark.usefixtures("feed_transport")

#: the longest silence of a healthy connection: the venue's heartbeat, or the reply to our ping
CADENCE = {"bitfinex": 15.0, "gate": 15.0, "bybit": 20.0, "okx": 25.0, "kucoin": 18.0, "bitget": 30.0,
           "htx": 5.0, "kraken": 1.0, "coinbase": 1.0, "coinbaseexchange": 1.0, "gemini": 5.0, "bitstamp": 5.0}

#: venues that stream heartbeats of their own (silence is bounded by them, not by our pings)
HEARTBEATS = {"bitfinex", "kraken", "coinbase", "coinbaseexchange", "gemini", "htx"}


def _feed(venue: str, **kw: Any) -> VenueFeed:
    inst = Instrument(venue, "BTC/USDT", "BTC", "USDT", Kind.SPOT, 0.01, 1e-6, 0.0, 1.0, Fees(0.001), "BTC-USDT")
    engine = Engine(load_settings(storage={"enabled": False}), [venue], instruments=[])
    engine.catalog.add(inst)
    return VenueFeed(engine, venue, [inst], url=kw.pop("url", "ws://127.0.0.1:9/"), **kw)


@pytest.mark.parametrize("venue", sorted(NATIVE))
def test_each_venue_has_its_keepalive_and_a_staleness_above_its_heartbeat(venue: str) -> None:
    assert venue in SPECS, f"{venue}: no documented connection rules"
    spec = spec_of(venue)
    feed = _feed(venue)
    assert feed.stale_after == spec.stale_after
    if venue in CADENCE:
        assert spec.stale_after >= 1.5 * CADENCE[venue] and spec.stale_after > 10.0
    cls = handler_class(venue)
    assert cls is not None
    if cls.ping is not None or venue in ("gate", "kucoin", "htx", "binance", "binanceusdm", "binancecoinm"):
        # a keep-alive of the venue's own (text pings we send, or pings it sends): no ping frames
        assert feed.ws_ping_interval is None
    ping = feed.handler.ping
    if ping is not None and venue not in HEARTBEATS:
        assert ping[0] < spec.stale_after  # the reply to our ping comes before we would call it stale


def test_explicit_settings_still_win() -> None:
    feed = _feed("okx", stale_after=3.0, ws_ping_interval=5.0)
    assert (feed.stale_after, feed.ws_ping_interval) == (3.0, 5.0)


def test_okx_gets_text_pings_and_no_ping_frames_on_the_wire() -> None:
    """A local OKX that answers "ping" with "pong" and counts every ping frame it receives."""
    frames: list[bytes] = []

    async def session(conn: Conn) -> None:
        orig = conn.ws.protocol.recv_frame  # the frames the venue receives, control frames included

        def spy(frame: Any) -> None:
            frames.append(frame.opcode.name.encode())
            orig(frame)

        conn.ws.protocol.recv_frame = spy  # type: ignore[method-assign]
        while True:
            if await conn.recv() == "ping":
                await conn.send("pong")

    with ProtoVenue(session) as venue:
        feed = _feed("okx", url=venue.ws_url, backoff=Backoff(0.05, 0.2))
        feed.handler.ping = (0.05, "ping")  # OKX's text ping, sped up for the test
        assert feed.ws_ping_interval is None  # the venue's

        run_feed_until(feed, lambda: sum(t == "ping" for c in venue.conns for _, t in c.received) >= 5, 20)
    texts = [t for c in venue.conns for _, t in c.received]
    assert texts.count("ping") >= 5 and feed.stats.stale == 0
    assert b"PING" not in frames and b"TEXT" in frames
