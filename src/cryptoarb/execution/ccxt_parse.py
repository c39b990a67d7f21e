"""ccxt's unified order and trade structures, and market precision, read exactly.

ccxt gives floats; every number here goes through its shortest repr to the decimal the venue
sent (``core.instruments.dec``), and steps are exact multiples (``floor_step``, ``round_step``).
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from cryptoarb.core.instruments import dec
from cryptoarb.execution import journal as J


def order_state(answer: dict[str, Any]) -> str:
    status = answer.get("status")
    filled = dec(answer.get("filled") or 0)
    amount = dec(answer.get("amount") or 0)
    if status == "closed" or (amount and filled >= amount):
        return J.FILLED
    if status in ("canceled", "expired"):
        return J.CANCELED
    if status == "rejected":
        return J.REJECTED
    return J.PARTIAL if filled else J.OPEN


def venue_fill(t: dict[str, Any]) -> J.VenueFill:
    fee = t.get("fee") or {}
    ts = t.get("timestamp") or 0
    return J.VenueFill(str(t.get("id")), dec(t["price"]), dec(t["amount"]), dec(fee.get("cost") or 0),
                       str(fee.get("currency") or ""), int(ts) * 1_000_000)


def venue_fills(answer: dict[str, Any]) -> list[J.VenueFill]:
    return [venue_fill(t) for t in answer.get("trades") or [] if t.get("id") not in (None, "")]


TICK_SIZE = 4  # ccxt.base.decimal_to_precision.TICK_SIZE


def step_of(market: dict[str, Any], what: str, mode: int) -> Decimal:
    """The market's step for ``what``: ccxt states a tick size (TICK_SIZE mode, most venues) or
    a number of decimals."""
    p = (market.get("precision") or {}).get(what)
    if p is None:
        return Decimal(0)
    d = dec(p)
    return d if mode == TICK_SIZE else Decimal(1).scaleb(-int(d))


def floor_step(x: Decimal, step: Decimal) -> Decimal:
    return (x / step).to_integral_value(rounding=ROUND_FLOOR) * step if step > 0 else x


def round_step(x: Decimal, step: Decimal, up: bool) -> Decimal:
    if step <= 0:
        return x
    return (x / step).to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR) * step
