"""The JSON shapes of engine objects, identical on the stream and in the REST answers.

Exact decimals (prices, quantities, PnL, fees of orders and trades) are strings; detector output
(opportunities) is floats, as the detector computes it; times are integer nanoseconds.
"""

from __future__ import annotations

from typing import Any

from cryptoarb.core.opportunity import Opportunity
from cryptoarb.core.orders import ArbTrade, Order
from cryptoarb.core.risk import AuditEvent


def _f(x: float) -> float | None:
    return x if x == x and x not in (float("inf"), float("-inf")) else None


def opportunity(o: Opportunity, run_id: str = "") -> dict[str, Any]:
    return {
        "run_id": run_id, "id": o.id, "group": o.group, "label": o.label, "buy_key": o.buy_key,
        "sell_key": o.sell_key, "qty_base": _f(o.qty_base), "buy_vwap": _f(o.buy_vwap), "sell_vwap": _f(o.sell_vwap),
        "cost_quote": _f(o.cost_quote), "fees_quote": _f(o.fees_quote), "profit_quote": _f(o.profit_quote),
        "profit_bps": _f(o.profit_bps), "exchange_ns": o.exchange_ns, "local_ns": o.local_ns,
    }


def order(o: Order, run_id: str = "") -> dict[str, Any]:
    return {
        "id": o.id, "run_id": run_id, "arb_id": o.arb_id, "venue": o.venue, "symbol": o.symbol, "side": o.side,
        "type": o.type, "qty": str(o.qty), "limit_price": str(o.limit_price), "expected_price": str(o.expected_price),
        "status": o.status.value, "filled_qty": str(o.filled_qty), "avg_price": str(o.avg_price), "fee": str(o.fee),
        "fee_currency": o.fee_currency, "reason": o.reason, "created_ns": o.created_ns, "updated_ns": o.updated_ns,
    }


def trade(t: ArbTrade, run_id: str = "") -> dict[str, Any]:
    return {
        "run_id": run_id, "id": t.id, "opportunity_id": t.opportunity_id, "group": t.group, "status": t.status.value,
        "expected_pnl": str(t.expected_pnl), "realized_pnl": str(t.realized_pnl), "fees_quote": str(t.fees_quote),
        "expected_qty_base": str(t.expected_qty_base), "matched_qty_base": str(t.matched_qty_base),
        "unhedged_qty_base": str(t.unhedged_qty_base), "created_ns": t.created_ns,
        "closed_ns": t.closed_ns or None, "legs": [order(t.buy_order, run_id), order(t.sell_order, run_id)],
    }


def audit(ev: AuditEvent) -> dict[str, Any]:
    return {"actor": ev.actor, "action": ev.action, "reason": ev.reason, "ts_ns": ev.ts_ns,
            "detail": {k: (v if isinstance(v, int | float | str | bool) or v is None else str(v))
                       for k, v in ev.detail.items()}}
