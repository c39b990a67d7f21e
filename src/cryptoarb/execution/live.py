"""Live order execution through ccxt (async), behind the paper venue's interface.

The execution interface (what ``ArbExecutor`` drives, and what leg-risk policies use):

* ``execute(order, book, now_ns) -> list[Fill]`` — the paper venue's call. ``PaperVenue`` fills
  at once; ``LiveVenue`` returns ``[]`` with the order ``submitted`` and later reports its fills
  and final state through ``on_update(order, fills, now_ns)`` (``ArbExecutor.order_update``).
* ``await place(order) -> Order`` — send one order and wait for its final state (a retry, a
  hedge or an unwind leg: build an ``Order`` and place it; ``on_update`` is called as well).
* ``await fetch_balances() -> {asset: Decimal}`` — the venue's total balances.
* ``await cancel(order)`` — cancel an order still open at the venue (by client id).
* ``await reconcile()`` — see ``execution/reconcile.py``; run before any new order.

Every order goes: local checks (precision, limits: exact step multiples, nothing sent off-grid)
-> journal ``pending_new`` committed -> one ``create_order`` (never retried: ccxt's own
``maxRetriesOnFailure`` is forced to 0) -> its answer, journaled with its fills. An answer that
never comes (timeout, reset, 5xx, rate limit, maintenance) makes the order ``unknown``: it is then
looked up by its client id until the venue says what became of it — never sent again. Binance
family venues stamp the request with the journal's own creation time, so once ``recvWindow`` has
passed the venue would refuse it: an order not found then was never placed (``not_placed``).

Orders are taker orders: IOC limit where the venue has it (ccxt ``features``), else a plain
limit at the touch (canceled if it rests) or market, per ``[trading.venues.<id>] order_type``.
Order updates are polled over REST while an order is open (the answer of an IOC order is
final, so most orders need no update at all).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from cryptoarb.config_trading import TradingVenueSettings
from cryptoarb.core.accounting import Portfolio
from cryptoarb.core.book import OrderBook
from cryptoarb.core.footprint import Footprints
from cryptoarb.core.instruments import Instrument, dec
from cryptoarb.core.orders import Fill, Order, OrderStatus
from cryptoarb.execution import journal as J
from cryptoarb.execution.ccxt_parse import floor_step, order_state, round_step, step_of, venue_fill, venue_fills
from cryptoarb.execution.client_ids import client_id
from cryptoarb.execution.errors import Outcome, classify, one_line
from cryptoarb.execution.keys import Credentials

T = TypeVar("T")
BINANCE_FAMILY = frozenset({"binance", "binanceus"})
CLOCK_MARGIN_MS = 1_000  # the venue's clock ahead of ours by up to this much (Binance allows 1 s)


@dataclass
class LiveStats:
    sent: int = 0
    unknown: int = 0  # sends whose answer was lost (resolved afterwards)
    rejected: int = 0
    local_rejects: int = 0  # refused before sending (precision, limits)
    not_placed: int = 0
    lookups: int = 0
    errors: dict[str, int] = field(default_factory=dict)


class JournalRunner:
    """The journal on one worker thread: calls run in order, off the event loop."""

    def __init__(self, journal: J.Journal) -> None:
        self.journal = journal
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="journal")

    async def __call__(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kw))

    def close(self) -> None:
        self._pool.shutdown(wait=True)


class LiveVenue:
    """One venue traded for real through a ccxt async exchange instance."""

    def __init__(self, venue: str, exchange: Any, journal: JournalRunner, portfolio: Portfolio, run_id: str,
                 instruments: dict[str, Instrument], settings: TradingVenueSettings | None = None,
                 credentials: Credentials | None = None, footprints: Footprints | None = None) -> None:
        self.venue = venue
        self.exchange = exchange
        self.journal = journal
        self.portfolio = portfolio
        self.run_id = run_id
        self.instruments = instruments  # by unified symbol
        self.settings = settings or TradingVenueSettings()
        self.credentials = credentials
        self.footprints = footprints if footprints is not None else Footprints()
        self.stats = LiveStats()
        #: set by the executor: an order's new fills and state (also called by place())
        self.on_update: Callable[[Order, list[Fill], int], None] = lambda o, f, ns: None
        #: every venue error, one line, secrets scrubbed (alerts, the live view)
        self.on_error: list[Callable[[str], None]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        exchange.options["maxRetriesOnFailure"] = 0  # never a blind resend by ccxt itself
        if venue in BINANCE_FAMILY:
            exchange.options["recvWindow"] = self.settings.recv_window_ms
            exchange.options.setdefault("newOrderRespType", {})
            exchange.options["newOrderRespType"] = {"limit": "FULL", "market": "FULL"}

    def __repr__(self) -> str:  # the exchange instance holds the keys: never shown
        return f"LiveVenue({self.venue!r}, {len(self._tasks)} in flight)"

    # -- the paper venue's interface ----------------------------------------------------------
    def execute(self, order: Order, book: OrderBook, now_ns: int) -> list[Fill]:
        """Start sending ``order`` (its fills come later through ``on_update``)."""
        order.transition(OrderStatus.SUBMITTED, now_ns)
        task = asyncio.get_running_loop().create_task(self._run(order, book))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return []

    async def place(self, order: Order) -> Order:
        """Send one order (status ``new``) and return it in its final state."""
        order.transition(OrderStatus.SUBMITTED, time.time_ns())
        await self._run(order, None)
        return order

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def drain(self, timeout: float) -> bool:
        """Wait for orders in flight (end of a run); False if some are still unresolved (the
        journal has them: the next start reconciles them)."""
        if not self._tasks:
            return True
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        for t in pending:
            t.cancel()
        return not pending

    async def fetch_balances(self) -> dict[str, Decimal]:
        """Total balance per asset (free + locked), exactly as the venue states it."""
        bal = await self.exchange.fetch_balance()
        out: dict[str, Decimal] = {}
        for asset, amount in (bal.get("total") or {}).items():
            if amount:
                out[asset] = dec(amount)
        return out

    async def cancel(self, order: Order) -> None:
        jo = next((o for o in await self.journal(self.journal.journal.unresolved, self.venue)
                   if o.order_id == order.id), None)
        if jo is None:
            return
        params = self._cid_params(jo.client_id)
        await self.exchange.cancel_order(jo.venue_order_id or "", jo.symbol, params)
        await self.resolve(jo, order)

    # -- one order ------------------------------------------------------------------------------
    async def _run(self, order: Order, book: OrderBook | None) -> None:
        try:
            await self._send(order, book)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug must not kill the loop: the journal keeps the order
            self._error(f"{self.venue} {order.id}: {one_line(e, self.credentials)}")

    def prepare(self, order: Order) -> tuple[str, Decimal, Decimal, dict[str, Any]] | str:
        """(ccxt type, amount, price, params) on the venue's grid, or why it cannot be sent."""
        market = self.exchange.markets.get(order.symbol) if self.exchange.markets else None
        if market is None:
            return f"{order.symbol} is not a market of {self.venue}"
        mode = self.exchange.precisionMode
        step = step_of(market, "amount", mode)
        tick = step_of(market, "price", mode)
        amount = floor_step(order.qty, step)
        buy = order.side == "buy"
        price = round_step(order.limit_price, tick, up=not buy)  # never beyond the limit the detector set
        lim = market.get("limits") or {}
        lo = (lim.get("amount") or {}).get("min")
        if amount <= 0 or (lo is not None and amount < dec(lo)):
            return f"quantity {order.qty} is below the minimum {lo} after rounding to the step {step}"
        hi = (lim.get("amount") or {}).get("max")
        if hi is not None and amount > dec(hi):
            return f"quantity {amount} is above the maximum {hi}"
        cost_min = (lim.get("cost") or {}).get("min")
        if cost_min is not None and amount * price < dec(cost_min):
            return f"notional {amount * price} is below the minimum {cost_min}"
        kind = self.order_kind(market)
        params: dict[str, Any] = {}
        if kind == "ioc":
            params["timeInForce"] = "IOC"
        return ("market" if kind == "market" else "limit"), amount, price, params

    def order_kind(self, market: dict[str, Any]) -> str:
        """IOC where the venue has it, else a limit at the touch; or as configured."""
        want = self.settings.order_type
        if want != "auto":
            return want
        feats = (self.exchange.features or {}).get("spot") or {}
        tif = ((feats.get("createOrder") or {}).get("timeInForce") or {})
        return "ioc" if tif.get("IOC") else "limit"

    async def _send(self, order: Order, book: OrderBook | None) -> None:
        prep = self.prepare(order)
        now = time.time_ns()
        if isinstance(prep, str):
            self.stats.local_rejects += 1
            order.transition(OrderStatus.REJECTED, now, f"not sent: {prep}")
            self.on_update(order, [], now)
            return
        kind, amount, price, params = prep
        if amount != order.qty:
            order.qty = amount  # on the venue's step grid (the fills are what count)
        inst = self.instruments[order.symbol]
        # order ids are unique within a run and carry the run id: the rest of the id makes the client id
        # (hashed by client_id() where the venue's rule needs it)
        rest = order.id[len(self.run_id) + 1:] if order.id.startswith(f"{self.run_id}-") else order.id
        cid = client_id(self.venue, self.run_id, rest, "")
        jo = J.JournalOrder(cid, order.id, self.run_id, order.arb_id, self.venue, order.symbol, order.side,
                            "limit_ioc" if kind == "limit" and params else kind, amount,
                            price if kind != "market" else Decimal(0), inst.base, inst.quote, created_ns=now)
        try:
            await self.journal(self.journal.journal.new, jo, now)  # the write-ahead: committed before sending
        except Exception as e:  # no journal row, no order: refuse it rather than send it unrecorded
            order.transition(OrderStatus.REJECTED, time.time_ns(), f"not sent: journal unavailable ({one_line(e)})")
            self._error(f"{self.venue} {order.id}: journal unavailable, order not sent ({one_line(e)})")
            self.on_update(order, [], time.time_ns())
            return
        params = {**params, **self._cid_params(cid, new=True)}
        if self.venue in BINANCE_FAMILY:  # the request's timestamp is the journal's: see resolve()
            params["timestamp"] = now // 1_000_000 - int(self.exchange.options.get("timeDifference") or 0)
        self.stats.sent += 1
        try:
            answer = await self.exchange.create_order(order.symbol, kind, order.side, float(amount),
                                                      None if kind == "market" else float(price), params)
        except Exception as e:
            outcome, why = classify(e, self.credentials)
            if outcome is Outcome.REJECTED:  # the venue refused it: nothing happened there
                self.stats.rejected += 1
                await self._finish(jo, order, J.REJECTED, [], why)
                self._error(f"{self.venue} {order.symbol} {order.side} rejected: {why}")
                return
            self.stats.unknown += 1
            self._error(f"{self.venue} {order.symbol} {order.side}: outcome unknown ({why}); resolving by client id")
            await self.journal(self.journal.journal.record, jo, J.UNKNOWN, time.time_ns(), reason=why)
            await self.resolve(jo, order)
            return
        try:
            await self._apply(jo, order, answer)
        except Exception as e:  # an answer we could not use (or journal): ask the venue again
            self._error(f"{self.venue} {jo.client_id}: answer not recorded ({one_line(e, self.credentials)})")
            await self.resolve(jo, order)
            return
        if jo.state not in J.TERMINAL:
            await self._follow(jo, order)

    def _cid_params(self, cid: str, new: bool = False) -> dict[str, Any]:
        if self.venue in BINANCE_FAMILY:
            return {"newClientOrderId": cid} if new else {"origClientOrderId": cid}
        return {"clientOrderId": cid}

    # -- answers ---------------------------------------------------------------------------------
    async def _apply(self, jo: J.JournalOrder, order: Order | None, answer: dict[str, Any]) -> None:
        """Journal what an order answer (create, fetch) says: state and fills."""
        vid = answer.get("id")
        if vid:
            jo.venue_order_id = str(vid)
        state = order_state(answer)
        fills = venue_fills(answer)
        filled = dec(answer.get("filled") or 0)
        if filled > sum((f.qty for f in fills), Decimal(0)) or (filled and not fills):
            fills = await self._trades_of(jo)  # the answer does not list them all: ask for the trades
        await self._finish(jo, order, state, fills, "")

    async def _trades_of(self, jo: J.JournalOrder) -> list[J.VenueFill]:
        params = {"orderId": jo.venue_order_id} if self.venue in BINANCE_FAMILY else {}
        since = jo.created_ns // 1_000_000 - 60_000
        trades = await self.exchange.fetch_my_trades(jo.symbol, since, None, params)
        return [venue_fill(t) for t in trades if str(t.get("order")) == jo.venue_order_id]

    async def _finish(self, jo: J.JournalOrder, order: Order | None, state: str, fills: list[J.VenueFill],
                      why: str) -> None:
        now = time.time_ns()
        new = await self.journal(self.journal.journal.record, jo, state, now, fills, why)
        if state == J.NOT_PLACED:
            self.stats.not_placed += 1
        if order is None:
            return
        booked = self._book(order, new)
        if state in J.TERMINAL and not order.status.terminal:
            if state == J.REJECTED:
                order.transition(OrderStatus.REJECTED, now, why or "rejected by the venue")
            elif state == J.NOT_PLACED:
                order.transition(OrderStatus.FAILED, now, why or "never reached the venue")
            elif state == J.CANCELED:
                order.transition(OrderStatus.CANCELED, now, "IOC remainder canceled" if order.filled_qty else
                                 "no liquidity within limit price")
        self.on_update(order, booked, now)

    def _book(self, order: Order, new: list[J.VenueFill]) -> list[Fill]:
        """The fills newly journaled: onto the order, the in-memory ledger and our footprint."""
        inst = self.instruments[order.symbol]
        out: list[Fill] = []
        key = f"{self.venue} {order.symbol}"
        fp = self.footprints.get(key)
        for f in new:
            fill = Fill(order.id, self.venue, order.symbol, order.side, f.price, f.qty, f.fee, f.fee_currency,
                        f.ts_ns)
            if order.filled_qty + f.qty > order.qty:  # never: the venue filled more than sent
                self._error(f"{self.venue} {order.id}: fill {f.trade_id} overfills {order.filled_qty}/{order.qty}")
                order.qty = order.filled_qty + f.qty
            order.add_fill(fill)
            self.portfolio.apply_fill(inst, fill)
            if fp is not None:
                side = "asks" if order.side == "buy" else "bids"
                fp.take(side, float(f.price), f.qty)
            out.append(fill)
        return out

    async def _follow(self, jo: J.JournalOrder, order: Order | None) -> None:
        """An order still open at the venue (a limit at the touch, or slow to finish): poll it
        until it is final; a limit that rests is canceled (we only take)."""
        interval = self.settings.poll_interval_ms / 1000
        canceled = False
        while jo.state not in J.TERMINAL:
            await asyncio.sleep(interval)
            try:
                if not canceled and jo.type != "limit_ioc":
                    await self.exchange.cancel_order(jo.venue_order_id or "", jo.symbol, self._cid_params(jo.client_id))
                    canceled = True
                answer = await self._lookup(jo)
            except Exception as e:  # an order not found yet, the venue busy: ask again
                self._error(f"{self.venue} {jo.client_id}: {one_line(e, self.credentials)}")
                interval = min(interval * 2, 5.0)
                continue
            await self._apply(jo, order, answer)

    # -- unknown outcomes ------------------------------------------------------------------------
    def deadline_ns(self, jo: J.JournalOrder) -> int:
        """After this, an order the venue does not know was never placed and never will be."""
        if self.venue in BINANCE_FAMILY:
            return jo.created_ns + (self.settings.recv_window_ms + CLOCK_MARGIN_MS) * 1_000_000
        return (jo.sent_ns or jo.created_ns) + int(self.settings.unknown_after_s * 1e9)

    async def _lookup(self, jo: J.JournalOrder) -> dict[str, Any]:
        self.stats.lookups += 1
        answer: dict[str, Any] = await self.exchange.fetch_order(jo.venue_order_id or "", jo.symbol,
                                                                 self._cid_params(jo.client_id))
        return answer

    async def resolve(self, jo: J.JournalOrder, order: Order | None = None, stop: asyncio.Event | None = None) -> None:
        """Find out what became of an order by its client id (never by sending it again)."""
        import ccxt

        delay = 0.05
        while jo.state not in J.TERMINAL:
            try:
                answer = await self._lookup(jo)
            except ccxt.OrderNotFound:
                now = time.time_ns()
                if now >= self.deadline_ns(jo):
                    await self._finish(jo, order, J.NOT_PLACED, [], "not found at the venue after its "
                                       "acceptance window: never placed")
                    return
                await asyncio.sleep(min(max(delay, 0.05), (self.deadline_ns(jo) - now) / 1e9 + 0.01))
                delay = min(delay * 2, 1.0)
                continue
            except Exception as e:  # network, rate limit, maintenance: wait and ask again
                self._error(f"{self.venue} {jo.client_id}: lookup failed ({one_line(e, self.credentials)})")
                if stop is not None and stop.is_set():
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            await self._apply(jo, order, answer)
            if jo.state not in J.TERMINAL:
                await self._follow(jo, order)

    def _error(self, msg: str) -> None:
        self.stats.errors[msg.split(":")[0]] = self.stats.errors.get(msg.split(":")[0], 0) + 1
        for fn in self.on_error:
            fn(msg)
