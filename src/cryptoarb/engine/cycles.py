"""Triangular arbitrage wired into the engine: the detector on the hot path, the paper
executor on the event clock, the Bellman-Ford scan at its interval (event time, outside the
measured section), storage and the counters the views and the summary read."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from cryptoarb.config import ConfigError
from cryptoarb.core.cycles import Cycle
from cryptoarb.core.risk import CycleIntent
from cryptoarb.detect.triangular import CycleError, CycleOpportunity, TriangularDetector
from cryptoarb.execution.cycle_repair import CycleRepair
from cryptoarb.execution.cycles import CycleExecutor, CycleTrade

if TYPE_CHECKING:
    from cryptoarb.engine.engine import Engine


class CycleRuntime:
    """One per engine when ``[tri] venues`` names a venue of the run."""

    def __init__(self, engine: Engine) -> None:
        t = engine.settings.tri
        self.settings = t
        venues = [v for v in t.venues if v in engine.venues]
        if not venues:
            raise ConfigError(f"tri.venues: none of {t.venues} is a venue of this run ({', '.join(engine.venues)})")
        self.available: dict[tuple[str, str], Decimal] = {}
        try:
            self.detector = TriangularDetector(
                engine.instruments, venues, t.start, t.currencies, t.min_profit_bps, t.min_profit, t.max_in,
                engine.limits.max_quote_age_ns, self.available, engine.footprints, t.mode == "concurrent",
            )
        except CycleError as e:
            raise ConfigError(f"tri: {e}") from None
        p = engine.settings.paper
        lat = {k: int(v * 1e6) for k, v in p.latency_ms.items()}
        default = int(p.default_latency_ms * 1e6)
        self.executor = CycleExecutor(
            engine.portfolio, engine.executor.venues, engine.books.get, lambda v: lat.get(v, default),
            engine.run_id, engine.footprints, t.mode == "concurrent", t.max_open,
        )
        self.queue = self.executor.queue
        # every cycle passes the risk manager's per-intent limits (core/risk/cycles.py); its
        # orders and its outcome are learnt like an arbitrage trade's
        self.risk = engine.risk
        self.books = engine.books
        self.price = engine.marks.price
        self.refused = 0
        self.executor.on_order.append(engine.risk.on_order)
        self.executor.on_trade.append(self._settled)
        # a broken cycle's held currency is closed by the [legrisk] policy and counted in the
        # one-legged exposure like a failed arbitrage leg's
        self.repair = CycleRepair(
            engine.settings.legrisk.build(), self.executor, engine.instruments, engine.legrisk.move,
            lambda: engine.risk.killed, engine.limits.max_quote_age_ns,
        )
        self.found = 0
        self.recent: list[CycleOpportunity] = []  # the last few, for the views
        self.last_scan: list[tuple[str, Cycle, float]] = []
        self.scans = 0
        self._scan_due = 0
        self._interval = int(t.scan_interval_s * 1e9)
        self.on_opportunity: list[Callable[[CycleOpportunity], None]] = []
        self.on_scan: list[Callable[[list[tuple[str, Cycle, float]]], None]] = []

    def refresh(self, portfolio_balances: dict[str, dict[str, Decimal]], reserved: dict[tuple[str, str], Decimal]
                ) -> None:
        """Balances for sizing: the portfolio's less what arbitrage and cycles in flight reserved."""
        av = self.available
        av.clear()
        mine = self.executor.reserved
        for venue, ccys in portfolio_balances.items():
            for ccy, amount in ccys.items():
                k = (venue, ccy)
                av[k] = amount - reserved.get(k, Decimal(0)) - mine.get(k, Decimal(0))

    def dispatch(self, fresh: list[CycleOpportunity], now_ns: int, killed: bool, sink: Any) -> None:
        for opp in fresh:
            self.found += 1
            intent = self.intent(opp)
            why = self.risk.check_cycle(intent, now_ns, self._oldest(opp)) if not killed else "killed"
            if why is not None:
                self.refused += 1
            if why is not None or self.executor.submit(opp, now_ns) is None:
                self.detector.release(opp)
            else:
                self.risk.cycle_opened(intent)
            self.recent.append(opp)
            for fn in self.on_opportunity:
                fn(opp)
        del self.recent[:-20]

    def intent(self, opp: CycleOpportunity) -> CycleIntent:
        """What the risk manager judges: the first leg's spend valued in the account currency
        (no price for the start currency: infinite, every notional limit refuses it)."""
        px = self.price(opp.start)
        notional = float(opp.amount_in * px) if px is not None else float("inf")
        assets = tuple(e.key.split(" ", 1)[1].split("/", 1)[0] for e in opp.cycle.edges)
        at_once = len(opp.legs) if self.executor.concurrent else 1
        return CycleIntent(opp.id, opp.venue, assets, notional, float(opp.profit_bps), opp.local_ns, at_once)

    def _oldest(self, opp: CycleOpportunity) -> int:
        oldest = opp.local_ns
        for e in opp.cycle.edges:
            b = self.books.get(e.key)
            if b is not None and b.local_ns < oldest:
                oldest = b.local_ns
        return oldest

    def _settled(self, t: CycleTrade) -> None:
        if t.closed_ns:
            self.risk.cycle_closed(t.id, t.realized_pnl, t.closed_ns)

    def maybe_scan(self, now_ns: int) -> None:
        """Bellman-Ford over the whole graph once per ``scan_interval_s`` of event time."""
        if self._interval and now_ns >= self._scan_due:
            self._scan_due = now_ns + self._interval
            self.last_scan = self.detector.scan(self.settings.max_legs)
            self.scans += 1
            for fn in self.on_scan:
                fn(self.last_scan)

    def poll(self, now_ns: int) -> None:
        """Once per second of event time: broken cycles waiting for a repair step."""
        if self.repair.open:
            self.repair.poll(now_ns)

    def summary(self) -> dict[str, Any]:
        by: dict[str, int] = {}
        for t in self.executor.settled():
            by[t.status] = by.get(t.status, 0) + 1
        return {"cycles_found": self.found, "cycle_status": by, "cycle_count": self.detector.cycle_count,
                "cycle_repairs": self.repair.summary(), "cycles_refused": self.refused}

    def settled(self) -> list[CycleTrade]:
        return self.executor.settled()
