"""Training data from what the engine sees (the FeatureLogger of docs/ml.md).

Two streams, both built on the engine thread right after the message that caused them (outside
the measured hot path: the engine calls :meth:`FeatureLogger.due` once per message, one integer
comparison, and does the work only when a sample or a label is due), and handed to the storage
writer's queue:

* a row per evaluated opportunity (``kind`` "opportunity", or "trade" when the executor took it):
  group, venues, spread, net edge, size, book imbalance, depth at 1/5/10 levels, the group's
  recent spread history and volatility, quote ages, the decision latency. The row waits until
  its label is known: whether the edge was still there after the execution latency (the books
  as they stand at ``decision + latency``, exactly when a paper order would arrive) and, for a
  trade, its realised PnL once it settles. Rows still waiting when the run ends are written
  with what is known.
* a fixed-interval time series of each group's best cross spread (``spread_samples``), so a
  model can learn spread dynamics even when no opportunity fires.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any

from cryptoarb.core.book import OrderBook
from cryptoarb.core.opportunity import Opportunity
from cryptoarb.detect.groups import Group

HISTORY = 10  # spread samples kept per group for the opportunity rows
LEVELS = (1, 5, 10)  # depth is reported through these many levels
_NEVER = 1 << 62

Emit = Callable[[dict[str, Any]], None]


def features(opp: Opportunity, books: dict[str, OrderBook]) -> dict[str, Any]:
    """The training row of an opportunity at decision time (model inputs; labels come later)."""
    b = books[opp.buy_key]
    s = books[opp.sell_key]
    mid = (b.mid() + s.mid()) / 2 or 1.0
    buy_depth = _depth(b, "asks")
    sell_depth = _depth(s, "bids")
    feats: dict[str, Any] = {
        "buy_venue": b.instrument.venue,
        "sell_venue": s.instrument.venue,
        "buy_spread_bps": (b.ask - b.bid) / mid * 1e4,
        "sell_spread_bps": (s.ask - s.bid) / mid * 1e4,
        "qty_base": opp.qty_base,
        "notional_quote": opp.cost_quote,
        "profit_quote": opp.profit_quote,
        "buy_age_ms": (opp.local_ns - b.local_ns) / 1e6,
        "sell_age_ms": (opp.local_ns - s.local_ns) / 1e6,
        "buy_imbalance": _imbalance(b),
        "sell_imbalance": _imbalance(s),
    }
    for n, bd, sd in zip(LEVELS, buy_depth, sell_depth, strict=True):
        feats[f"buy_depth{n}_quote"] = bd
        feats[f"sell_depth{n}_quote"] = sd
    return {
        "ts_ns": opp.local_ns,
        "group": opp.group,
        "buy_key": opp.buy_key,
        "sell_key": opp.sell_key,
        "spread_bps": (s.bid - b.ask) / mid * 1e4,
        "net_bps": opp.profit_bps,
        "buy_depth_quote": buy_depth[0],
        "sell_depth_quote": sell_depth[0],
        "features": feats,
    }


def _depth(book: OrderBook, side: str) -> list[float]:
    """Quote notional available through the first 1, 5 and 10 levels of ``side``."""
    inst = book.instrument
    out: list[float] = []
    total = 0.0
    it = book.asks() if side == "asks" else book.bids()
    for n, (p, q) in enumerate(it, 1):
        total += inst.base_qty(q, p) * p
        if n in LEVELS:
            out.append(total)
            if n == LEVELS[-1]:
                break
    while len(out) < len(LEVELS):
        out.append(total)
    return out


def _imbalance(book: OrderBook) -> float:
    """(bid depth - ask depth) / (sum) over the top 5 levels, in the book's own units: -1..1."""
    bids, asks = book.top(5)
    bq = sum(q for _, q in bids)
    aq = sum(q for _, q in asks)
    return (bq - aq) / (bq + aq) if bq + aq > 0 else 0.0


def best_cross(books: list[OrderBook]) -> tuple[float, OrderBook, OrderBook] | None:
    """The largest ``(sell bid - buy ask) / mid`` in bps over ordered pairs of valid books, with
    the buy and sell book; None with fewer than two valid books. Positive means the tops cross."""
    best: tuple[float, OrderBook, OrderBook] | None = None
    for b in books:
        if not b.valid or not b.ask:
            continue
        for s in books:
            if s is b or not s.valid or not s.bid:
                continue
            mid = (b.mid() + s.mid()) / 2
            if mid <= 0:
                continue
            bps = (s.bid - b.ask) / mid * 1e4
            if best is None or bps > best[0]:
                best = (bps, b, s)
    return best


class _Pending:
    __slots__ = ("label_ns", "row", "trade_open")

    def __init__(self, row: dict[str, Any], label_ns: int, trade_open: bool) -> None:
        self.row = row
        self.label_ns = label_ns
        self.trade_open = trade_open


class FeatureLogger:
    """Feature rows and spread samples of one engine run (see the module docstring)."""

    def __init__(
        self,
        books: dict[str, OrderBook],
        groups: list[Group],
        emit_row: Emit | None,
        interval_ns: int,
        latency_ns: Callable[[str, str], int],
        decision_ns: Callable[[], int],
    ) -> None:
        self.books = books
        self.groups = [g for g in groups if len(g.members) >= 2]
        self.emit_row = emit_row  # None: no opportunity rows (scoring only)
        #: called with every spread sample (the storage writer, the model scorer)
        self.on_sample: list[Emit] = []
        self.interval_ns = interval_ns
        self.latency_ns = latency_ns  # (buy venue, sell venue) -> execution latency
        self.decision_ns = decision_ns  # the latest decision latency (engine's recorder)
        self.history: dict[str, deque[float]] = {g.name: deque(maxlen=HISTORY) for g in self.groups}
        self._pending: dict[int, _Pending] = {}
        self._by_time: deque[tuple[int, int]] = deque()  # (label_ns, opportunity id), in time order
        self._next_sample = 0
        self.due_ns = 0  # the engine calls :meth:`run` at the first message at or after this
        self.rows = 0
        self.samples = 0

    # -- engine thread, after dispatch -----------------------------------------------------
    def on_opportunity(self, opp: Opportunity, traded: bool) -> None:
        if self.emit_row is None:
            return
        row = features(opp, self.books)
        hist = self.history.get(opp.group)
        feats = row["features"]
        feats["spread_hist_bps"] = list(hist) if hist else []
        feats["volatility_bps"] = _std_diff(hist) if hist else 0.0
        feats["decision_latency_us"] = self.decision_ns() / 1e3
        row["kind"] = "trade" if traded else "opportunity"
        b, s = self.books[opp.buy_key], self.books[opp.sell_key]
        label_ns = opp.local_ns + self.latency_ns(b.instrument.venue, s.instrument.venue)
        self._pending[opp.id] = _Pending(row, label_ns, traded)
        self._by_time.append((label_ns, opp.id))
        if label_ns < self.due_ns:
            self.due_ns = label_ns

    def on_trade(self, trade: Any) -> None:
        """Executor listener: a settled trade gives its opportunity row the realised PnL."""
        if not trade.closed_ns:
            return
        p = self._pending.get(trade.opportunity_id)
        if p is not None:
            p.row["realised_pnl"] = float(trade.realized_pnl)
            p.row["features"]["trade_status"] = str(getattr(trade.status, "value", trade.status))
            p.trade_open = False

    def run(self, now_ns: int) -> None:
        """Label what is due, take the samples that are due, and set the next due time."""
        q = self._by_time
        while q and q[0][0] <= now_ns:
            _, oid = q.popleft()
            p = self._pending.get(oid)
            if p is not None and "label" not in p.row:
                self._label(p.row)
        self._release(final=False)
        if now_ns >= self._next_sample:
            self._sample(now_ns)
            step = self.interval_ns
            # the next grid point after now (a quiet market skips empty steps, no backfill)
            self._next_sample = (now_ns // step + 1) * step
        self.due_ns = min(self._next_sample, q[0][0] if q else _NEVER)

    def finish(self) -> None:
        """End of run: write every row still waiting (unlabelled ones with the label unknown)."""
        self._release(final=True)

    # -- internals ---------------------------------------------------------------------------
    def _label(self, row: dict[str, Any]) -> None:
        """Was the edge still there at the execution time? Net of both taker fees, at the top."""
        b, s = self.books[row["buy_key"]], self.books[row["sell_key"]]
        if not (b.valid and s.valid and b.ask and s.bid):
            row["label"] = None
            row["features"]["label_note"] = "book invalid at execution time"
            return
        mid = (b.mid() + s.mid()) / 2
        buy = b.ask * (1 + b.instrument.fees.taker)
        sell = s.bid * (1 - s.instrument.fees.taker)
        edge = (sell - buy) / mid * 1e4
        row["features"]["edge_after_bps"] = edge
        row["label"] = 1.0 if edge > 0 else 0.0

    def _release(self, final: bool) -> None:
        done = [oid for oid, p in self._pending.items() if final or ("label" in p.row and not p.trade_open)]
        for oid in done:
            p = self._pending.pop(oid)
            p.row.setdefault("label", None)
            if self.emit_row is not None:
                self.emit_row(p.row)
            self.rows += 1
        if final:
            self._by_time.clear()

    def _sample(self, now_ns: int) -> None:
        books = self.books
        for g in self.groups:
            members = [books[k] for k in g.members if k in books]
            cross = best_cross(members)
            if cross is None:
                continue
            bps, b, s = cross
            self.history[g.name].append(bps)
            if not self.on_sample:
                continue
            bd, sd = _depth(b, "asks"), _depth(s, "bids")
            sample = {
                "ts_ns": now_ns,
                "group": g.name,
                "buy_key": b.key,
                "sell_key": s.key,
                "spread_bps": bps,
                "mid": (b.mid() + s.mid()) / 2,
                "imbalance": (_imbalance(b) + _imbalance(s)) / 2,
                "depth_quote": min(bd[1], sd[1]),
                "book_spread_bps": ((b.ask - b.bid) + (s.ask - s.bid)) / (b.mid() + s.mid()) * 1e4,
            }
            for fn in self.on_sample:
                fn(sample)
            self.samples += 1


def _std_diff(hist: deque[float]) -> float:
    """Standard deviation of the step-to-step spread changes (bps): recent volatility."""
    if len(hist) < 3:
        return 0.0
    h = list(hist)
    d = [h[i + 1] - h[i] for i in range(len(h) - 1)]
    m = sum(d) / len(d)
    return math.sqrt(sum((x - m) ** 2 for x in d) / len(d))
