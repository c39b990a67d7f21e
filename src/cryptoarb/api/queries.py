"""Reads of stored runs for the API and the ``arb runs``/``arb trades`` views (no writes here).

Every list is newest first and paginated (``limit``/``offset``, with the total count of matches).
Decimals come out as strings (exact), as the API serves them.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, Select, func, select

from cryptoarb.storage.models import (
    ArbTradeRow,
    AuditLog,
    BalanceRow,
    FillRow,
    ModelMetadata,
    OpportunityRow,
    OrderRow,
    PnlRow,
    Run,
)


class NotFound(LookupError):
    pass


def _s(v: Any) -> Any:
    return str(v) if isinstance(v, Decimal) else v


def _row(r: Any, cols: Sequence[str]) -> dict[str, Any]:
    return {c: _s(getattr(r, c)) for c in cols}


def _page(db: Engine, q: Select[Any] | Any, order: Sequence[Any], limit: int, offset: int) -> tuple[list[Any], int]:
    with db.connect() as conn:
        total = conn.execute(select(func.count()).select_from(q.order_by(None).subquery())).scalar_one()
        rows = conn.execute(q.order_by(*order).limit(limit).offset(offset)).all()
    return list(rows), int(total)


OPP_COLS = [c.name for c in OpportunityRow.__table__.columns]
ORDER_COLS = [c.name for c in OrderRow.__table__.columns]
FILL_COLS = [c.name for c in FillRow.__table__.columns]
TRADE_COLS = [c.name for c in ArbTradeRow.__table__.columns]


def runs(db: Engine, limit: int = 100, offset: int = 0, mode: str | None = None) -> tuple[list[dict[str, Any]], int]:
    opps = select(OpportunityRow.run_id, func.count().label("n")).group_by(OpportunityRow.run_id).subquery()
    trades = select(ArbTradeRow.run_id, func.count().label("n")).group_by(ArbTradeRow.run_id).subquery()
    q = (select(Run.id, Run.mode, Run.started_ns, Run.ended_ns, func.coalesce(opps.c.n, 0).label("opportunities"),
                func.coalesce(trades.c.n, 0).label("trades"))
         .outerjoin(opps, opps.c.run_id == Run.id).outerjoin(trades, trades.c.run_id == Run.id))
    if mode:
        q = q.where(Run.mode == mode)
    rows, total = _page(db, q, [Run.started_ns.desc(), Run.id], limit, offset)
    return [dict(r._mapping) for r in rows], total


def run(db: Engine, run_id: str) -> dict[str, Any]:
    with db.connect() as conn:
        r = conn.execute(select(Run).where(Run.id == run_id)).first()
        if r is None:
            raise NotFound(f"no run {run_id!r}")
        n_opp = conn.execute(select(func.count()).where(OpportunityRow.run_id == run_id)).scalar_one()
        n_tr = conn.execute(select(func.count()).where(ArbTradeRow.run_id == run_id)).scalar_one()
    return {"id": r.id, "mode": r.mode, "started_ns": r.started_ns, "ended_ns": r.ended_ns, "config": r.config,
            "opportunities": n_opp, "trades": n_tr}


def latest_run(db: Engine) -> str | None:
    with db.connect() as conn:
        return conn.execute(select(Run.id).order_by(Run.started_ns.desc()).limit(1)).scalar()


def opportunities(db: Engine, limit: int, offset: int, run_id: str | None = None, group: str | None = None,
                  label: str | None = None, min_profit_bps: float | None = None,
                  since_ns: int | None = None) -> tuple[list[dict[str, Any]], int]:
    q = select(OpportunityRow)
    if run_id:
        q = q.where(OpportunityRow.run_id == run_id)
    if group:
        q = q.where(OpportunityRow.group == group)
    if label:
        q = q.where(OpportunityRow.label == label)
    if min_profit_bps is not None:
        q = q.where(OpportunityRow.profit_bps >= min_profit_bps)
    if since_ns is not None:
        q = q.where(OpportunityRow.local_ns >= since_ns)
    rows, total = _page(db, q, [OpportunityRow.local_ns.desc(), OpportunityRow.id.desc()], limit, offset)
    return [_row(r, OPP_COLS) for r in rows], total


def trades(db: Engine, limit: int, offset: int, run_id: str | None = None, status: str | None = None,
           group: str | None = None, since_ns: int | None = None) -> tuple[list[dict[str, Any]], int]:
    q = select(ArbTradeRow)
    if run_id:
        q = q.where(ArbTradeRow.run_id == run_id)
    if status:
        q = q.where(ArbTradeRow.status == status)
    if group:
        q = q.where(ArbTradeRow.group == group)
    if since_ns is not None:
        q = q.where(ArbTradeRow.created_ns >= since_ns)
    rows, total = _page(db, q, [ArbTradeRow.created_ns.desc(), ArbTradeRow.id.desc()], limit, offset)
    return [_row(r, TRADE_COLS) for r in rows], total


def trade(db: Engine, run_id: str, trade_id: int) -> dict[str, Any]:
    """One trade with its legs (orders) and their fills: expected vs realised side by side."""
    with db.connect() as conn:
        t = conn.execute(select(ArbTradeRow).where(ArbTradeRow.run_id == run_id, ArbTradeRow.id == trade_id)
                         ).first()
        if t is None:
            raise NotFound(f"no trade {trade_id} in run {run_id!r}")
        legs = conn.execute(select(OrderRow).where(OrderRow.run_id == run_id, OrderRow.arb_id == trade_id)
                            .order_by(OrderRow.id)).all()
        ids = [o.id for o in legs]
        fills = conn.execute(select(FillRow).where(FillRow.order_id.in_(ids)).order_by(FillRow.id)).all()
    out = _row(t, TRADE_COLS)
    out["legs"] = [_row(o, ORDER_COLS) for o in legs]
    out["fills"] = [_row(f, FILL_COLS) for f in fills]
    out["pnl_gap"] = str(t.realized_pnl - t.expected_pnl)
    return out


def orders(db: Engine, limit: int, offset: int, run_id: str | None = None, venue: str | None = None,
           status: str | None = None, side: str | None = None, arb_id: int | None = None
           ) -> tuple[list[dict[str, Any]], int]:
    q = select(OrderRow)
    for col, v in ((OrderRow.run_id, run_id), (OrderRow.venue, venue), (OrderRow.status, status),
                   (OrderRow.side, side), (OrderRow.arb_id, arb_id)):
        if v is not None and v != "":
            q = q.where(col == v)
    rows, total = _page(db, q, [OrderRow.created_ns.desc(), OrderRow.id.desc()], limit, offset)
    return [_row(r, ORDER_COLS) for r in rows], total


def fills(db: Engine, limit: int, offset: int, run_id: str | None = None, venue: str | None = None,
          order_id: str | None = None) -> tuple[list[dict[str, Any]], int]:
    q = select(FillRow)
    for col, v in ((FillRow.run_id, run_id), (FillRow.venue, venue), (FillRow.order_id, order_id)):
        if v:
            q = q.where(col == v)
    rows, total = _page(db, q, [FillRow.ts_ns.desc(), FillRow.id.desc()], limit, offset)
    return [_row(r, FILL_COLS) for r in rows], total


def balances(db: Engine, run_id: str) -> dict[str, Any]:
    """The run's latest balance snapshot, each line against the starting one."""
    with db.connect() as conn:
        if conn.execute(select(Run.id).where(Run.id == run_id)).first() is None:
            raise NotFound(f"no run {run_id!r}")
        first, last = conn.execute(select(func.min(BalanceRow.ts_ns), func.max(BalanceRow.ts_ns))
                                   .where(BalanceRow.run_id == run_id)).one()
        if last is None:
            return {"run_id": run_id, "ts_ns": None, "items": [], "inventory": {}}
        start = {(r.venue, r.asset): r.amount for r in conn.execute(
            select(BalanceRow).where(BalanceRow.run_id == run_id, BalanceRow.ts_ns == first))}
        now = conn.execute(select(BalanceRow).where(BalanceRow.run_id == run_id, BalanceRow.ts_ns == last)
                           .order_by(BalanceRow.venue, BalanceRow.asset)).all()
    items: list[dict[str, Any]] = []
    inv: dict[str, Decimal] = {}
    for r in now:
        s = start.get((r.venue, r.asset))
        change = r.amount - (s or Decimal(0))
        items.append({"venue": r.venue, "asset": r.asset, "amount": str(r.amount),
                      "start": None if s is None else str(s), "change": str(change), "ts_ns": r.ts_ns})
        inv[r.asset] = inv.get(r.asset, Decimal(0)) + change
    return {"run_id": run_id, "ts_ns": last, "items": items, "inventory": {k: str(v) for k, v in sorted(inv.items())}}


def pnl(db: Engine, run_id: str, max_points: int = 500) -> dict[str, Any]:
    """The run's PnL series (realised, marked-to-market, total), thinned evenly to ``max_points``
    (the last point always kept)."""
    with db.connect() as conn:
        if conn.execute(select(Run.id).where(Run.id == run_id)).first() is None:
            raise NotFound(f"no run {run_id!r}")
        rows = conn.execute(select(PnlRow).where(PnlRow.run_id == run_id).order_by(PnlRow.ts_ns, PnlRow.id)
                            ).all()
    n = len(rows)
    if n > max_points:
        step = n / max_points
        picked = [rows[int(i * step)] for i in range(max_points - 1)] + [rows[-1]]
    else:
        picked = list(rows)
    cols = ("ts_ns", "currency", "realised", "unrealised", "total", "unhedged_quote", "max_unhedged_quote")
    return {"run_id": run_id, "points": [_row(r, cols) for r in picked], "total_points": n}


def alerts(db: Engine, limit: int, offset: int, action: str | None = None, actor: str | None = None
           ) -> tuple[list[dict[str, Any]], int]:
    """The audit log: breaker trips and resets, kills and resumes, venue quarantines, API actions."""
    q = select(AuditLog)
    if action:
        q = q.where(AuditLog.action == action)
    if actor:
        q = q.where(AuditLog.actor == actor)
    rows, total = _page(db, q, [AuditLog.ts.desc(), AuditLog.id.desc()], limit, offset)
    return [{"id": r.id, "at": r.ts, "actor": r.actor, "action": r.action, "detail": r.detail}
            for r in rows], total


def models(db: Engine) -> list[dict[str, Any]]:
    with db.connect() as conn:
        rows = conn.execute(select(ModelMetadata).order_by(ModelMetadata.created_at.desc())).all()
    return [{"name": m.name, "version": m.version, "status": m.status, "sha256": m.sha256, "metrics": m.metrics,
             "created_at": m.created_at, "promoted_at": m.promoted_at} for m in rows]
