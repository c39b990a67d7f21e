"""The local Binance venue's errors and faults as ccxt's unmodified ``binance`` class sees them,
and its durability across restarts (a clean stop and a SIGKILL).

Each Binance error must reach ccxt as the exception class the live engine will handle:
-1022 / -2014 / -2015 -> AuthenticationError, -1021 -> InvalidNonce, -2010 -> InsufficientFunds,
-2013 / -2011 -> OrderNotFound, 429 / 418 -> DDoSProtection, maintenance -> OnMaintenance, a
gateway 5xx or a dropped answer -> ExchangeNotAvailable (a NetworkError: outcome unknown).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import ccxt.async_support as ccxt
import pytest

from tests.exchange.process import ACCOUNTS, LocalBinance, ccxt_client

pytestmark = pytest.mark.realdata

START = 2000
FILES = ("spot_btcusdt_20240808.gz", "spot_btcusdt_20240809.gz")
IOC = {"timeInForce": "IOC"}


@pytest.fixture(scope="module")
def captures(shared_data: Path) -> list[Path]:
    return [shared_data / f for f in FILES]


@pytest.fixture
def venue(binance_venues: Callable[..., LocalBinance]) -> LocalBinance:
    return binance_venues("venue", start_line=START)


def best_ask(v: LocalBinance) -> float:
    return float(v.admin("GET", "/admin/book")["ask"])


def test_bad_credentials_and_clock_skew(venue: LocalBinance) -> None:
    async def run() -> None:
        async with ccxt_client(venue, options={"fetchCurrencies": False}) as (ex, _):
            await ex.load_markets()
            ex.secret = "not-the-secret"
            with pytest.raises(ccxt.AuthenticationError, match="-1022"):
                await ex.fetch_balance()
        async with ccxt_client(venue, options={"fetchCurrencies": False}) as (ex, _):
            ex.apiKey = "unknownKey42"
            with pytest.raises(ccxt.AuthenticationError, match="-2015"):
                await ex.fetch_balance()
            ex.apiKey = "bad key!"  # not even the format of a key
            with pytest.raises(ccxt.AuthenticationError, match="-2014"):
                await ex.fetch_balance()
        async with ccxt_client(venue) as (ex, _):
            await ex.load_markets()
            venue.admin("POST", "/admin/clock", {"offset_ms": 30_000})  # the venue runs 30 s ahead
            with pytest.raises(ccxt.InvalidNonce, match="outside of the recvWindow"):
                await ex.fetch_balance()
            await ex.load_time_difference()  # what a client does about it
            assert (await ex.fetch_balance())["info"]["accountType"] == "SPOT"
            venue.admin("POST", "/admin/clock", {"offset_ms": -30_000})
            ex.options["timeDifference"] = 0
            with pytest.raises(ccxt.InvalidNonce, match="ahead of the server"):
                await ex.fetch_balance()
        statuses = [(r["path"], r["status"]) for r in venue.requests()]
        # bad keys are refused with 401 (here while ccxt loads markets), bad signatures and clocks with 400
        assert ("/api/v3/account", 400) in statuses and 401 in {s for _, s in statuses}

    asyncio.run(run())


def test_orders_rejected_by_balance_filters_and_unknown_ids(venue: LocalBinance) -> None:
    ask = best_ask(venue)

    async def run() -> None:
        async with ccxt_client(venue, "poor") as (ex, _):  # 10 USDT
            with pytest.raises(ccxt.InsufficientFunds, match="insufficient balance"):
                await ex.create_order("BTC/USDT", "limit", "buy", 0.001, ask, {**IOC, "clientOrderId": "poor-1"})
        async with ccxt_client(venue) as (ex, _):
            await ex.load_markets()
            base = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "IOC"}
            with pytest.raises(ccxt.InvalidOrder, match="LOT_SIZE"):  # ccxt would round; send the raw request
                await ex.private_post_order({**base, "quantity": "0.000015", "price": str(ask)})
            with pytest.raises(ccxt.InvalidOrder, match="PRICE_FILTER"):
                await ex.private_post_order({**base, "quantity": "0.001", "price": f"{ask + 0.005:.3f}"})
            with pytest.raises(ccxt.BadRequest, match="NOTIONAL"):
                await ex.create_order("BTC/USDT", "limit", "buy", 0.00001, ask, IOC)
            with pytest.raises(ccxt.BadSymbol):
                await ex.private_post_order({**base, "symbol": "ETHUSDT", "quantity": "0.001", "price": "1"})
            with pytest.raises(ccxt.OrderNotFound, match="-2013"):
                await ex.fetch_order("424242", "BTC/USDT")
            with pytest.raises(ccxt.OrderNotFound, match="-2011"):
                await ex.cancel_order(None, "BTC/USDT", {"clientOrderId": "nope"})
            # insufficient balance on command, whatever the account holds; nothing is recorded
            venue.fault(kind="insufficient_balance", path="/api/v3/order", method="POST")
            with pytest.raises(ccxt.InsufficientFunds):
                await ex.create_order("BTC/USDT", "limit", "buy", 0.001, ask, {**IOC, "clientOrderId": "f-1"})
            ok = await ex.create_order("BTC/USDT", "limit", "buy", 0.001, ask, {**IOC, "clientOrderId": "f-2"})
            assert ok["status"] == "closed"
        assert venue.orders("poor") == []
        assert [o["clientOrderId"] for o in venue.orders()] == ["f-2"]

    asyncio.run(run())


def test_rate_limit_maintenance_and_gateway_faults(venue: LocalBinance) -> None:
    async def run() -> None:
        async with ccxt_client(venue) as (ex, _):
            await ex.load_markets()
            venue.fault(kind="rate_limit", count=2)
            for _ in range(2):
                with pytest.raises(ccxt.DDoSProtection, match="429"):
                    await ex.fetch_order_book("BTC/USDT")
            venue.fault(kind="rate_limit", status=418)
            with pytest.raises(ccxt.DDoSProtection, match="418"):
                await ex.fetch_balance()
            venue.fault(kind="maintenance", count=None)  # until cleared
            for _ in range(2):
                with pytest.raises(ccxt.OnMaintenance):
                    await ex.fetch_balance()
            assert venue.clear_faults() == {"cleared": 1}
            venue.fault(kind="http_error", status=502)
            with pytest.raises(ccxt.ExchangeNotAvailable):
                await ex.fetch_order_book("BTC/USDT")
            venue.fault(kind="latency", delay_ms=50, path="/api/v3/depth")
            assert (await ex.fetch_order_book("BTC/USDT"))["asks"]
            assert venue.admin("GET", "/admin/fault") == []  # every one used up
        statuses = [r["status"] for r in venue.requests()]
        assert statuses.count(429) == 2 and statuses.count(418) == 1 and statuses.count(503) == 2

    asyncio.run(run())


def test_the_weight_limit_answers_429_then_bans_with_418(binance_venues: Callable[..., LocalBinance]) -> None:
    v = binance_venues("limited", start_line=START, weight_limit=50)

    async def run() -> list[str]:
        seen = []
        async with ccxt_client(v, enableRateLimit=False) as (ex, _):
            for _ in range(60):  # depth?limit=100 weighs 5: the 11th in a minute is over 50
                try:
                    await ex.fetch_order_book("BTC/USDT", 100)
                    seen.append("ok")
                except ccxt.DDoSProtection as e:
                    seen.append("418" if " 418 " in str(e) else "429")
        return seen

    seen = asyncio.run(run())
    assert "429" in seen and seen[-1] == "418"
    assert seen.index("429") <= 20  # 10 fit in one minute (20 if the minute turned meanwhile)


@pytest.mark.parametrize("fault", [{"kind": "drop_response"}, {"kind": "http_error", "status": 503, "commit": True}])
def test_an_order_whose_answer_is_lost_is_committed_and_found_by_client_id(venue: LocalBinance,
                                                                           fault: dict[str, object]) -> None:
    ask = best_ask(venue)

    async def run() -> None:
        async with ccxt_client(venue) as (ex, _):
            await ex.load_markets()
            before = await ex.fetch_balance()
            venue.fault(**fault, path="/api/v3/order", method="POST")
            with pytest.raises(ccxt.NetworkError):  # ExchangeNotAvailable / RequestTimeout: outcome unknown
                await ex.create_order("BTC/USDT", "limit", "buy", 0.002, ask, {**IOC, "clientOrderId": "lost-1"})
            found = await ex.fetch_order(None, "BTC/USDT", {"clientOrderId": "lost-1"})
            assert found["status"] == "closed" and found["filled"] == 0.002
            after = await ex.fetch_balance()
            assert after["total"]["BTC"] > before["total"]["BTC"]
            trades = await ex.fetch_my_trades("BTC/USDT")
            assert [t["order"] for t in trades] == [found["id"]]
        assert [o["clientOrderId"] for o in venue.orders()] == ["lost-1"]

    asyncio.run(run())


@pytest.mark.parametrize("crash", [False, True], ids=["stop", "sigkill"])
def test_restart_keeps_orders_balances_and_trades(venue: LocalBinance, crash: bool) -> None:
    ask = best_ask(venue)

    async def trade() -> tuple[dict[str, object], list[object], list[object]]:
        async with ccxt_client(venue) as (ex, _):
            await ex.create_order("BTC/USDT", "limit", "buy", 0.003, ask, {**IOC, "clientOrderId": "r-1"})
            await ex.create_order("BTC/USDT", "limit", "buy", 0.01, ask - 500, {"timeInForce": "GTC",
                                                                             "clientOrderId": "r-2"})
            bal = (await ex.fetch_balance())["info"]["balances"]
            return bal, await ex.fetch_open_orders("BTC/USDT"), await ex.fetch_my_trades("BTC/USDT")

    bal, opened, trades = asyncio.run(trade())
    orders = venue.orders()
    venue.restart(crash=crash)

    async def again() -> None:
        async with ccxt_client(venue) as (ex, _):
            assert (await ex.fetch_balance())["info"]["balances"] == bal
            assert [o["id"] for o in await ex.fetch_open_orders("BTC/USDT")] == [o["id"] for o in opened]
            assert [t["id"] for t in await ex.fetch_my_trades("BTC/USDT")] == [t["id"] for t in trades]
            assert (await ex.fetch_order(None, "BTC/USDT", {"clientOrderId": "r-1"}))["status"] == "closed"
            nxt = await ex.create_order("BTC/USDT", "limit", "buy", 0.001, ask - 500, {"timeInForce": "GTC",
                                                                                    "clientOrderId": "r-3"})
            assert int(nxt["id"]) > max(int(o["orderId"]) for o in orders)  # ids are never reused

    asyncio.run(again())
    assert venue.orders()[:2] == orders


def test_bad_start_is_one_clear_line_and_a_nonzero_exit(tmp_path: Path, captures: list[Path]) -> None:
    missing = LocalBinance(tmp_path / "m", [tmp_path / "nope.gz"])
    with pytest.raises(RuntimeError, match=r"capture file not found: .*nope\.gz") as e:
        missing.start()
    assert "Traceback" not in str(e.value)
    assert missing.proc is not None and missing.proc.returncode == 2
    bad = LocalBinance(tmp_path / "b", captures, accounts=[{**ACCOUNTS[0], "api_key": "has space"}])
    with pytest.raises(RuntimeError, match="api_key must be 1-128 letters or digits"):
        bad.start()
