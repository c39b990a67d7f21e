"""Cold start (issue #15): REST snapshots paced by the venue's weight budget, counted at a local
Binance-protocol venue with the venue's clock (never a wall-clock threshold)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from cryptoarb.config import load_settings
from cryptoarb.engine import Engine
from cryptoarb.live.backoff import Backoff
from cryptoarb.live.feed import VenueFeed
from cryptoarb.live.rest import CcxtRest
from cryptoarb.live.snapshots import BUDGETS, PacedRest, RestBudget, WeightPacer, paced
from discovery_venues import binance_depth, binance_session
from protovenue import ProtoVenue, max_in_window, run_feed_until

N = 24
#: a small budget so that the test spans several windows: 4 snapshots (weight 5) per 0.5 s
BUDGET = RestBudget(20, 0.5, BUDGETS["binance"].depth_weight, depth=100)


def _venue() -> tuple[ProtoVenue, list[float]]:
    times: list[float] = []

    def depth(query: dict[str, str]) -> bytes:
        times.append(time.monotonic())  # the venue's clock, in the venue's thread
        return binance_depth(query)

    return ProtoVenue(binance_session, rest={"/api/v3/depth": depth}), times


def _feed(venue: ProtoVenue, rest: object) -> tuple[Engine, VenueFeed]:
    engine = Engine(load_settings(storage={"enabled": False}), ["binance"])
    btc = engine.catalog.get("binance", "BTC/USDT")
    insts = []
    for k in range(N):
        inst = replace(btc, symbol=f"C{k}/USDT", base=f"C{k}", exchange_symbol=f"C{k}USDT")
        engine.catalog.add(inst)
        insts.append(inst)
    feed = VenueFeed(engine, "binance", insts, url=venue.ws_url, rest=rest,  # type: ignore[arg-type]
                     stale_after=30.0, backoff=Backoff(0.05, 0.2))
    return engine, feed


def _ccxt(venue: ProtoVenue, throttle: bool) -> CcxtRest:
    return CcxtRest("binance", {"urls": {"api": {"public": venue.http_url + "/api/v3"}}, "enableRateLimit": throttle})


def test_snapshots_stay_within_the_weight_budget_and_every_book_starts() -> None:
    venue, times = _venue()
    with venue:
        rest = PacedRest(_ccxt(venue, False), BUDGET, share=1.0, margin=0.1)
        engine, feed = _feed(venue, rest)
        run_feed_until(feed, lambda: len(engine.books) == N and all(b.valid for b in engine.books.values()), 60)
        assert all(b.valid for b in engine.books.values()) and len(engine.books) == N
        assert len(times) == N
        # at most 20 weight (4 snapshots of weight 5) in any 0.5 s of the venue's clock
        assert max_in_window(times, BUDGET.window) <= 4
        # the cheapest tier holding 100 levels, not the handler's 1000 (weight 50)
        assert {q["limit"] for p, q in venue.requests if p == "/api/v3/depth"} == {"100"}
        assert rest.pacer.waited > 0


def test_without_the_pacer_the_same_start_breaks_the_budget() -> None:
    """The check above can fail: the same cold start unpaced (ccxt's throttler off) sends more
    than the budget in one window."""
    venue, times = _venue()
    with venue:
        engine, feed = _feed(venue, _ccxt(venue, False))
        run_feed_until(feed, lambda: len(engine.books) == N and all(b.valid for b in engine.books.values()), 60)
        assert len(times) == N
        assert max_in_window(times, BUDGET.window) > 4


def test_weight_pacer_spends_the_budget_at_once_then_waits_for_the_window() -> None:
    now = [0.0]
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    async def go() -> list[float]:
        p = WeightPacer(100, 60.0, clock=lambda: now[0], sleep=sleep)
        at = []
        for _ in range(45):  # weight 5 each: 20 fit at once, the next 20 a window later
            p.done(await p.acquire(5))  # answered at once
            at.append(now[0])
        return at

    at = asyncio.run(go())
    assert at[:20] == [0.0] * 20 and at[20:40] == [60.0] * 20 and at[40:] == [120.0] * 5


def test_documented_venues_are_paced_and_others_keep_ccxts_throttler() -> None:
    assert isinstance(paced("binance", None), PacedRest)
    assert paced("binance", None).rest.config["enableRateLimit"] is False
    assert isinstance(paced("kucoin", None), CcxtRest)
    # Binance spot: 1,000 levels cost 50, the 100 asked for cost 5
    assert BUDGETS["binance"].depth_weight(1000) == 50 and BUDGETS["binance"].cost({"limit": 100}) == 5
    assert BUDGETS["binanceusdm"].cost({"limit": 100}) == 5 and BUDGETS["binanceus"].cost({"limit": 100}) == 1


def test_a_shorter_second_limit_is_kept_too() -> None:
    """Bitstamp: 10,000 per 10 minutes *and* 400 per second; the second limit binds a burst."""
    now = [0.0]

    async def go() -> list[float]:
        class Answer:
            async def native(self, method: str, params: dict[str, object]) -> bytes:
                return b"{}"

        budget = RestBudget(1000, 600.0, lambda _limit: 1, also=(10, 1.0))
        rest = PacedRest(Answer(), budget, share=1.0, margin=0.0, clock=lambda: now[0])
        assert rest.short is not None

        async def sleep(s: float) -> None:
            now[0] += s

        rest.short._sleep = sleep
        rest.pacer._sleep = sleep
        at = []
        for _ in range(25):
            await rest.native("public_get_order_book_pair", {"pair": "btcusd"})
            at.append(now[0])
        return at

    at = asyncio.run(go())
    assert at[:10] == [0.0] * 10 and at[10:20] == [1.0] * 10 and at[20:] == [2.0] * 5
