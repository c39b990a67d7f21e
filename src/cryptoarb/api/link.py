"""A running engine, seen from the API (which runs on another thread).

The engine is single-threaded and never locked, so the API never touches it directly:

* **Events** go out through listeners the engine already calls after its measured section
  (opportunities, settled trades, risk audit events): each is one ``hub.publish`` (a deque append).
* **State** (venues, books, risk, PnL, balances, counters) is copied into :attr:`EngineLink.snapshot`
  by :meth:`EngineLink.pump`, which the run calls on its own thread a few times a second (where
  it refreshes its view). The API reads that immutable copy; state kinds are also published.
* **Commands** (kill, resume, settings) are queued by the API and run by the next ``pump`` on the
  engine's thread, between two messages; the API awaits their result.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from cryptoarb.api import payloads
from cryptoarb.api.hub import StreamHub

TOP_N = 20  # levels per side kept in the snapshot (``GET /api/books`` serves up to this)
STATE_EVERY_S = 2.0  # venue and risk messages when nothing changed


class EngineGone(RuntimeError):
    """The run this API was attached to has ended (or never pumps)."""


def _num(x: float) -> float | None:
    return x if x == x and abs(x) != float("inf") else None


class EngineLink:
    def __init__(self, engine: Any, hub: StreamHub, mode: str = "demo", feeds: list[Any] | None = None,
                 paths: dict[str, str] | None = None) -> None:
        self.engine = engine
        self.hub = hub
        self.mode = mode
        self.feeds = feeds or []
        self.paths = paths or {}
        self.snapshot: dict[str, Any] = {}
        self.closed = False
        self._cmds: deque[tuple[Callable[[], Any], concurrent.futures.Future[Any]]] = deque()
        self._venue_state: dict[str, str] = {}
        self._risk_key: tuple[Any, ...] = ()
        self._state_due = 0.0
        self._prev_counts: dict[str, int] = {}
        self._prev_t = time.monotonic()
        self.started_ns = time.time_ns()

    # -- wiring (engine thread, before the run) -------------------------------------------------------
    def attach(self) -> EngineLink:
        e, hub, run = self.engine, self.hub, self.engine.run_id
        hub.register("opportunity", lambda o: payloads.opportunity(o, run))
        hub.register("trade", lambda t: payloads.trade(t, run))
        hub.register("breaker", payloads.audit)
        e.on_opportunity.append(lambda o: hub.publish("opportunity", o))
        e.executor.on_trade.append(lambda t: hub.publish("trade", t) if t.closed_ns else None)
        e.risk.on_audit.append(lambda ev: hub.publish("breaker", ev))
        return self

    # -- the engine thread's side ---------------------------------------------------------------------
    def pump(self) -> None:
        """Run queued commands, refresh the snapshot, publish state. Engine thread, a few times/s."""
        while self._cmds:
            fn, fut = self._cmds.popleft()
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn())
                except Exception as exc:
                    fut.set_exception(exc)
        self.snapshot = snap = self._build()
        hub = self.hub
        for g in snap["groups"]:
            hub.publish("book", g)
        hub.publish("pnl", {**snap["pnl"], "ts_ns": snap["clock_ns"]})
        # venue and risk state: at once when it changes, else every STATE_EVERY_S (their counters)
        now = time.monotonic()
        due = now >= self._state_due
        if due:
            self._state_due = now + STATE_EVERY_S
        for v in snap["venues"]:
            if due or self._venue_state.get(v["venue"]) != v["state"]:
                self._venue_state[v["venue"]] = v["state"]
                hub.publish("venue", v)
        r = snap["risk"]
        key = (r["killed"], tuple(b["state"] for b in r["breakers"]))
        if due or key != self._risk_key:
            self._risk_key = key
            hub.publish("risk", r)

    def close(self) -> None:
        """The run is over: pending and future commands fail (the API answers 503)."""
        self.pump()
        self.closed = True
        while self._cmds:
            _fn, fut = self._cmds.popleft()
            if fut.set_running_or_notify_cancel():
                fut.set_exception(EngineGone("the run has ended"))

    # -- the API's side ----------------------------------------------------------------------------------
    async def call(self, fn: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Run ``fn`` on the engine's thread at its next pump; its result."""
        if self.closed:
            raise EngineGone("the run has ended")
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._cmds.append((fn, fut))
        try:
            return await asyncio.wait_for(asyncio.wrap_future(fut), timeout)
        except TimeoutError:
            fut.cancel()
            raise EngineGone(f"the engine did not answer within {timeout:g} s") from None

    # -- the snapshot ------------------------------------------------------------------------------------
    def _build(self) -> dict[str, Any]:
        e = self.engine
        now = e.clock_ns
        pnl = e.pnl_snapshot()
        books: dict[str, Any] = {}
        for key, b in list(e.books.items()):
            bids, asks = b.top(TOP_N) if b.valid else ([], [])
            books[key] = {"key": key, "venue": b.instrument.venue, "symbol": b.instrument.symbol,
                          "valid": bool(b.valid), "local_ns": b.local_ns,
                          "age_ms": round((now - b.local_ns) / 1e6, 3) if b.local_ns else None,
                          "bids": [[_num(p), _num(q)] for p, q in bids], "asks": [[_num(p), _num(q)] for p, q in asks]}
        groups = []
        for g in e.plan.groups:
            members = []
            for k in g.members:
                b = books.get(k)
                if b is None:
                    continue
                members.append({"key": k, "venue": b["venue"], "valid": b["valid"], "age_ms": b["age_ms"],
                                "bid": b["bids"][0] if b["bids"] else None, "ask": b["asks"][0] if b["asks"] else None})
            groups.append({"group": g.name, "label": g.label, "books": members})
        lat = e.latency
        risk = e.risk
        return {
            "run_id": e.run_id, "mode": self.mode, "clock_ns": now, "wall_ns": time.time_ns(),
            "started_ns": self.started_ns, "messages": e.messages, "opportunities": e.opportunities,
            "trades": len(e.executor.settled()),
            "latency_us": lat.summary_us() if len(lat) else {"p50": None, "p99": None, "p999": None},
            "books": books, "groups": groups, "venues": self._venues(books),
            "risk": {
                "killed": risk.killed, "kill_reason": risk.kill_reason,
                "breakers": [{"name": n, "state": b.state.value, "enabled": b.enabled, "trips": b.trips}
                             for n, b in risk.breakers.items()],
                "refused": dict(risk.refused),
                "exposure": {"open_notional": _num(risk.exposure.open_notional),
                             "one_legged_quote": _num(risk.exposure.one_legged_quote),
                             "venue_open": {k: _num(v) for k, v in risk.exposure.venue_open.items()},
                             "asset_open": {k: _num(v) for k, v in risk.exposure.asset_open.items()},
                             "unhedged_quote": _num(pnl.unhedged_quote)},
                "stale_feeds": list(risk.stale_feeds),
            },
            "pnl": {"currency": pnl.currency, "realised": str(pnl.exact[0]), "unrealised": str(pnl.exact[1]),
                    "total": str(pnl.exact[2]), "unhedged_quote": _num(pnl.unhedged_quote),
                    "max_unhedged_quote": _num(pnl.max_unhedged_quote),
                    "exposures": [{k: (_num(v) if isinstance(v, float) else v) for k, v in asdict(x).items()}
                                  for x in pnl.exposures]},
            "balances": [{"venue": v, "asset": a, "amount": str(amt)} for v, a, amt in e.portfolio.snapshot()],
        }

    def _venues(self, books: dict[str, Any]) -> list[dict[str, Any]]:
        e = self.engine
        feeds = {f.venue: f for f in self.feeds}
        t = time.monotonic()
        dt = max(t - self._prev_t, 1e-6)
        self._prev_t = t
        out = []
        for venue in e.venues:
            vb = [b for b in books.values() if b["venue"] == venue]
            h = e.handlers.get(venue)
            syncs = list(h.syncs.values()) if h is not None else []
            f = feeds.get(venue)
            st = getattr(f, "stats", None)
            count = st.messages if st is not None else sum(s.diffs_applied for s in syncs)
            rate = max(0, count - self._prev_counts.get(venue, count)) / dt
            self._prev_counts[venue] = count
            valid = sum(1 for b in vb if b["valid"])
            ages = [b["age_ms"] for b in vb if b["age_ms"] is not None]
            state = "up" if vb and valid == len(vb) else ("degraded" if valid else "down")
            out.append({
                "venue": venue, "path": self.paths.get(venue, getattr(st, "path", "native")), "state": state,
                "books": len(vb), "books_valid": valid, "book_age_ms": max(ages) if ages else None,
                "messages": count, "messages_per_s": round(rate, 1),
                "resyncs": sum(s.resyncs for s in syncs), "gaps": sum(s.gaps for s in syncs),
                "connects": getattr(st, "connects", None), "disconnects": getattr(st, "disconnects", None),
                "last_error": getattr(st, "last_error", "") or "",
            })
        return out
