"""What the engine thread queues, and the table rows the writer thread builds from it.

The split is about cost and safety: the engine thread only copies field values into a tuple
(Orders and ArbTrades keep changing after they are queued, so a reference would be written in
whatever state it has reached by the time the writer gets to it), and all conversion,
validation and JSON cleaning happens later on the writer thread.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from cryptoarb.core.opportunity import Opportunity
from cryptoarb.core.orders import ZERO, ArbTrade, Fill, Order
from cryptoarb.core.pnl import PnlSnapshot
from cryptoarb.storage.coltypes import to_exact

Row = dict[str, Any]

# Queue item kinds. The item is (kind, payload).
OPP, ORDER, FILL, ARB, BALANCES, FEATURE, AUDIT, RUN_START, RUN_END, PNL, SPREAD, CYCLE = range(12)


def order_snapshot(o: Order) -> tuple[Any, ...]:
    return (
        o.id,
        o.arb_id,
        o.venue,
        o.symbol,
        o.side,
        o.type,
        o.qty,
        o.limit_price,
        o.expected_price,
        o.status,
        o.filled_qty,
        o.notional,
        o.fee,
        o.fee_currency,
        o.reason,
        o.created_ns,
        o.updated_ns,
    )


def fill_snapshot(f: Fill) -> tuple[Any, ...]:
    return (f.order_id, f.venue, f.symbol, f.side, f.price, f.qty, f.fee, f.fee_currency, f.liquidity, f.ts_ns)


def arb_snapshot(t: ArbTrade) -> tuple[Any, ...]:
    return (
        t.id,
        t.opportunity_id,
        t.group,
        t.status,
        t.expected_pnl,
        t.realized_pnl,
        t.fees_quote,
        t.expected_qty_base,
        t.matched_qty_base,
        t.unhedged_qty_base,
        t.created_ns,
        t.closed_ns,
    )


def feature_snapshot(row: Mapping[str, Any]) -> Row:
    copy = dict(row)
    feats = copy.get("features")
    if isinstance(feats, Mapping):
        copy["features"] = dict(feats)
    return copy


def jsonable(obj: Any) -> Any:
    """A deep copy that any JSON column accepts: Decimals, enums and other objects become
    strings, NaN/inf become null (PostgreSQL's json type rejects them)."""
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Enum):
        return jsonable(obj.value)
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [jsonable(v) for v in obj]
    return str(obj)


def _f(x: Any) -> float:
    v = float(x)
    if not math.isfinite(v):
        raise ValueError(f"non-finite value {x!r}")  # SQLite would store NaN as NULL
    return v


def _d(x: Any) -> Decimal:
    return to_exact(x)


def _v(x: Any) -> Any:
    return x.value if isinstance(x, Enum) else x


def _opportunity(o: Opportunity, run_id: str) -> list[Row]:
    return [
        dict(
            run_id=run_id,
            id=int(o.id),
            group=o.group,
            label=o.label,
            buy_key=o.buy_key,
            sell_key=o.sell_key,
            qty_base=_f(o.qty_base),
            buy_vwap=_f(o.buy_vwap),
            sell_vwap=_f(o.sell_vwap),
            cost_quote=_f(o.cost_quote),
            fees_quote=_f(o.fees_quote),
            profit_quote=_f(o.profit_quote),
            profit_bps=_f(o.profit_bps),
            exchange_ns=int(o.exchange_ns),
            local_ns=int(o.local_ns),
        )
    ]


def _order(s: tuple[Any, ...], run_id: str) -> list[Row]:
    (
        id_,
        arb_id,
        venue,
        symbol,
        side,
        type_,
        qty,
        limit,
        expected,
        status,
        filled,
        notional,
        fee,
        fee_ccy,
        reason,
        created,
        updated,
    ) = s
    avg = notional / filled if filled else ZERO
    return [
        dict(
            id=id_,
            run_id=run_id,
            arb_id=arb_id,
            venue=venue,
            symbol=symbol,
            side=side,
            type=type_,
            qty=_d(qty),
            limit_price=_d(limit),
            expected_price=_d(expected),
            status=_v(status),
            filled_qty=_d(filled),
            avg_price=_d(avg),
            fee=_d(fee),
            fee_currency=fee_ccy,
            reason=reason,
            created_ns=created,
            updated_ns=updated,
        )
    ]


def _fill(s: tuple[Any, ...], run_id: str) -> list[Row]:
    order_id, venue, symbol, side, price, qty, fee, fee_ccy, liquidity, ts_ns = s
    return [
        dict(
            run_id=run_id,
            order_id=order_id,
            venue=venue,
            symbol=symbol,
            side=side,
            price=_d(price),
            qty=_d(qty),
            fee=_d(fee),
            fee_currency=fee_ccy,
            liquidity=liquidity,
            ts_ns=ts_ns,
        )
    ]


def _arb(s: tuple[Any, ...], run_id: str) -> list[Row]:
    id_, opp_id, group, status, exp_pnl, pnl, fees, exp_qty, matched, unhedged, created, closed = s
    return [
        dict(
            run_id=run_id,
            id=id_,
            opportunity_id=opp_id,
            group=group,
            status=_v(status),
            expected_pnl=_d(exp_pnl),
            realized_pnl=_d(pnl),
            fees_quote=_d(fees),
            expected_qty_base=_d(exp_qty),
            matched_qty_base=_d(matched),
            unhedged_qty_base=_d(unhedged),
            created_ns=created,
            closed_ns=closed or None,
        )
    ]


def cycle_snapshot(t: Any) -> tuple[Any, ...]:
    """A ``execution.cycles.CycleTrade`` as it is now (it keeps changing until it settles)."""
    return (t.id, t.venue, t.name, t.start, t.status, t.expected_in, t.expected_pnl, t.realized_pnl, t.fees_quote,
            dict(t.residual), [o.id for o in t.orders], t.reason, t.created_ns, t.closed_ns)


def _cycle(s: tuple[Any, ...], run_id: str) -> list[Row]:
    id_, venue, name, start, status, exp_in, exp_pnl, pnl, fees, residual, orders, reason, created, closed = s
    return [dict(
        run_id=run_id, id=id_, venue=venue, name=name, start=start, status=status, expected_in=_d(exp_in),
        expected_pnl=_d(exp_pnl), realized_pnl=_d(pnl), fees_quote=_d(fees),
        residual={c: str(a) for c, a in residual.items()}, orders={"legs": list(orders)}, reason=reason,
        created_ns=created, closed_ns=closed or None,
    )]


def _balances(p: tuple[int, tuple[tuple[str, str, Decimal], ...]], run_id: str) -> list[Row]:
    ts_ns, rows = p
    return [dict(run_id=run_id, ts_ns=ts_ns, venue=v, asset=a, amount=_d(amt)) for v, a, amt in rows]


def pnl_snapshot(snap: PnlSnapshot) -> tuple[Any, ...]:
    realised, unrealised, total = snap.exact
    return (snap.currency, realised, unrealised, total, snap.unhedged_quote, snap.max_unhedged_quote)


def _pnl(p: tuple[int, tuple[Any, ...]], run_id: str) -> list[Row]:
    ts_ns, (currency, realised, unrealised, total, unhedged, max_unhedged) = p
    return [dict(run_id=run_id, ts_ns=ts_ns, currency=currency, realised=_d(realised), unrealised=_d(unrealised),
                 total=_d(total), unhedged_quote=_f(unhedged), max_unhedged_quote=_f(max_unhedged))]


_FEATURE_COLUMNS = ("spread_bps", "net_bps", "buy_depth_quote", "sell_depth_quote")
_FEATURE_KEYS = {"run_id", "ts_ns", "group", "buy_key", "sell_key", "features", "label", "kind", "realised_pnl",
                 *_FEATURE_COLUMNS}


def _feature(r: Row, run_id: str) -> list[Row]:
    """Unknown keys are kept, inside the ``features`` JSON."""
    feats = dict(r.get("features") or {})
    feats.update({k: v for k, v in r.items() if k not in _FEATURE_KEYS})
    label = r.get("label")
    row = dict(
        run_id=r.get("run_id", run_id),
        ts_ns=int(r["ts_ns"]),
        group=r["group"],
        buy_key=r["buy_key"],
        sell_key=r["sell_key"],
        features=jsonable(feats),
        label=_opt_f(label),
        kind=r.get("kind"),
        realised_pnl=_opt_f(r.get("realised_pnl")),
    )
    row.update({c: _f(r[c]) for c in _FEATURE_COLUMNS})
    return [row]


def _opt_f(x: Any) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)


_SAMPLE_FLOATS = ("spread_bps", "mid", "imbalance", "depth_quote", "book_spread_bps")


def _spread(r: Row, run_id: str) -> list[Row]:
    row = dict(run_id=r.get("run_id", run_id), ts_ns=int(r["ts_ns"]), group=r["group"], buy_key=r["buy_key"],
               sell_key=r["sell_key"])
    row.update({c: _f(r[c]) for c in _SAMPLE_FLOATS})
    return [row]


def _audit(p: tuple[float, str, str, Any], run_id: str) -> list[Row]:
    ts, actor, action, detail = p
    return [dict(ts=datetime.fromtimestamp(ts, UTC), actor=actor, action=action, detail=detail)]


def _run_start(p: tuple[str, Any, int], run_id: str) -> list[Row]:
    mode, config, started_ns = p
    return [dict(id=run_id, mode=mode, started_ns=started_ns, ended_ns=None, config=config)]


def _run_end(ended_ns: int, run_id: str) -> list[Row]:
    return [dict(b_id=run_id, b_ended_ns=ended_ns)]


# -- leg risk (execution/legrisk.py) -------------------------------------------------------------
LEG_INCIDENT, LEG_EXPOSURE = 12, 13  # after the kinds above


def incident_snapshot(i: Any) -> tuple[Any, ...]:
    """A ``core.legrisk.Incident``'s fields now (it keeps changing after it is queued)."""
    return (i.trade_id, i.asset, _v(i.status), ",".join(i.steps_taken), i.filled, i.missing, i.start_qty, i.qty,
            len(i.orders), i.realised, i.fees_quote, i.slippage_quote, i.opened_ns, i.closed_ns, i.reason)


def _leg_incident(s: tuple[Any, ...], run_id: str) -> list[Row]:
    (tid, asset, status, steps, filled, missing, start, qty, n, realised, fees, slip, opened, closed, reason) = s
    return [dict(run_id=run_id, trade_id=tid, asset=asset, status=status, steps=steps, filled_key=filled,
                 missing_key=missing, start_qty=_d(start), open_qty=_d(qty), orders=n, realised=_d(realised),
                 fees_quote=_d(fees), slippage_quote=_d(slip), opened_ns=opened, closed_ns=closed or None,
                 reason=reason)]


def _leg_exposure(p: tuple[int, str, Decimal, Decimal, float], run_id: str) -> list[Row]:
    ts_ns, asset, qty, mark, total = p
    return [dict(run_id=run_id, ts_ns=ts_ns, asset=asset, qty=_d(qty), mark=_d(mark), total_quote=_f(total))]


# kind -> (target, row builder). Targets are table names, plus "run_end" (an UPDATE).
BUILDERS: dict[int, tuple[str, Callable[[Any, str], list[Row]]]] = {
    RUN_START: ("runs", _run_start),
    OPP: ("opportunities", _opportunity),
    ORDER: ("orders", _order),
    ARB: ("arb_trades", _arb),
    CYCLE: ("cycles", _cycle),
    FILL: ("fills", _fill),
    BALANCES: ("balances", _balances),
    PNL: ("pnl", _pnl),
    FEATURE: ("training_features", _feature),
    SPREAD: ("spread_samples", _spread),
    AUDIT: ("audit_log", _audit),
    LEG_INCIDENT: ("leg_incidents", _leg_incident),
    LEG_EXPOSURE: ("leg_exposure", _leg_exposure),
    RUN_END: ("run_end", _run_end),
}
# Write order inside a batch: parents before children (fills reference orders), run end last.
TARGET_ORDER = [target for target, _ in BUILDERS.values()]
# Tables written as insert-or-update, by primary key; later rows in a batch replace earlier ones.
UPSERT_KEYS: dict[str, tuple[str, ...]] = {
    "runs": ("id",),
    "opportunities": ("run_id", "id"),
    "orders": ("id",),
    "arb_trades": ("run_id", "id"),
    "leg_incidents": ("run_id", "trade_id"),
    "cycles": ("run_id", "id"),
}
