"""The shards' events into the parent's storage writer, as a single-process run writes them.

Opportunities, orders, fills, trades, training rows and audit rows are written as they come
(each shard's ids are its own range: no two shards write the same key). Balances and PnL are
per shard -- each holds a slice of the money -- so the parent keeps each shard's latest and
writes the run's: balances added per (venue, currency), PnL added (decimals).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from cryptoarb.bus import messages as M
from cryptoarb.bus.apply import _payload
from cryptoarb.storage import rows as R


class ShardStore:
    def __init__(self, writer: Any, id_space: int) -> None:
        self.writer = writer  # a StorageWriter (its queue: the same rows its own methods queue)
        self.id_space = id_space
        self._balances: dict[int, dict[tuple[str, str], Decimal]] = {}
        self._pnl: dict[int, M.PnlEvent] = {}

    def shard_of(self, ev: M.Event) -> int:
        return ev.seq // self.id_space

    def put(self, ev: M.Event) -> None:
        w = self.writer
        if isinstance(ev, M.BalancesEvent):
            self._balances[self.shard_of(ev)] = {(v, a): Decimal(x) for v, a, x in ev.rows}
            total: dict[tuple[str, str], Decimal] = {}
            for rows in self._balances.values():
                for k, x in rows.items():
                    total[k] = total.get(k, Decimal(0)) + x
            w._put(R.BALANCES, (ev.ts_ns, tuple((v, a, x) for (v, a), x in sorted(total.items()))))
            return
        if isinstance(ev, M.PnlEvent):
            self._pnl[self.shard_of(ev)] = ev
            ps = list(self._pnl.values())
            w._put(R.PNL, (ev.ts_ns, (ev.currency, sum((p.realised for p in ps), Decimal(0)),
                                      sum((p.unrealised for p in ps), Decimal(0)),
                                      sum((p.total for p in ps), Decimal(0)),
                                      sum(p.unhedged_quote for p in ps), sum(p.max_unhedged_quote for p in ps))))
            return
        if isinstance(ev, (M.RunEvent, M.BookTopEvent)):
            return  # the run row is the parent's; tops are for a bus's consumers
        p = _payload(ev)
        if p is not None:
            w._put(*p)
