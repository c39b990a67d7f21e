"""Live trading inside ``arb run --live --trade``: a service beside the feeds.

``start()`` runs before any feed (``live.runner.run_feeds``): it opens one authenticated ccxt
instance per venue (keys from ``execution.keys``), loads its markets, reconciles the journal
with the venue (``execution.reconcile``) and only then swaps the engine's paper venues for
``LiveVenue`` instances and seeds the engine's balances with what the venues hold. From then on
the engine trades exactly as in paper mode (same detector, same risk manager consulted first,
same storage); its orders go to the venues. ``close()`` waits for orders in flight (a bounded
time: what is left is in the journal and is reconciled at the next start), then closes.

Any start-up refusal (bad keys, clock skew, maintenance, a venue down) is a
:class:`LiveStartError` with one line naming the venue and what to fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from cryptoarb.config import Settings
from cryptoarb.core.orders import Fill, Order
from cryptoarb.engine.engine import Engine
from cryptoarb.execution import journal as J
from cryptoarb.execution.errors import one_line
from cryptoarb.execution.inventory import check_venue
from cryptoarb.execution.keys import Credentials
from cryptoarb.execution.live import JournalRunner, LiveVenue
from cryptoarb.execution.reconcile import Report, reconcile


class LiveStartError(Exception):
    """Live trading cannot start; the message says which venue and why."""


class LiveTrading:
    def __init__(self, engine: Engine, settings: Settings, keys: dict[str, Credentials], db: Any,
                 drain_timeout_s: float = 10.0) -> None:
        self.engine = engine
        self.settings = settings
        self.keys = keys
        self.runner = JournalRunner(J.Journal(db))
        self.db = db
        self.drain_timeout_s = drain_timeout_s
        self.venues: dict[str, LiveVenue] = {}
        self.reports: list[Report] = []
        self.errors: list[str] = []  # the last venue errors, one line each (the live view)
        #: listeners of reconciliation surprises and venue errors: (venue, message); alerts subscribe here
        self.on_surprise: list[Callable[[str, str], None]] = []
        self._exchanges: list[Any] = []
        self._tasks: set[asyncio.Task[None]] = set()  # balance checks and kill cancels in flight

    def __repr__(self) -> str:
        return f"LiveTrading({', '.join(self.keys)})"

    def _exchange(self, venue: str) -> Any:
        import ccxt.async_support as ccxt_async

        vs = self.settings.live.venues.get(venue)
        tv = self.settings.trading.venue(venue)
        config = {**(vs.ccxt if vs else {}), **self.keys[venue].ccxt_config(),
                  "timeout": tv.timeout_ms, "enableRateLimit": True}
        ex = getattr(ccxt_async, venue)(config)
        self._exchanges.append(ex)
        return ex

    async def start(self) -> None:
        import ccxt

        eng = self.engine
        by_venue: dict[str, dict[str, Any]] = {}
        for inst in eng.instruments:
            by_venue.setdefault(inst.venue, {})[inst.symbol] = inst
        for venue, insts in by_venue.items():
            creds = self.keys[venue]
            ex = self._exchange(venue)
            lv = LiveVenue(venue, ex, self.runner, eng.portfolio, eng.run_id, insts,
                           self.settings.trading.venue(venue), creds, eng.footprints)
            lv.on_error.append(self._error)
            try:
                await ex.load_markets()
                rep = await reconcile(lv, sorted(insts), self.on_surprise)
            except ccxt.AuthenticationError as e:
                raise LiveStartError(f"{venue}: the venue refused the API key from {creds.source} "
                                     f"({one_line(e, creds)})") from None
            except ccxt.InvalidNonce as e:
                raise LiveStartError(f"{venue}: clock skew: the venue refused our timestamps; sync this machine's "
                                     f"clock (NTP) ({one_line(e, creds)})") from None
            except ccxt.OnMaintenance as e:
                raise LiveStartError(f"{venue}: the venue is under maintenance; try later ({one_line(e, creds)})"
                                     ) from None
            except ccxt.DDoSProtection as e:
                raise LiveStartError(f"{venue}: rate-limited by the venue; wait before starting again "
                                     f"({one_line(e, creds)})") from None
            except (ccxt.BaseError, OSError) as e:
                raise LiveStartError(f"{venue}: cannot start live trading ({one_line(e, creds)})") from None
            self.reports.append(rep)
            self.venues[venue] = lv
        # only now, everything reconciled: the engine's orders go to the venues
        cycles = eng.cycles.executor if eng.cycles is not None else None
        for venue, lv in self.venues.items():
            lv.on_update = eng.executor.order_update if cycles is None else _route(cycles, eng.executor.order_update)
            eng.executor.venues[venue] = lv  # type: ignore[assignment]  # same execute() as PaperVenue
            eng.executor.config.latency_ns[venue] = 0  # sent at once; the wire is the latency
        if cycles is not None:  # [tri]: the legs of cycles go to the same venues (docs/triangular.md)
            cycles.go_live(dict(self.venues))
        for rep in self.reports:
            for asset, amount in rep.balances.items():
                eng.portfolio.deposit(rep.venue, asset, Decimal(amount))
        eng._refresh_available()
        # the venues' balances against the ledger: now, and after every trade (inventory drift)
        for rep in self.reports:
            eng.inventory.compare({rep.venue: {a: Decimal(q) for a, q in rep.balances.items()}}, time.time_ns())
        eng.executor.on_trade.append(self._after_trade)
        if eng.cycles is not None:
            eng.cycles.executor.on_trade.append(self._after_trade)
        eng.on_kill.append(self._cancel_on_kill)

    def _cancel_on_kill(self, ids: list[str]) -> None:
        """The kill switch: cancel our open orders at their venues (an IOC answer is final; what
        this catches is a limit-at-touch order left resting), as tasks off the event loop's path;
        a failed cancel is a venue error, and the journal resolves the order at the next start."""
        ex = self.engine.executor
        open_orders = {o.id: o for o in ex.singles if not o.status.terminal}
        for t in ex.trades:
            if not t.closed_ns:
                for o in (t.buy_order, t.sell_order):
                    if not o.status.terminal:
                        open_orders[o.id] = o
        if self.engine.cycles is not None:  # the legs (and repairs) of cycles in flight
            for c in self.engine.cycles.executor.trades:
                if not c.closed_ns:
                    open_orders.update((o.id, o) for o in c.orders if not o.status.terminal)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not trading (no loop): nothing is in flight
        for oid in ids or list(open_orders):
            order = open_orders.get(oid)
            lv = self.venues.get(order.venue) if order is not None else None
            if order is None or lv is None:
                continue
            task = loop.create_task(self._cancel(lv, order))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _cancel(self, lv: LiveVenue, order: Any) -> None:
        try:
            await lv.cancel(order)
        except Exception as e:  # the venue may have filled or expired it meanwhile: reported, never raised
            self._error(f"{lv.venue} {order.id}: cancel on kill failed ({one_line(e, self.keys[lv.venue])})")

    def _after_trade(self, trade: Any) -> None:
        """A trade settled: compare its venues' balances with the ledger, off the event loop's
        critical path (a task; a failed fetch is a venue error, never an exception here)."""
        if not trade.closed_ns:
            return
        legs = trade.orders if hasattr(trade, "orders") else (trade.buy_order, trade.sell_order)  # a cycle's, or both
        for venue in {o.venue for o in legs}:
            lv = self.venues.get(venue)
            if lv is not None:
                task = asyncio.get_running_loop().create_task(self._check_balances(lv))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _check_balances(self, lv: LiveVenue) -> None:
        try:
            await check_venue(lv, self.engine.inventory, time.time_ns())
        except Exception as e:  # a balance fetch failing must not stop trading: reported instead
            self._error(f"{lv.venue}: balance check failed ({one_line(e, self.keys[lv.venue])})")

    def _error(self, msg: str) -> None:
        self.errors.append(msg)
        del self.errors[:-20]

    async def run(self, stop: asyncio.Event) -> None:
        await stop.wait()

    async def close(self) -> None:
        if self.engine.cycles is not None:  # no next leg or repair leaves once the run stops
            self.engine.cycles.executor.stop(time.time_ns())
            self.engine.cycles.repair.end(time.time_ns())
        try:
            await asyncio.gather(*(lv.drain(self.drain_timeout_s) for lv in self.venues.values()))
        finally:
            for t in list(self._tasks):  # a balance check still fetching: not needed any more
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            for ex in self._exchanges:
                with contextlib.suppress(Exception):  # closing: nothing left to do with an error
                    await ex.close()
            self.runner.close()
            self.db.dispose()

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for v, lv in self.venues.items():
            s = lv.stats
            out[v] = {"sent": s.sent, "unknown": s.unknown, "rejected": s.rejected, "not_placed": s.not_placed,
                      "local_rejects": s.local_rejects, "lookups": s.lookups, "in_flight": lv.in_flight}
        return out


def _route(cycles: Any, arb: Callable[[Order, list[Fill], int], None]) -> Callable[[Order, list[Fill], int], None]:
    """A venue's answers: a cycle's leg to the cycle executor, anything else to the arbitrage one."""

    def update(order: Order, fills: list[Fill], now_ns: int) -> None:
        if cycles.owns(order.id):
            cycles.order_update(order, fills, now_ns)
        else:
            arb(order, fills, now_ns)

    return update
