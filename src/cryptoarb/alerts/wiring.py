"""What the engine tells the alert sink: risk audit events and trades whose legs did not both fill.

Attached from outside (``attach(engine, sink)``) through the engine's existing listener lists
(``risk.on_audit``, ``executor.on_trade``), so the engine itself knows nothing about alerts and
a run without ``[alerts]`` pays nothing. The listeners run in the engine's thread: they only
build a short text and call :meth:`AlertSink.notify`, which never blocks.

Keys decide what is folded together: one key per breaker and transition, per quarantined
venue, per (group, trade status) -- a venue rejecting every order gives one alert and a count,
not one per trade. Every kill and resume has a key of its own and is urgent (never rate-limited).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol

from cryptoarb.core.orders import ArbStatus, ArbTrade, Order
from cryptoarb.core.risk import AuditEvent


class Notifier(Protocol):
    """What producers of alerts need (``AlertSink`` implements it)."""

    def notify(self, kind: str, key: str, title: str, body: str = "", detail: Any = None,
               level: str = "warning", urgent: bool = False) -> bool: ...


def audit_alert(sink: Notifier, ev: AuditEvent, run_id: str = "") -> bool:
    """One risk-manager audit event as an alert (trip, half-open, reset, kill, resume, venue down)."""
    detail: dict[str, Any] = {"run_id": run_id, **ev.as_detail()} if run_id else ev.as_detail()
    name = str(ev.detail.get("breaker", ""))
    a = ev.action
    if a == "trip":
        return sink.notify("breaker", f"breaker:{name}:trip", f"circuit breaker {name} TRIPPED: new orders stopped",
                           ev.reason, detail, "failure")
    if a == "half_open":
        return sink.notify("breaker", f"breaker:{name}:half_open", f"circuit breaker {name} half-open: one probe trade",
                           ev.reason, detail, "info")
    if a == "reset":
        return sink.notify("breaker", f"breaker:{name}:reset", f"circuit breaker {name} reset by {ev.actor}",
                           ev.reason, detail, "success")
    if a == "venue_down":
        venue = str(ev.detail.get("venue", ev.reason))
        return sink.notify("venue_down", f"venue_down:{venue}", f"venue {venue} quarantined", ev.reason, detail,
                           "failure")
    if a == "kill":
        n = len(ev.detail.get("cancel_orders", ()))
        return sink.notify("kill", f"kill:{ev.ts_ns}", f"KILL SWITCH set by {ev.actor}: trading stopped",
                           f"{ev.reason}\n{n} open order(s) to cancel", detail, "failure", urgent=True)
    if a == "resume":
        return sink.notify("resume", f"resume:{ev.ts_ns}", f"kill switch lifted by {ev.actor}: trading resumes",
                           ev.reason, detail, "success", urgent=True)
    return sink.notify("risk", f"risk:{a}:{ev.reason}", f"risk {a}", ev.reason, detail)


_LEVEL = {ArbStatus.FAILED_LEG: "failure", ArbStatus.PARTIAL: "failure", ArbStatus.FAILED: "warning"}


def leg_failure(trade: ArbTrade) -> bool:
    """A settled trade whose legs did not both fill: a failed leg, a partial fill that left an
    unhedged residual, or neither leg filled."""
    if not trade.closed_ns:
        return False
    s = trade.status
    return s in (ArbStatus.FAILED_LEG, ArbStatus.FAILED) or (s == ArbStatus.PARTIAL and trade.unhedged_qty_base != 0)


def trade_alert(sink: Notifier, trade: ArbTrade, run_id: str = "") -> bool:
    """Alert on a trade whose legs did not both fill; other trades are ignored (False)."""
    if not leg_failure(trade):
        return False
    s = trade.status
    title = {ArbStatus.FAILED_LEG: "one leg failed: unhedged exposure",
             ArbStatus.PARTIAL: "legs filled unequally: unhedged residual",
             ArbStatus.FAILED: "both legs failed"}[s]
    body = "\n".join([f"trade {trade.id} ({trade.group})", _leg("buy", trade.buy_order), _leg("sell", trade.sell_order),
                      f"unhedged {trade.unhedged_qty_base} base · realised PnL {trade.realized_pnl}"])
    detail = {"trade_id": trade.id, "group": trade.group, "status": s.value,
              "unhedged_qty_base": trade.unhedged_qty_base, "realized_pnl": trade.realized_pnl,
              "buy": _leg_detail(trade.buy_order), "sell": _leg_detail(trade.sell_order)}
    if run_id:
        detail["run_id"] = run_id
    return sink.notify("leg_failure", f"leg_failure:{trade.group}:{s.value}", f"{title} ({trade.group})", body,
                       detail, _LEVEL[s])


def reconciliation_alert(sink: Notifier, venue: str, unknown_orders: list[str] | tuple[str, ...] = (),
                         missed_fills: int = 0, message: str = "", detail: dict[str, Any] | None = None,
                         run_id: str = "") -> bool:
    """What reconciliation found that the journal did not know -- venue orders it never sent (or
    lost), fills it had missed -- or any one-line ``message`` about it (a listener of the live
    execution's ``on_surprise(venue, message)`` passes just that)."""
    d: dict[str, Any] = {"venue": venue, "unknown_orders": list(unknown_orders), "missed_fills": missed_fills,
                         **(detail or {})}
    if run_id:
        d["run_id"] = run_id
    lines = [message] if message else []
    if unknown_orders:
        shown = ", ".join(unknown_orders[:10]) + (" ..." if len(unknown_orders) > 10 else "")
        lines.append(f"{len(unknown_orders)} venue order(s) unknown to the journal: {shown}")
    if missed_fills:
        lines.append(f"{missed_fills} missed fill(s) booked")
    return sink.notify("reconciliation", f"reconciliation:{venue}", f"reconciliation surprise on {venue}",
                       "\n".join(lines), d, "failure")


def balance_drift_alert(sink: Notifier, venue: str, asset: str, ledger: Decimal, actual: Decimal,
                        detail: dict[str, Any] | None = None, run_id: str = "") -> bool:
    """The venue's balance differs from the internal ledger (exact decimals, both shown)."""
    drift = actual - ledger
    d: dict[str, Any] = {"venue": venue, "asset": asset, "ledger": ledger, "venue_balance": actual,
                         "drift": drift, **(detail or {})}
    if run_id:
        d["run_id"] = run_id
    return sink.notify("balance_drift", f"balance_drift:{venue}:{asset}", f"balance drift on {venue} {asset}",
                       f"ledger {ledger}, venue {actual} (drift {drift:+})", d, "warning")


def _leg(side: str, o: Order) -> str:
    why = f" ({o.reason})" if o.reason else ""
    return f"{side} {o.venue} {o.symbol}: {o.status.value}{why}, filled {o.filled_qty}/{o.qty}"


def _leg_detail(o: Order) -> dict[str, Any]:
    return {"order_id": o.id, "venue": o.venue, "symbol": o.symbol, "status": o.status.value,
            "filled_qty": o.filled_qty, "qty": o.qty, "reason": o.reason}


def attach(engine: Any, sink: Notifier) -> None:
    """Send ``engine``'s risk events and leg failures to ``sink`` (listeners on its lists)."""
    engine.risk.on_audit.append(lambda ev: audit_alert(sink, ev, engine.run_id))
    engine.executor.on_trade.append(lambda t: trade_alert(sink, t, engine.run_id))
    inventory = getattr(engine, "inventory", None)
    if inventory is not None:  # venue balances that differ from the ledger (live runs)
        inventory.on_drift.append(lambda _ns, drifts: [
            balance_drift_alert(sink, d.venue, d.asset, d.ledger, d.reported, run_id=engine.run_id) for d in drifts])


def attach_trading(trading: Any, sink: Notifier, run_id: str = "") -> None:
    """Send what the live reconciliation finds (venue orders the journal does not know, missed
    fills, venue errors) to ``sink``."""
    trading.on_surprise.append(lambda venue, msg: reconciliation_alert(sink, venue, message=msg, run_id=run_id))


__all__ = ["Notifier", "attach", "attach_trading", "audit_alert", "balance_drift_alert", "leg_failure",
           "reconciliation_alert", "trade_alert"]
