"""The write-ahead order journal: nothing is sent that is not committed first.

Life of a live order (``state`` of its ``live_orders`` row; each change is also a
``live_order_events`` row, committed in the same transaction as the change itself)::

    pending_new --send answered--> open | partially_filled | filled | canceled | rejected
         |
         +--send outcome unknown (timeout, reset, 5xx)--> unknown --resolved by client id--> ...
         |                                                        \\--not found after the venue's
         |                                                            acceptance window--> not_placed
         +--crash before the answer: found at restart by reconciliation (same paths)

``pending_new`` is committed before the request leaves, so a crash at any point leaves a row
that says an order *may* exist: reconciliation (``execution/reconcile.py``) asks the venue by
client id before anything new is sent. Fills are booked once per venue trade id (a unique
constraint), with their ledger rows, in the transaction that records the order's new state: a
crash between two of them cannot book a fill without its state, nor the reverse.

Every call is synchronous and commits; ``LiveVenue`` runs them on one worker thread, in order,
so the event loop never waits on the disk and the journal sees changes in the order they happened.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cryptoarb.storage.coltypes import trim
from cryptoarb.storage.journal_models import LiveFillRow, LiveLedgerRow, LiveOrderEventRow, LiveOrderRow

ZERO = Decimal(0)
PENDING_NEW = "pending_new"
UNKNOWN = "unknown"
OPEN = "open"
PARTIAL = "partially_filled"
FILLED = "filled"
CANCELED = "canceled"
REJECTED = "rejected"
NOT_PLACED = "not_placed"  # never reached the venue (not found after its acceptance window)
TERMINAL = frozenset({FILLED, CANCELED, REJECTED, NOT_PLACED})
LIVE_STATES = frozenset({PENDING_NEW, UNKNOWN, OPEN, PARTIAL})


@dataclass(frozen=True, slots=True)
class VenueFill:
    """One venue trade of an order, exactly as the venue reported it."""

    trade_id: str
    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_currency: str
    ts_ns: int


@dataclass(slots=True)
class JournalOrder:
    client_id: str
    order_id: str
    run_id: str
    arb_id: int | None
    venue: str
    symbol: str
    side: str
    type: str
    qty: Decimal
    price: Decimal
    base: str
    quote: str
    state: str = PENDING_NEW
    venue_order_id: str | None = None
    filled_qty: Decimal = ZERO
    cost: Decimal = ZERO
    reason: str = ""
    created_ns: int = 0
    sent_ns: int | None = None


class Journal:
    """The journal on one database (SQLite or PostgreSQL), migrated by ``storage.connect``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- writes --------------------------------------------------------------------------------
    def new(self, o: JournalOrder, ts_ns: int) -> None:
        """Commit ``o`` as ``pending_new``: the point of no return before the send."""
        with Session(self.engine) as s, s.begin():
            s.add(LiveOrderRow(
                client_id=o.client_id, order_id=o.order_id, run_id=o.run_id, arb_id=o.arb_id, venue=o.venue,
                symbol=o.symbol, side=o.side, type=o.type, qty=o.qty, price=o.price, state=PENDING_NEW,
                venue_order_id=None, filled_qty=ZERO, cost=ZERO, reason="", created_ns=ts_ns, sent_ns=None,
                updated_ns=ts_ns))
            s.flush()  # the order row first: the event refers to it
            s.add(LiveOrderEventRow(client_id=o.client_id, ts_ns=ts_ns, state=PENDING_NEW,
                                    detail={"qty": str(o.qty), "price": str(o.price), "type": o.type,
                                            "side": o.side, "venue": o.venue, "symbol": o.symbol}))

    def sent(self, client_id: str, ts_ns: int) -> None:
        """The moment the request left (not a state change: no event row)."""
        with Session(self.engine) as s, s.begin():
            s.execute(update(LiveOrderRow).where(LiveOrderRow.client_id == client_id).values(sent_ns=ts_ns))

    def record(self, o: JournalOrder, state: str, ts_ns: int, fills: Iterable[VenueFill] = (),
               reason: str = "", detail: dict[str, Any] | None = None) -> list[VenueFill]:
        """Move ``o`` to ``state`` and book ``fills`` not booked yet, in one transaction; the
        fills newly booked (the caller applies exactly these to its in-memory ledger)."""
        fills = list(fills)
        with Session(self.engine) as s, s.begin():
            known: set[str] = set()
            if fills:
                known = set(s.scalars(select(LiveFillRow.trade_id).where(
                    LiveFillRow.venue == o.venue, LiveFillRow.symbol == o.symbol,
                    LiveFillRow.trade_id.in_([f.trade_id for f in fills]))))
            new = [f for f in fills if f.trade_id not in known]
            for f in new:
                s.add(LiveFillRow(client_id=o.client_id, venue=o.venue, symbol=o.symbol, trade_id=f.trade_id,
                                  side=o.side, price=f.price, qty=f.qty, fee=f.fee, fee_currency=f.fee_currency,
                                  ts_ns=f.ts_ns))
                for asset, delta, kind in _ledger_moves(o, f):
                    s.add(LiveLedgerRow(venue=o.venue, asset=asset, delta=delta, kind=kind, ref=f.trade_id,
                                        ts_ns=f.ts_ns))
                o.filled_qty += f.qty
                o.cost += f.qty * f.price
            changed = state != o.state or new or (reason and reason != o.reason)
            o.state = state
            if reason:
                o.reason = reason
            s.execute(update(LiveOrderRow).where(LiveOrderRow.client_id == o.client_id).values(
                state=state, venue_order_id=o.venue_order_id, filled_qty=o.filled_qty, cost=o.cost,
                reason=o.reason, updated_ns=ts_ns))
            if changed:
                d = dict(detail or {})
                if new:
                    d["fills"] = [f.trade_id for f in new]
                if reason:
                    d["reason"] = reason
                d["filled_qty"] = str(trim(o.filled_qty))
                s.add(LiveOrderEventRow(client_id=o.client_id, ts_ns=ts_ns, state=state, detail=d))
        return new

    def open_ledger(self, venue: str, balances: dict[str, Decimal], ts_ns: int) -> bool:
        """The venue's balances as the ledger's opening rows, the first time only (True then)."""
        with Session(self.engine) as s, s.begin():
            if s.scalar(select(func.count()).select_from(LiveLedgerRow).where(LiveLedgerRow.venue == venue)):
                return False
            for asset, amount in sorted(balances.items()):
                s.add(LiveLedgerRow(venue=venue, asset=asset, delta=amount, kind="opening", ref="", ts_ns=ts_ns))
        return True

    # -- reads ---------------------------------------------------------------------------------
    def unresolved(self, venue: str | None = None) -> list[JournalOrder]:
        """Orders whose outcome the journal does not know (not terminal), oldest first."""
        q = select(LiveOrderRow).where(LiveOrderRow.state.in_(sorted(LIVE_STATES)))
        if venue is not None:
            q = q.where(LiveOrderRow.venue == venue)
        return self._orders(q.order_by(LiveOrderRow.created_ns))

    def orders(self, venue: str | None = None) -> list[JournalOrder]:
        q = select(LiveOrderRow)
        if venue is not None:
            q = q.where(LiveOrderRow.venue == venue)
        return self._orders(q.order_by(LiveOrderRow.created_ns))

    def client_ids(self, venue: str) -> set[str]:
        with Session(self.engine) as s:
            return set(s.scalars(select(LiveOrderRow.client_id).where(LiveOrderRow.venue == venue)))

    def ledger(self, venue: str | None = None) -> dict[tuple[str, str], Decimal]:
        q = select(LiveLedgerRow.venue, LiveLedgerRow.asset, LiveLedgerRow.delta)
        if venue is not None:
            q = q.where(LiveLedgerRow.venue == venue)
        out: dict[tuple[str, str], Decimal] = {}
        with Session(self.engine) as s:
            for v, a, d in s.execute(q):  # summed here: exact on SQLite too (stored as text)
                out[(v, a)] = out.get((v, a), ZERO) + d
        return out

    def fills(self, client_id: str) -> list[VenueFill]:
        with Session(self.engine) as s:
            rows = s.scalars(select(LiveFillRow).where(LiveFillRow.client_id == client_id).order_by(LiveFillRow.id))
            return [VenueFill(r.trade_id, r.price, r.qty, r.fee, r.fee_currency, r.ts_ns) for r in rows]

    def events(self, client_id: str) -> list[tuple[str, dict[str, Any]]]:
        with Session(self.engine) as s:
            rows = s.scalars(select(LiveOrderEventRow).where(LiveOrderEventRow.client_id == client_id)
                             .order_by(LiveOrderEventRow.id))
            return [(r.state, r.detail) for r in rows]

    def _orders(self, q: Any) -> list[JournalOrder]:
        with Session(self.engine) as s:
            return [_from_row(r) for r in s.scalars(q)]


def _from_row(r: LiveOrderRow) -> JournalOrder:
    base, _, quote = r.symbol.partition("/")
    return JournalOrder(r.client_id, r.order_id, r.run_id, r.arb_id, r.venue, r.symbol, r.side, r.type, r.qty,
                        r.price, base, quote.split(":")[0], r.state, r.venue_order_id, r.filled_qty, r.cost,
                        r.reason, r.created_ns, r.sent_ns)


def _ledger_moves(o: JournalOrder, f: VenueFill) -> list[tuple[str, Decimal, str]]:
    """A spot fill's balance changes: base and quote by the trade, the fee from its currency."""
    value = f.qty * f.price
    moves = [(o.base, f.qty, "fill"), (o.quote, -value, "fill")] if o.side == "buy" else \
        [(o.base, -f.qty, "fill"), (o.quote, value, "fill")]
    if f.fee:
        moves.append((f.fee_currency, -f.fee, "fee"))
    return moves


__all__ = ["CANCELED", "FILLED", "NOT_PLACED", "OPEN", "PARTIAL", "PENDING_NEW", "REJECTED", "TERMINAL", "UNKNOWN",
           "IntegrityError", "Journal", "JournalOrder", "VenueFill"]
