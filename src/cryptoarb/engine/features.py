"""The training row stored for each opportunity (model inputs; the label comes later): built
off the hot path, right after the message that found the opportunity."""

from __future__ import annotations

from typing import Any

from cryptoarb.core.book import OrderBook
from cryptoarb.core.opportunity import Opportunity


def features(opp: Opportunity, books: dict[str, OrderBook]) -> dict[str, Any]:
    """The training row stored for each opportunity (model inputs; the label comes later)."""
    b = books[opp.buy_key]
    s = books[opp.sell_key]
    mid = (b.mid() + s.mid()) / 2 or 1.0
    return {
        "ts_ns": opp.local_ns,
        "group": opp.group,
        "buy_key": opp.buy_key,
        "sell_key": opp.sell_key,
        "spread_bps": (s.bid - b.ask) / mid * 1e4,
        "net_bps": opp.profit_bps,
        "buy_depth_quote": b.ask * b.ask_qty,
        "sell_depth_quote": s.bid * s.bid_qty,
        "features": {
            "buy_spread_bps": (b.ask - b.bid) / mid * 1e4,
            "sell_spread_bps": (s.ask - s.bid) / mid * 1e4,
            "qty_base": opp.qty_base,
            "buy_age_ms": (opp.local_ns - b.local_ns) / 1e6,
            "sell_age_ms": (opp.local_ns - s.local_ns) / 1e6,
        },
    }
