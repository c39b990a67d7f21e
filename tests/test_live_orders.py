"""Live orders through ccxt against the local Binance venue (a real process speaking Binance's
REST API): the write-ahead journal, answers lost and resolved by client id, refusals with their
reasons, reconciliation after a crash. Every test ends by comparing the journal and its ledger
with the venue's own state."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from cryptoarb.core.accounting import Portfolio
from cryptoarb.core.orders import OrderStatus
from cryptoarb.execution import journal as J
from cryptoarb.execution.live import JournalRunner
from cryptoarb.execution.reconcile import reconcile
from cryptoarb.storage import connect
from tests.exchange.process import LocalBinance
from tests.livetrade import SYMBOL, check_against_venue, live_venue, order, top


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[JournalRunner]:
    engine = connect(str(tmp_path / "journal.db"))
    r = JournalRunner(J.Journal(engine))
    yield r
    r.close()
    engine.dispose()


@pytest.fixture
def venue(binance_venues: Callable[..., LocalBinance]) -> LocalBinance:
    return binance_venues("a")


def test_an_ioc_buy_is_journaled_before_it_is_sent_then_filled(venue: LocalBinance, runner: JournalRunner) -> None:
    pf = Portfolio()
    runner.journal.open_ledger("binance", {"BTC": Decimal(2), "USDT": Decimal(200000)}, 0)

    async def go() -> None:
        async with live_venue(venue, runner, portfolio=pf) as lv:
            seen: list[str] = []

            def spy_create(*a, **kw):  # type: ignore[no-untyped-def]
                # when the request leaves, the journal already holds the order as pending_new
                seen.extend(o.state for o in runner.journal.unresolved("binance"))
                return real(*a, **kw)

            real = lv.exchange.create_order
            lv.exchange.create_order = spy_create
            _, ask = top(venue)
            o = order("binance", "buy", "0.01", str(ask + 5), "r1-1b")
            await lv.place(o)
            assert seen == [J.PENDING_NEW]
            assert o.status is OrderStatus.FILLED and o.filled_qty == Decimal("0.01")
            assert pf.balance("binance", "BTC") == Decimal("0.01") - o.fee
    asyncio.run(go())
    jo = runner.journal.orders("binance")[0]
    assert jo.client_id.startswith("car1") and jo.state == J.FILLED
    assert [s for s, _ in runner.journal.events(jo.client_id)] == [J.PENDING_NEW, J.FILLED]
    check_against_venue(runner.journal, "binance", venue)


def test_a_dropped_answer_is_resolved_by_client_id_never_sent_twice(venue: LocalBinance, runner: JournalRunner
                                                                    ) -> None:
    runner.journal.open_ledger("binance", {"BTC": Decimal(2), "USDT": Decimal(200000)}, 0)
    venue.fault(kind="drop_response", path="/api/v3/order", method="POST")
    bid, _ = top(venue)

    async def go() -> None:
        async with live_venue(venue, runner) as lv:
            o = order("binance", "sell", "0.02", str(bid - 5), "r1-2s")
            await lv.place(o)
            assert o.status is OrderStatus.FILLED
            assert lv.stats.unknown == 1 and lv.stats.lookups >= 1
    asyncio.run(go())
    posts = [r for r in venue.requests() if r["method"] == "POST" and r["path"] == "/api/v3/order"]
    assert len(posts) == 1
    states = [s for s, _ in runner.journal.events(runner.journal.orders()[0].client_id)]
    assert states == [J.PENDING_NEW, J.UNKNOWN, J.FILLED]
    check_against_venue(runner.journal, "binance", venue)


@pytest.mark.parametrize("fault", [{"kind": "http_error", "status": 502}, {"kind": "rate_limit"},
                                   {"kind": "maintenance"}], ids=["502", "429", "maintenance"])
def test_an_order_the_venue_never_took_is_not_placed_after_its_window(venue: LocalBinance, runner: JournalRunner,
                                                                      fault: dict[str, object]) -> None:
    runner.journal.open_ledger("binance", {"BTC": Decimal(2), "USDT": Decimal(200000)}, 0)
    venue.fault(path="/api/v3/order", method="POST", **fault)
    _, ask = top(venue)

    async def go() -> None:
        async with live_venue(venue, runner) as lv:
            o = order("binance", "buy", "0.01", str(ask), "r1-3b")
            await lv.place(o)
            assert o.status is OrderStatus.FAILED and "never placed" in o.reason
    asyncio.run(go())
    assert [r for r in venue.requests() if r["method"] == "POST" and r["path"] == "/api/v3/order"][-1]["status"] >= 429
    assert runner.journal.orders()[0].state == J.NOT_PLACED
    check_against_venue(runner.journal, "binance", venue)


@pytest.mark.parametrize(("account", "setup", "want"), [
    ("poor", None, "insufficient balance"),
    ("alice", {"offset_ms": -30_000}, "clock skew"),
    ("alice", "badkey", "refused the API key"),
], ids=["insufficient", "clock-skew", "bad-key"])
def test_a_refusal_is_final_with_its_reason(venue: LocalBinance, runner: JournalRunner, account: str,
                                            setup: object, want: str) -> None:
    _, ask = top(venue)
    errors: list[str] = []

    async def go() -> None:
        async with live_venue(venue, runner, account=account) as lv:
            lv.on_error.append(errors.append)
            if isinstance(setup, dict):  # after load_markets (which signs requests too)
                venue.admin("POST", "/admin/clock", setup)
            if setup == "badkey":
                lv.exchange.secret = "wrong-secret"
            o = order("binance", "buy", "0.01", str(ask), "r1-4b")
            await lv.place(o)
            assert o.status is OrderStatus.REJECTED and want in o.reason, o.reason
    asyncio.run(go())
    assert runner.journal.orders()[0].state == J.REJECTED
    assert venue.orders(account) == []
    assert all("\n" not in e and "wrong-secret" not in e and "secret-not-a-real-one" not in e for e in errors)


def test_precision_and_limits_are_applied_before_anything_is_sent(venue: LocalBinance, runner: JournalRunner
                                                                  ) -> None:
    _, ask = top(venue)

    async def go() -> None:
        async with live_venue(venue, runner) as lv:
            o = order("binance", "buy", "0.0100099", str(ask + Decimal("0.009")), "r1-5b")
            kind, amount, price, params = lv.prepare(o)  # type: ignore[misc]
            assert (kind, amount, params) == ("limit", Decimal("0.01000"), {"timeInForce": "IOC"})
            assert price == ask  # a buy limit rounds down onto the tick grid, never above the limit
            tiny = order("binance", "buy", "0.00001", str(ask), "r1-6b")
            await lv.place(tiny)
            assert tiny.status is OrderStatus.REJECTED and "notional" in tiny.reason
    asyncio.run(go())
    assert runner.journal.orders() == [] and venue.orders() == []


def test_reconciliation_after_a_crash_books_missed_fills_and_reports_strangers(venue: LocalBinance,
                                                                                runner: JournalRunner) -> None:
    """Three crashes' leftovers: an order journaled but never sent, one sent whose answer was
    never journaled (its fills missed), and an order at the venue the journal does not know."""
    runner.journal.open_ledger("binance", {"BTC": Decimal(2), "USDT": Decimal(200000)}, 0)
    bid, ask = top(venue)
    import time

    now = time.time_ns()

    def jo(cid: str, side: str, price: Decimal) -> J.JournalOrder:
        return J.JournalOrder(cid, cid, "old", 1, "binance", SYMBOL, side, "limit_ioc", Decimal("0.01"), price,
                              "BTC", "USDT", created_ns=now)

    never = jo("caoldneverSent", "buy", ask)
    sent = jo("caoldsentLost", "buy", ask + 10)
    runner.journal.new(never, now)
    runner.journal.new(sent, now)
    surprises: list[tuple[str, str]] = []

    async def go() -> None:
        async with live_venue(venue, runner, run_id="new") as lv:
            # the crashed run's request, as it left: the answer is lost with the process
            await lv.exchange.create_order(SYMBOL, "limit", "buy", 0.01, float(ask + 10),
                                           {"timeInForce": "IOC", "newClientOrderId": sent.client_id})
            await lv.exchange.create_order(SYMBOL, "limit", "buy", 0.001, float(bid - 1000),
                                           {"timeInForce": "GTC", "newClientOrderId": "someoneElse1"})
            stranger = await lv.exchange.create_order(SYMBOL, "limit", "sell", 0.001, float(bid - 10),
                                                      {"timeInForce": "IOC", "newClientOrderId": "someoneElse2"})
            rep = await reconcile(lv, [SYMBOL], [lambda v, s: surprises.append((v, s))])
            assert rep.resolved == {J.FILLED: 1, J.NOT_PLACED: 1}
            assert rep.fills_booked >= 1
            # the stranger's sell is not in our ledger: the venue's balances differ by it
            assert rep.drift["BTC"][0] - rep.drift["BTC"][1] == Decimal(str(stranger["filled"]))
            await lv.exchange.cancel_order("", SYMBOL, {"origClientOrderId": "someoneElse1"})
    asyncio.run(go())
    assert any("someoneElse1" in s and "not ours" in s for _, s in surprises), surprises
    strange_trades = [s for _, s in surprises if s.startswith("trade ")]
    assert len(strange_trades) >= 1 and all("sell" in s and "not in the journal" in s for s in strange_trades)
    states = {o.client_id: o.state for o in runner.journal.orders()}
    assert states == {never.client_id: J.NOT_PLACED, sent.client_id: J.FILLED}


def test_arb_trade_start_refusals_are_one_clear_line(venue: LocalBinance, tmp_path: Path) -> None:
    """Bad keys and clock skew stop ``arb run --live --trade`` at start, before any order."""
    import os
    import subprocess
    import sys

    from tests.livetrade import arb_config, key_env

    cfg = arb_config(tmp_path / "arb.toml", {"binance": venue}, f"sqlite:///{tmp_path / 'arb.db'}")
    env = {**os.environ, **key_env({"binance": venue}), "COLUMNS": "200", "NO_COLOR": "1"}

    def arb(extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cryptoarb.cli", "run", "--live", "--trade", "--venues",
                               "binance", "--no-view", "--duration", "5", "--config", str(cfg)],
                              capture_output=True, text=True, env={**env, **extra}, timeout=120,
                              stdin=subprocess.DEVNULL)

    r = arb({"CRYPTOARB_BINANCE_API_SECRET": "not-the-secret"})
    assert r.returncode == 2, r.stderr
    assert "binance: the venue refused the API key from environment" in r.stderr
    assert "not-the-secret" not in r.stdout + r.stderr and "Traceback" not in r.stderr
    venue.admin("POST", "/admin/clock", {"offset_ms": -20_000})
    r = arb({})
    assert r.returncode == 2 and "clock skew" in r.stderr and "NTP" in r.stderr, r.stderr
    assert [q for q in venue.requests() if q["path"] == "/api/v3/order"] == []
