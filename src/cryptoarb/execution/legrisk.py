"""Closes one-legged exposure by policy: the execution side of :mod:`cryptoarb.core.legrisk`.

Listens to settled trades (an executor ``on_trade`` listener, after the risk manager's), opens an
incident for each failed or partial leg, and sends what ``core.legrisk.plan`` decides through the
executor's :meth:`~cryptoarb.execution.arb.ArbExecutor.send`: the same venues, latency, fills,
portfolio and PnL ledger as the trades' own legs (paper now; a live venue behind the same
interface later). Every change of the one-legged exposure goes to the risk manager
(``set_unhedged``: the ``one_legged`` breaker and ``max_open_exposure``) and to the listeners
(storage, views, alerts). Waiting incidents are planned again by :meth:`poll` (the engine calls
it once per second of event time) and whenever one of their orders finishes.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from cryptoarb.core.accounting import spot_need
from cryptoarb.core.book import OrderBook
from cryptoarb.core.instruments import Instrument, Kind, dec
from cryptoarb.core.legrisk import (
    Incident,
    IncidentStatus,
    LegRiskConfig,
    OneLegged,
    book_fills,
    closable,
    new_incident,
    opens_incident,
    plan,
)
from cryptoarb.core.orders import ZERO, ArbTrade, Order
from cryptoarb.core.risk import RiskManager
from cryptoarb.detect.groups import Group
from cryptoarb.execution.arb import ArbExecutor

_TAG = {"retry": "r", "hedge": "h", "unwind": "u"}


class LegRisk:
    """Incidents of one run, the one-legged exposure, and the orders that close it."""

    def __init__(
        self,
        config: LegRiskConfig,
        executor: ArbExecutor,
        books: Callable[[str], OrderBook | None],
        groups: list[Group],
        price: Callable[[str], Decimal | None],
        risk: RiskManager | None = None,
        run_id: str = "run",
        max_book_age_ns: int = 0,
    ) -> None:
        self.config = config
        self.executor = executor
        self.books = books
        self.price = price
        self.risk = risk
        self.run_id = run_id
        self.max_book_age_ns = max_book_age_ns
        self.members: dict[str, list[str]] = {}  # book key -> every key sharing a group with it
        for g in groups:
            for k in g.members:
                self.members.setdefault(k, [])
                self.members[k] += [m for m in g.members if m not in self.members[k]]
        self.incidents: dict[int, Incident] = {}
        self.open: dict[int, Incident] = {}
        self._by_order: dict[str, Incident] = {}
        self.exposure = OneLegged()
        self.on_incident: list[Callable[[Incident], None]] = []
        # (ts_ns, asset, signed qty, mark, total one-legged quote) on every change
        self.on_exposure: list[Callable[[int, str, Decimal, Decimal, float], None]] = []

    # -- inputs -----------------------------------------------------------------------------
    def on_trade(self, trade: ArbTrade) -> None:
        """Executor listener: a settled trade's leftover base is one-legged exposure; a failed
        or partial leg opens an incident the policy starts closing at once."""
        if not trade.closed_ns:
            return
        asset = trade.buy_order.symbol.split("/", 1)[0]
        now = trade.closed_ns
        if trade.unhedged_qty_base:
            self.move(asset, trade.unhedged_qty_base, now)
        if not opens_incident(trade) or trade.id in self.incidents:
            return
        inc = new_incident(trade, asset, now)
        self.incidents[trade.id] = inc
        if not self.config.steps:
            self._finish(inc, IncidentStatus.GAVE_UP, now, "no leg-risk steps configured: left open")
            return
        self.open[trade.id] = inc
        self._step(inc, now)
        self._notify(inc)

    def poll(self, now_ns: int) -> None:
        """Plan waiting incidents again (time limits, books that came back within the limit)."""
        for inc in list(self.open.values()):
            if not inc.in_flight:
                self._step(inc, now_ns)
                self._notify(inc)

    # -- the policy -------------------------------------------------------------------------
    def _step(self, inc: Incident, now: int) -> None:
        cfg = self.config
        while inc.status is IncidentStatus.OPEN and not inc.in_flight:
            if self._residual(inc):
                left = f"residual {inc.qty} {inc.asset} left: no order can close it"
                self._finish(inc, IncidentStatus.CLOSED, now, left if inc.qty else "closed")
                return
            if now - inc.step_started_ns >= cfg.step_time_ns or inc.attempts >= cfg.step_attempts:
                inc.step += 1
                inc.attempts = 0
                inc.step_started_ns = now
                if inc.step >= len(cfg.steps):
                    inc.step = len(cfg.steps) - 1
                    self._finish(inc, IncidentStatus.GAVE_UP, now,
                                 f"every step ran out ({', '.join(cfg.steps)}): {inc.qty} {inc.asset} left open")
                    return
                continue
            if self.risk is not None and self.risk.killed:
                return  # the kill switch stops every new order, repairs too
            members = self.members.get(inc.missing, []) or self.members.get(inc.filled, [])
            action = plan(inc, cfg, self.books, members, now, self.max_book_age_ns, self._afford)
            if action is None:
                return  # nothing within the price limit now: wait (poll / time limit)
            book = self.books(action.key)
            assert book is not None
            inst = book.instrument
            n = len(inc.orders) + 1
            order = Order(
                id=f"{self.run_id}-{inc.trade_id}{_TAG[action.step]}{n}", venue=inst.venue, symbol=inst.symbol,
                side=action.side, qty=action.qty, limit_price=action.limit,
                expected_price=inc.missing_price if action.step != "unwind" else inc.filled_price,
                created_ns=now, arb_id=inc.trade_id,
            )
            inc.orders.append(order)
            inc.attempts += 1
            if action.step not in inc.steps_taken:
                inc.steps_taken.append(action.step)
            inc.in_flight = order.id
            self._by_order[order.id] = inc
            self.executor.send(order, now, self._done)

    def _afford(self, inst: Instrument, side: str, qty: Decimal, limit: Decimal) -> bool:
        """The paper venue's own balance rule (``spot_need``), net of what trades in flight hold."""
        if inst.kind is not Kind.SPOT:
            return True
        ccy, need = spot_need(inst, side, qty, limit, dec(inst.fees.taker))
        ex = self.executor
        return ex.portfolio.balance(inst.venue, ccy) - ex.reserved.get((inst.venue, ccy), ZERO) >= need

    def _residual(self, inc: Incident) -> bool:
        """Nothing an order could close any more: under one lot of the filled leg's book, or
        worth no more than the configured residual."""
        if not inc.qty:
            return True
        book = self.books(inc.filled)
        if book is not None and not closable(book.instrument, inc.qty, inc.filled_price):
            return True
        value = abs(inc.qty) * (self.price(inc.asset) or inc.filled_price)
        if book is not None and value < dec(book.instrument.min_notional):
            return True
        return float(value) <= self.config.residual_quote

    def _done(self, order: Order) -> None:
        inc = self._by_order.pop(order.id)
        inc.in_flight = ""
        book = self.books(f"{order.venue} {order.symbol}")
        now = order.updated_ns
        if book is not None and order.fills:
            moved = book_fills(inc, order, book.instrument)
            if moved:
                self.move(inc.asset, moved, now)
        if order.reason and not order.fills:
            inc.reason = f"{order.id}: {order.status.value} ({order.reason})"
        self._step(inc, now)
        self._notify(inc)

    def _finish(self, inc: Incident, status: IncidentStatus, now: int, reason: str) -> None:
        inc.status = status
        inc.closed_ns = now
        inc.reason = reason
        self.open.pop(inc.trade_id, None)

    # -- outputs ----------------------------------------------------------------------------
    def move(self, asset: str, delta: Decimal, now: int) -> None:
        """One-legged exposure in ``asset`` moved by ``delta`` (also a broken cycle's held
        currency: ``execution/cycle_repair.py``); the risk manager and the listeners learn it."""
        qty = self.exposure.add(asset, delta)
        mark = self.price(asset) or ZERO
        total, _ = self.exposure.value(self.price)
        if self.risk is not None:
            self.risk.set_unhedged(asset, qty, mark, now)
        for fn in self.on_exposure:
            fn(now, asset, qty, mark, total)

    def _notify(self, inc: Incident) -> None:
        for fn in self.on_incident:
            fn(inc)

    def summary(self) -> dict[str, Any]:
        """The ``legrisk`` section of the run summary (quote amounts as floats)."""
        total, by = self.exposure.value(self.price)
        incs = list(self.incidents.values())
        return {
            "policy": list(self.config.steps),
            "incidents": len(incs),
            "closed": sum(i.status is IncidentStatus.CLOSED for i in incs),
            "gave_up": sum(i.status is IncidentStatus.GAVE_UP for i in incs),
            "open": len(self.open),
            "orders": sum(len(i.orders) for i in incs),
            "realised_quote": float(sum((i.realised for i in incs), ZERO)),
            "fees_quote": float(sum((i.fees_quote for i in incs), ZERO)),
            "slippage_quote": float(sum((i.slippage_quote for i in incs), ZERO)),
            "exposure_quote": total,
            "max_exposure_quote": self.exposure.max_quote,
            "by_asset": {a: float(q) for a, q in sorted(self.exposure.qty.items()) if q},
            "by_asset_quote": by,
        }
