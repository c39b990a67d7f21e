"""Leg risk for broken cycles: the execution side of :mod:`cryptoarb.core.cycle_repair`.

The cycle executor hands over a cycle that stopped at leg ``k`` holding that leg's source
currency (:meth:`CycleRepair.engage`). An incident is opened on the cycle, the held amount enters
the one-legged exposure (the ``exposure`` callback: the engine's ``LegRisk.move``, so the risk
manager's ``one_legged`` breaker and ``max_open_exposure`` see it like a failed arbitrage leg),
and the ``[legrisk]`` steps run: retry the leg (when it fills the cycle goes on with its next legs),
hedge (passed over within one venue, see the core module), unwind to the start currency. The
repair orders are orders of the cycle (ids ``<run>-c<id>l<k>r<n>``, ``<run>-c<id>u<n>``), sent
through the executor's venues: their fills and fees are in the cycle's realised PnL. Waiting
incidents are planned again by :meth:`poll` (the engine calls it once per second of event time).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from cryptoarb.core.cycle_repair import HEDGE_SKIPPED, CycleIncident, direct_market, plan_repair, spend_qty
from cryptoarb.core.instruments import Instrument
from cryptoarb.core.legrisk import IncidentStatus, LegRiskConfig
from cryptoarb.core.orders import ZERO, Order
from cryptoarb.execution.cycles import RETRY, CycleExecutor, CycleRun

OPEN = IncidentStatus.OPEN


class CycleRepair:
    """The incidents of one run's broken cycles and the orders that repair them."""

    def __init__(
        self,
        config: LegRiskConfig,
        executor: CycleExecutor,
        instruments: Iterable[Instrument],
        exposure: Callable[[str, Decimal, int], None] | None = None,
        killed: Callable[[], bool] = lambda: False,
        max_age_ns: int = 0,
    ) -> None:
        self.config = config
        self.ex = executor
        self.insts = {i.key: i for i in instruments}
        self.exposure = exposure
        self.killed = killed
        self.max_age_ns = max_age_ns
        self.incidents: dict[int, CycleIncident] = {}
        self.open: dict[int, CycleRun] = {}
        executor.repair = self

    # -- from the executor ---------------------------------------------------------------------
    def engage(self, run: CycleRun, now: int) -> bool:
        """The cycle stopped at ``run.at``: True when the policy goes on with it (an order sent
        or a step waiting), False to settle it now (nothing to repair, or every step ran out)."""
        t, opp = run.trade, run.opp
        at = run.at
        assert at
        ccy = opp.cycle.edges[at].src
        held = self.ex.flows(t).get(ccy, ZERO)
        pay = opp.legs[at].pay
        cost = opp.amount_in * held / pay if pay else ZERO
        if held <= 0 or not self._repairable(run, at, ccy, held, cost):
            if t.incident is not None and t.incident.status is OPEN:
                self._finish(run, IncidentStatus.CLOSED, now, "closed" if held <= 0 else
                             f"residual {held} {ccy} left: no order can close it")
            return False
        inc = t.incident
        if inc is None:
            inc = t.incident = self.incidents[t.id] = CycleIncident(
                t.id, t.venue, t.start, at, ccy, held, cost, now, step_started_ns=now)
        elif inc.leg != at or inc.ccy != ccy or inc.status is not OPEN:  # stopped again, further on
            self._track(inc, ZERO, now)
            inc.leg, inc.ccy, inc.cost = at, ccy, cost
            inc.step = inc.attempts = 0
            inc.step_started_ns = now
            inc.status = OPEN
        inc.held = held
        self._track(inc, held, now)
        self.open[t.id] = run
        if not self.config.steps:
            self._finish(run, IncidentStatus.GAVE_UP, now, f"no leg-risk steps configured: {held} {ccy} left")
            return False
        self._step(run, now)
        return inc.status is OPEN

    def retried(self, run: CycleRun, order: Order, now: int) -> None:
        """A retry arrived: filled, the position is the cycle's again (it goes on)."""
        inc = run.trade.incident
        assert inc is not None
        inc.in_flight = ""
        if order.filled_qty:
            inc.reason = f"leg {inc.leg + 1} retried: {order.status.value} {order.filled_qty} at {order.avg_price}"
            self._track(inc, ZERO, now)
            inc.status = IncidentStatus.CLOSED
            inc.closed_ns = now
            self.open.pop(run.trade.id, None)
        elif order.reason:
            inc.reason = f"{order.id}: {order.status.value} ({order.reason})"

    def unwound(self, run: CycleRun, order: Order, now: int) -> None:
        """An unwind order arrived: what is still held is planned again, or the cycle settles."""
        inc = run.trade.incident
        assert inc is not None
        inc.in_flight = ""
        if order.filled_qty:
            inc.unwound = True
        held = self.ex.flows(run.trade).get(inc.ccy, ZERO)
        inc.cost = inc.cost * held / inc.held if inc.held and held > 0 else ZERO
        inc.held = held
        at = run.at
        assert at
        if held > 0 and self._repairable(run, at, inc.ccy, held, inc.cost):
            self._track(inc, held, now)
            if not self.ex.stopped:
                self._step(run, now)
                if inc.status is OPEN:
                    return
            self.abandon(run, now)
        else:
            self._finish(run, IncidentStatus.CLOSED, now, f"unwound to {inc.start}" + (
                f"; residual {held} {inc.ccy} left: no order can close it" if held > 0 else ""))
        self.ex.settle(run, now)

    def poll(self, now: int) -> None:
        """Plan waiting incidents again (time limits, books back within the price limit)."""
        for run in list(self.open.values()):
            inc = run.trade.incident
            if inc is None or inc.in_flight:
                continue
            self._step(run, now)
            if inc.status is not OPEN:
                self.ex.settle(run, now)

    def abandon(self, run: CycleRun, now: int) -> None:
        """No order may leave any more (the run stops): an open incident gives up as it stands."""
        inc = run.trade.incident
        if inc is not None and inc.status is OPEN:
            self._finish(run, IncidentStatus.GAVE_UP, now, f"{self.ex.stopped or 'stopped'}: {inc.held} {inc.ccy} left")

    def end(self, now: int) -> None:
        """The run ends (replay drained): incidents still waiting settle their cycles as they
        stand -- what is held is the residual, still one-legged, the reason says the run ended."""
        for run in list(self.open.values()):
            inc = run.trade.incident
            if inc is None or inc.in_flight:
                continue
            at = max(now, inc.step_started_ns)
            self._finish(run, IncidentStatus.GAVE_UP, at, f"run ended while repairing: {inc.held} {inc.ccy} left")
            self.ex.settle(run, at)

    # -- the policy ----------------------------------------------------------------------------
    def _step(self, run: CycleRun, now: int) -> None:
        cfg = self.config
        inc = run.trade.incident
        assert inc is not None and run.at is not None
        while inc.status is OPEN and not inc.in_flight:
            name = cfg.steps[inc.step]
            if name == "hedge" or now - inc.step_started_ns >= cfg.step_time_ns or inc.attempts >= cfg.step_attempts:
                if name == "hedge" and HEDGE_SKIPPED not in inc.steps_taken:
                    inc.steps_taken.append(HEDGE_SKIPPED)
                inc.step += 1
                inc.attempts = 0
                inc.step_started_ns = now
                if inc.step >= len(cfg.steps):
                    inc.step = len(cfg.steps) - 1
                    self._finish(run, IncidentStatus.GAVE_UP, now, f"every step ran out ({', '.join(cfg.steps)}): "
                                 f"{inc.held} {inc.ccy} left")
                    return
                continue
            if self.killed() or self.ex.stopped:
                return  # the kill switch stops every new order, repairs too
            opp = run.opp
            e, f = opp.cycle.edges[run.at], opp.legs[run.at]
            back = direct_market(self.insts, inc.venue, inc.ccy, inc.start)
            action = plan_repair(inc, cfg, (e.key, e.buy, f.limit), back, self.ex.books, now, self.max_age_ns)
            if action is None:
                return  # nothing within the price limit now: wait (poll / time limit)
            if action.step == "retry":
                order = self.ex.send_leg(run, run.at, action.qty, now, action.limit, RETRY)
            else:
                assert back is not None
                order = self.ex.send_unwind(run, back, action.side, action.qty, action.limit, now)
            inc.orders.append(order)
            inc.attempts += 1
            if action.step not in inc.steps_taken:
                inc.steps_taken.append(action.step)
            inc.in_flight = order.id

    def _repairable(self, run: CycleRun, at: int, ccy: str, held: Decimal, cost: Decimal) -> bool:
        """Worth an order: more than ``residual_quote`` (valued at its cost in the start currency)
        and at least one lot of the leg's or the way-back market."""
        if float(cost) <= self.config.residual_quote:
            return False
        e, f = run.opp.cycle.edges[at], run.opp.legs[at]
        inst = self.insts.get(e.key)
        if inst is not None and spend_qty(inst, "buy" if e.buy else "sell", held, f.limit) > 0:
            return True
        back = direct_market(self.insts, run.trade.venue, ccy, run.trade.start)
        if back is None:
            return False
        side = "sell" if back.base == ccy else "buy"
        price = cost / held if side == "sell" else held / cost
        return spend_qty(back, side, held, price) > 0

    def _finish(self, run: CycleRun, status: IncidentStatus, now: int, reason: str) -> None:
        inc = run.trade.incident
        assert inc is not None
        inc.status = status
        inc.closed_ns = now
        inc.reason = reason
        if status is IncidentStatus.CLOSED:
            self._track(inc, ZERO, now)  # a residual no order can close is dust, not leg risk
        self.open.pop(run.trade.id, None)

    def _track(self, inc: CycleIncident, amount: Decimal, now: int) -> None:
        delta = amount - inc.tracked
        inc.tracked = amount
        if delta and self.exposure is not None:
            self.exposure(inc.ccy, delta, now)

    def summary(self) -> dict[str, Any]:
        incs = list(self.incidents.values())
        return {
            "incidents": len(incs),
            "open": len(self.open),
            "gave_up": sum(i.status is IncidentStatus.GAVE_UP for i in incs),
            "orders": sum(len(i.orders) for i in incs),
            "held": {f"{i.ccy}": float(i.held) for i in incs if i.status is not IncidentStatus.CLOSED},
        }


