"""Reconciliation at start: the journal and the venue agree before any new order is sent.

For every journal order whose outcome is not known (``pending_new``: crashed before or after
sending; ``unknown``: the answer was lost; ``open`` / ``partially_filled``: not final when we
stopped) the venue is asked by client id; what it says is journaled, with the fills we missed
(booked once each, with their ledger rows). Then the venue's open orders and recent trades are
compared with the journal: an order or a trade of this account the journal does not know is a
*surprise* (someone else trades the account, or a bug): reported to every listener of
``on_surprise`` (alerts) and in the report, never touched.

The ledger's opening balance is taken from the venue the first time (``Journal.open_ledger``);
after that the ledger's sums are compared with the venue's balances (``drift``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cryptoarb.execution.client_ids import PREFIX, rule
from cryptoarb.execution.errors import one_line
from cryptoarb.execution.live import LiveVenue


@dataclass
class Report:
    venue: str
    resolved: dict[str, int] = field(default_factory=dict)  # final state -> how many journal orders
    fills_booked: int = 0
    surprises: list[str] = field(default_factory=list)
    drift: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)  # asset -> (ledger, venue)
    balances: dict[str, Decimal] = field(default_factory=dict)
    opened_ledger: bool = False

    def lines(self) -> list[str]:
        out = [f"{self.venue}: reconciled {sum(self.resolved.values())} order(s) "
               f"({', '.join(f'{k} {v}' for k, v in sorted(self.resolved.items())) or 'none pending'}), "
               f"{self.fills_booked} missed fill(s) booked"]
        out += [f"{self.venue}: SURPRISE {s}" for s in self.surprises]
        out += [f"{self.venue}: balance drift {a}: ledger {lg} vs venue {v}"
                for a, (lg, v) in sorted(self.drift.items())]
        return out


async def reconcile(venue: LiveVenue, symbols: list[str],
                    on_surprise: list[Callable[[str, str], None]] | None = None) -> Report:
    """Bring the journal in line with ``venue`` (see the module docstring); run before trading."""
    rep = Report(venue.venue)
    jr = venue.journal
    for jo in await jr(jr.journal.unresolved, venue.venue):
        before = jo.filled_qty
        n_before = len(await jr(jr.journal.fills, jo.client_id))
        await venue.resolve(jo)
        rep.resolved[jo.state] = rep.resolved.get(jo.state, 0) + 1
        if jo.filled_qty != before:
            rep.fills_booked += len(await jr(jr.journal.fills, jo.client_id)) - n_before
    known = await jr(jr.journal.client_ids, venue.venue)
    for sym in symbols:
        try:
            await _surprises(venue, sym, known, rep)
        except Exception as e:  # the check is a report, not a gate: say it could not be done
            why = one_line(e, venue.credentials)
            rep.surprises.append(f"{sym}: could not list open orders / recent trades ({why})")
    rep.balances = await venue.fetch_balances()
    rep.opened_ledger = await jr(jr.journal.open_ledger, venue.venue, rep.balances, time.time_ns())
    ledger = await jr(jr.journal.ledger, venue.venue)
    for (_, asset), amount in ledger.items():
        have = rep.balances.get(asset, Decimal(0))
        if amount != have:
            rep.drift[asset] = (amount, have)
    for asset, have in rep.balances.items():
        if (venue.venue, asset) not in ledger:
            rep.drift[asset] = (Decimal(0), have)
    for s in rep.surprises:
        for fn in on_surprise or []:
            fn(venue.venue, s)
    return rep


async def _surprises(venue: LiveVenue, symbol: str, known: set[str], rep: Report) -> None:
    ex = venue.exchange
    prefix = rule(venue.venue).prefix + PREFIX
    for o in await ex.fetch_open_orders(symbol):
        cid = _cid(o)
        if cid not in known:
            whose = "ours by its prefix but not in the journal" if cid.startswith(prefix) else "not ours"
            rep.surprises.append(f"open order {o.get('id')} ({cid or 'no client id'}) {symbol} {o.get('side')} "
                                 f"{o.get('amount')} @ {o.get('price')}: {whose}")
    jr = venue.journal
    ours = {jo.venue_order_id for jo in await jr(jr.journal.orders, venue.venue) if jo.venue_order_id}
    since = int(time.time() * 1000) - 24 * 3600 * 1000
    for t in await ex.fetch_my_trades(symbol, since):
        if str(t.get("order")) not in ours:
            rep.surprises.append(f"trade {t.get('id')} of order {t.get('order')} {symbol} {t.get('side')} "
                                 f"{t.get('amount')} @ {t.get('price')}: not in the journal")


def _cid(o: dict[str, Any]) -> str:
    return str(o.get("clientOrderId") or "")
