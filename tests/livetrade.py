"""Helpers for the live-order tests: a ``LiveVenue`` on a local Binance venue process, with its
journal on a real database, and the checks that compare the journal and ledger with the venue's
own state (``/admin/orders``, ``/admin/balances``)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from cryptoarb.core.accounting import Portfolio
from cryptoarb.core.orders import Order
from cryptoarb.execution import journal as J
from cryptoarb.execution.live import JournalRunner, LiveVenue
from cryptoarb.venues.catalog import Catalog
from tests.exchange.process import LocalBinance, ccxt_client, ccxt_urls

SYMBOL = "BTC/USDT"
_STATE = {"FILLED": J.FILLED, "EXPIRED": J.CANCELED, "CANCELED": J.CANCELED, "REJECTED": J.REJECTED,
          "NEW": J.OPEN, "PARTIALLY_FILLED": J.PARTIAL}


@asynccontextmanager
async def live_venue(venue: LocalBinance, runner: JournalRunner, name: str = "binance", run_id: str = "r1",
                     account: str = "alice", portfolio: Portfolio | None = None, **settings: Any
                     ) -> AsyncIterator[LiveVenue]:
    import ccxt.async_support as ccxt_async

    from cryptoarb.config_trading import TradingVenueSettings

    cls = getattr(ccxt_async, name)
    async with ccxt_client(venue, account, cls) as (ex, _guard):
        await ex.load_markets()
        inst = Catalog().get("binance", SYMBOL)
        if name != "binance":
            from dataclasses import replace

            inst = replace(inst, venue=name)
        lv = LiveVenue(name, ex, runner, portfolio or Portfolio(), run_id, {SYMBOL: inst},
                       TradingVenueSettings(**{"recv_window_ms": 1000, "poll_interval_ms": 50, **settings}))
        yield lv


def order(venue: str, side: str, qty: str, price: str, oid: str, arb_id: int = 1) -> Order:
    return Order(oid, venue, SYMBOL, side, Decimal(qty), Decimal(price), Decimal(price), time.time_ns(),
                 arb_id=arb_id)


def check_against_venue(journal: J.Journal, venue_name: str, venue: LocalBinance, account: str = "alice"
                        ) -> dict[str, int]:
    """The journal equals the venue's own order state; every order exists once; the ledger equals
    the venue's balances. Returns the counts (orders, lost, duplicated, unresolved)."""
    at_venue = venue.orders(account)
    by_cid: dict[str, list[dict[str, Any]]] = {}
    for o in at_venue:
        by_cid.setdefault(o["clientOrderId"], []).append(o)
    duplicated = sum(len(v) - 1 for v in by_cid.values() if len(v) > 1)
    ours = journal.orders(venue_name)
    unresolved = [o.client_id for o in ours if o.state not in J.TERMINAL]
    lost = []
    mismatched = []
    for jo in ours:
        vo = by_cid.pop(jo.client_id, None)
        if vo is None:
            if jo.state not in (J.NOT_PLACED, J.REJECTED):  # refused at the door: never an order there
                lost.append(f"{jo.client_id}: journal {jo.state}, venue has no such order")
            continue
        vo0 = vo[0]
        if jo.state == J.NOT_PLACED:
            lost.append(f"{jo.client_id}: journal not_placed, venue has it ({vo0['status']})")
            continue
        want = _STATE.get(vo0["status"], vo0["status"])
        if want != jo.state or Decimal(vo0["executedQty"]) != jo.filled_qty or \
                str(vo0["orderId"]) != jo.venue_order_id:
            mismatched.append(f"{jo.client_id}: journal {jo.state} {jo.filled_qty} #{jo.venue_order_id}, "
                              f"venue {vo0['status']} {vo0['executedQty']} #{vo0['orderId']}")
    lost += [f"{cid}: at the venue, not in the journal" for cid in by_cid]
    assert not lost, lost[:10]
    assert not mismatched, mismatched[:10]
    assert duplicated == 0
    assert not unresolved, unresolved[:10]
    ledger = {a: v for (_, a), v in journal.ledger(venue_name).items() if v}
    bal = {a: Decimal(b["free"]) + Decimal(b["locked"]) for a, b in venue.balances(account).items()}
    bal = {a: v for a, v in bal.items() if v}
    assert ledger == bal, (ledger, bal)
    return {"orders": len(ours), "venue_orders": len(at_venue), "lost": len(lost), "duplicated": duplicated,
            "unresolved": len(unresolved)}


def top(venue: LocalBinance) -> tuple[Decimal, Decimal]:
    pos = venue.admin("GET", "/admin/book")
    return Decimal(pos["bid"]), Decimal(pos["ask"])


def arb_config(path: Path, venues: dict[str, LocalBinance], db_url: str, extra: str = "") -> Path:
    """Settings for ``arb run --live --trade`` on local venues: every ccxt URL and the depth
    stream pointed at them, small trades, the journal in ``db_url``."""
    import ccxt

    lines = [f'[storage]\nurl = "{db_url}"\n', "[detector]\nmax_notional_quote = 100\nmin_profit_bps = 1\n",
             "[paper]\nmax_open_trades = 2\n"]
    for name, v in venues.items():
        ex = getattr(ccxt, name)()
        ccxt_urls(ex, v.url)
        lines.append(f'[live.venues.{name}]\nws_url = "ws://127.0.0.1:{v.port}/stream"\n')
        lines.append(f"[live.venues.{name}.ccxt.urls.api]\n" + "".join(
            f'{k} = "{u}"\n' for k, u in ex.urls["api"].items() if isinstance(u, str)))
        lines.append(f"[trading.venues.{name}]\nrecv_window_ms = 1000\npoll_interval_ms = 50\n")
    path.write_text("\n".join(lines) + extra)
    return path


def key_env(venues: dict[str, LocalBinance], account: str = "alice") -> dict[str, str]:
    from cryptoarb.execution.keys import env_name

    env = {}
    for name, v in venues.items():
        acc = v.account(account)
        env[env_name(name, "API_KEY")] = acc["api_key"]
        env[env_name(name, "API_SECRET")] = acc["secret"]
    return env
