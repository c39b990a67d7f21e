"""Stored runs: runs, opportunities, trades (legs and fills), orders, fills, balances, PnL, alerts.

Lists take ``limit`` (1..``api.max_page``) and ``offset`` and answer ``{items, total, limit,
offset}``, newest first. ``run`` filters default to every run, except balances and PnL, which
default to the latest run.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query

from cryptoarb.api import queries
from cryptoarb.api.deps import Ctx, User
from cryptoarb.api.routes import AUTH_ERRORS, NOT_FOUND
from cryptoarb.api.schemas import (
    AlertItem,
    Balances,
    Error,
    FillItem,
    OpportunityItem,
    OrderItem,
    Page,
    PnlSeries,
    RunDetail,
    RunItem,
    TradeDetail,
    TradeItem,
)

router = APIRouter(tags=["runs"], responses={**AUTH_ERRORS, 400: {"model": Error, "description": "bad filter"}})

Limit = Annotated[int, Query(ge=1, le=1_000, description="page size (at most api.max_page)")]
Offset = Annotated[int, Query(ge=0, le=10**12)]
RunQ = Annotated[str | None, Query(max_length=64, description="only this run id")]
Text = Annotated[str | None, Query(max_length=128)]
Ns = Annotated[int | None, Query(ge=0, le=2**62, description="nanoseconds since the epoch")]
RunId = Annotated[str, Path(max_length=64)]


def _limit(c: Ctx, limit: int) -> int:
    if limit > c.settings.api.max_page:
        raise HTTPException(400, f"limit {limit} is above the largest page ({c.settings.api.max_page})")
    return limit


def _page(items: list[dict[str, Any]], total: int, limit: int, offset: int) -> dict[str, Any]:
    return {"items": items, "total": total, "limit": limit, "offset": offset}


def _run_or_latest(c: Ctx, run: str | None) -> str:
    rid = run or queries.latest_run(c.db)
    if rid is None:
        raise HTTPException(404, "no run is stored yet")
    return rid


@router.get("/runs", response_model=Page[RunItem])
def list_runs(c: Ctx, _u: User, limit: Limit = 100, offset: Offset = 0,
              mode: Annotated[str | None, Query(max_length=16, description="demo, live, replay")] = None) -> Any:
    items, total = queries.runs(c.db, _limit(c, limit), offset, mode)
    return _page(items, total, limit, offset)


@router.get("/runs/{run_id}", response_model=RunDetail, responses=NOT_FOUND)
def get_run(run_id: RunId, c: Ctx, _u: User) -> Any:
    try:
        return queries.run(c.db, run_id)
    except queries.NotFound as e:
        raise HTTPException(404, str(e)) from None


@router.get("/opportunities", response_model=Page[OpportunityItem])
def list_opportunities(c: Ctx, _u: User, limit: Limit = 100, offset: Offset = 0, run: RunQ = None,
                       group: Text = None, label: Text = None,
                       min_profit_bps: Annotated[float | None, Query(ge=-1e6, le=1e6)] = None,
                       since_ns: Ns = None) -> Any:
    items, total = queries.opportunities(c.db, _limit(c, limit), offset, run, group, label, min_profit_bps, since_ns)
    return _page(items, total, limit, offset)


@router.get("/trades", response_model=Page[TradeItem])
def list_trades(c: Ctx, _u: User, limit: Limit = 100, offset: Offset = 0, run: RunQ = None,
                status: Annotated[str | None, Query(max_length=16, description="complete, partial, failed_leg, "
                                                                                  "failed, pending")] = None,
                group: Text = None, since_ns: Ns = None) -> Any:
    items, total = queries.trades(c.db, _limit(c, limit), offset, run, status, group, since_ns)
    return _page(items, total, limit, offset)


@router.get("/trades/{run_id}/{trade_id}", response_model=TradeDetail, responses=NOT_FOUND)
def get_trade(run_id: RunId, trade_id: Annotated[int, Path(ge=0, le=2**62)], c: Ctx, _u: User) -> Any:
    """One trade: expected vs realised PnL, its fees, both legs (orders) and every fill."""
    try:
        return queries.trade(c.db, run_id, trade_id)
    except queries.NotFound as e:
        raise HTTPException(404, str(e)) from None


@router.get("/orders", response_model=Page[OrderItem])
def list_orders(c: Ctx, _u: User, limit: Limit = 100, offset: Offset = 0, run: RunQ = None, venue: Text = None,
                status: Text = None, side: Annotated[str | None, Query(pattern="^(buy|sell)$")] = None,
                trade: Annotated[int | None, Query(ge=0, le=2**62, description="the trade id (arb_id)")] = None
                ) -> Any:
    items, total = queries.orders(c.db, _limit(c, limit), offset, run, venue, status, side, trade)
    return _page(items, total, limit, offset)


@router.get("/fills", response_model=Page[FillItem])
def list_fills(c: Ctx, _u: User, limit: Limit = 100, offset: Offset = 0, run: RunQ = None, venue: Text = None,
               order: Annotated[str | None, Query(max_length=64, description="order id")] = None) -> Any:
    items, total = queries.fills(c.db, _limit(c, limit), offset, run, venue, order)
    return _page(items, total, limit, offset)


@router.get("/balances", response_model=Balances, responses=NOT_FOUND)
def get_balances(c: Ctx, _u: User, run: RunQ = None) -> Any:
    """Balances and inventory at the run's latest snapshot, against its start (default: latest run)."""
    try:
        return queries.balances(c.db, _run_or_latest(c, run))
    except queries.NotFound as e:
        raise HTTPException(404, str(e)) from None


@router.get("/pnl", response_model=PnlSeries, responses=NOT_FOUND)
def get_pnl(c: Ctx, _u: User, run: RunQ = None,
            max_points: Annotated[int, Query(ge=2, le=10_000)] = 500) -> Any:
    """Realised, marked-to-market and total PnL over the run (default: latest run)."""
    try:
        return queries.pnl(c.db, _run_or_latest(c, run), max_points)
    except queries.NotFound as e:
        raise HTTPException(404, str(e)) from None


@router.get("/alerts", response_model=Page[AlertItem])
def list_alerts(c: Ctx, _u: User, limit: Limit = 100, offset: Offset = 0,
                action: Annotated[str | None, Query(max_length=64, description="e.g. risk.trip, risk.kill")] = None,
                actor: Text = None) -> Any:
    """The audit log: breaker trips and resets, kills and resumes, venue quarantines."""
    items, total = queries.alerts(c.db, _limit(c, limit), offset, action, actor)
    return _page(items, total, limit, offset)
