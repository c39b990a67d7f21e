"""The run's inventory against its targets, and venue balances against the ledger.

Thin wrapper around :mod:`cryptoarb.core.inventory` over the engine's portfolio. Balances fetched
from venues (live: at start and after each trade, by the live execution layer) are handed to
:meth:`Inventory.compare` as a plain mapping; a drift beyond the tolerance goes to the
``on_drift`` listeners (alerts, storage), never into the ledger: which side is right is for a
human or the reconciliation to say. Nothing here moves money.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol

from cryptoarb.core.accounting import Portfolio
from cryptoarb.core.inventory import Balances, Drift, InventoryConfig, drift, holdings, suggest


class BalanceSource(Protocol):
    """What a live venue offers for the comparison (``execution.live.LiveVenue``)."""

    venue: str

    @property
    def in_flight(self) -> int: ...

    async def fetch_balances(self) -> dict[str, Decimal]: ...


class Inventory:
    def __init__(self, config: InventoryConfig, portfolio: Portfolio) -> None:
        self.config = config
        self.portfolio = portfolio
        self.on_drift: list[Callable[[int, list[Drift]], None]] = []
        self.last_drift: list[Drift] = []
        self.checks = 0

    def compare(self, fetched: Balances, ts_ns: int) -> list[Drift]:
        """Compare venue-reported balances with the ledger; listeners hear of any drift."""
        self.checks += 1
        found = drift(self.portfolio.balances, fetched, self.config.drift_tolerance)
        self.last_drift = found
        if found:
            for fn in self.on_drift:
                fn(ts_ns, found)
        return found

    def summary(self) -> dict[str, Any]:
        """The ``inventory`` section of the run summary (amounts as strings: exact)."""
        bal = self.portfolio.balances
        return {
            "holdings": [{"venue": h.venue, "asset": h.asset, "qty": str(h.qty), "share": float(h.share),
                          "target": None if h.target is None else float(h.target)}
                         for h in holdings(bal, self.config)],
            "suggestions": [{"asset": m.asset, "from": m.src, "to": m.dst, "qty": str(m.qty), "reason": m.reason}
                            for m in suggest(bal, self.config)],
            "drift": [{"venue": d.venue, "asset": d.asset, "ledger": str(d.ledger), "reported": str(d.reported),
                       "diff": str(d.diff)} for d in self.last_drift],
            "balance_checks": self.checks,
        }


async def check_venue(source: BalanceSource, inventory: Inventory, now_ns: int) -> list[Drift] | None:
    """Fetch one venue's balances and compare them with the ledger; None (no comparison) when
    orders were in flight on that venue before or after the fetch: their fills would race it and
    show a drift that is only a timing."""
    if source.in_flight:
        return None
    fetched = await source.fetch_balances()
    if source.in_flight:
        return None
    return inventory.compare({source.venue: fetched}, now_ns)
