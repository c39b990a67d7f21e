"""Issue 8, defect 6: subscribe/resubscribe bursts exceeded the venues' limits (Binance 5
messages/s, Coinbase 8/s per IP, KuCoin 100 per 10 s, OKX 480 per hour), and KuCoin got 400
topics on a connection that allows 300. Every send now goes through a pacer per connection
(or per IP); the rate is measured by the local venue, with its own clock."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from cryptoarb.config import load_settings
from cryptoarb.core.instruments import Fees, Instrument, Kind
from cryptoarb.engine import Engine
from cryptoarb.live.backoff import Backoff
from cryptoarb.live.feed import VenueFeed
from cryptoarb.live.pacing import Pacer
from cryptoarb.venues.catalog import Catalog
from cryptoarb.venues.coinbase import CoinbaseHandler
from cryptoarb.venues.connection import spec_of
from feed_transports import feed_transport  # noqa: F401 -- parametrizes every test of the module
from protovenue import Conn, ProtoVenue, max_in_window, run_feed_until

pytestmark = pytest.mark.usefixtures("feed_transport")


def _insts(venue: str, n: int, native: str) -> list[Instrument]:
    return [Instrument(venue, f"C{i}/USD", f"C{i}", "USD", Kind.SPOT, 1e-8, 1e-8, 0.0, 1.0, Fees(0.002),
                       native.format(i=i)) for i in range(n)]


def _engine(venue: str, insts: list[Instrument]) -> Engine:
    engine = Engine(load_settings(storage={"enabled": False}), [venue], instruments=[])
    for inst in insts:
        engine.catalog.add(inst)
    return engine


def test_pacer_lets_bursts_up_to_the_limit_and_spreads_the_rest() -> None:
    now = [0.0]

    async def sleep(s: float) -> None:
        now[0] += s

    pacer = Pacer(5, 1.0, clock=lambda: now[0], sleep=sleep)
    sent: list[float] = []

    async def go() -> None:
        for _ in range(12):
            await pacer.acquire()
            sent.append(now[0])

    asyncio.run(go())
    assert sent == [0.0] * 5 + [1.0] * 5 + [2.0] * 2
    assert max_in_window(sent, 1.0) == 5


def test_subscriptions_stay_within_the_venues_rate_as_the_venue_measures_it() -> None:
    """Bitfinex: one channel per subscribe message, 12 symbols -> 25 messages on a connection,
    paced to its limit; the venue counts them in every window of its own clock."""

    async def session(conn: Conn) -> None:
        while True:
            await conn.recv()

    spec = spec_of("bitfinex")
    insts = _insts("bitfinex", 12, "tC{i}USD")
    with ProtoVenue(session) as venue:
        engine = _engine("bitfinex", insts)
        feed = VenueFeed(engine, "bitfinex", insts, url=venue.ws_url, backoff=Backoff(0.05, 0.2))
        feed.handler.all_streams = True  # books and trades, as a recording subscribes them

        run_feed_until(feed, lambda: sum(len(c.received) for c in venue.conns) >= 25, 30)
    times = [t for c in venue.conns for t, _ in c.received]
    assert len(times) == 25 and len(venue.conns) == 1
    assert max_in_window(times, spec.send_window) <= spec.send_limit
    assert feed.stats.paced > 0


def test_coinbase_resubscribes_every_product_in_a_few_messages_paced_per_ip() -> None:
    cat = Catalog()
    insts = _insts("coinbase", 45, "C{i}-USD")
    for inst in insts:
        cat.add(inst)
    h = CoinbaseHandler("coinbase", cat, lambda b, t: None)
    for inst in insts:
        h.sync_for(inst)
    for s in h.syncs.values():
        h.outbox += h.resubscribe_messages(s)  # what a connection-wide sequence gap queues
    assert len(h.outbox) == 90
    out = [orjson.loads(m) for m in h.coalesce(h.outbox)]
    assert [m["type"] for m in out] == ["unsubscribe"] * 3 + ["subscribe"] * 3
    assert sum(len(m["product_ids"]) for m in out if m["type"] == "subscribe") == 45
    assert all(m["channel"] == "level2" for m in out)
    hb = ['{"type":"subscribe","channel":"heartbeats"}']
    assert h.coalesce(hb) == hb
    engine = _engine("coinbase", insts)
    feed = VenueFeed(engine, "coinbase", insts, url="ws://127.0.0.1:9/")
    assert feed._ip_pacer is not None and (feed._ip_pacer.limit, spec_of("coinbase").send_window) == (8, 1.0)


@pytest.mark.parametrize("n", [150, 151, 400])
def test_kucoin_connections_carry_at_most_300_topics(n: int) -> None:
    insts = _insts("kucoin", n, "C{i}-USDT")
    feed = VenueFeed(_engine("kucoin", insts), "kucoin", insts, url="ws://127.0.0.1:9/")
    conns = feed.connections()
    assert sum(len(c) for _, c in conns) == n
    for _, chunk in conns:
        msgs = [orjson.loads(m) for m in feed.handler.subscribe_messages(chunk)]
        topics = sum(len(m["topic"].partition(":")[2].split(",")) for m in msgs)
        assert topics <= 300
    assert spec_of("kucoin").send_limit == 100 and spec_of("kucoin").send_window == 10.0
