"""The accounting invariant every replay and demo run must satisfy (shared by the run tests).

Equity change at the final marks, computed two independent ways -- from the fills alone
(cash-settled, exact fractions) and from the portfolio's wallets and positions -- must equal the
realised + unrealised PnL the engine reports, and the summary must say the same.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from fractions import Fraction as F
from typing import Any

from cryptoarb.core.instruments import Instrument, Kind
from cryptoarb.engine.engine import Engine

TOLERANCE = F(1, 10**12)  # in the valuation currency: Decimal division rounds at 60 digits


def _value(inst: Instrument, qty: F, price: F) -> F:
    """Signed contract value in the settlement currency (see core.accounting.contract_value)."""
    cs = F(repr(inst.contract_size))
    return -qty * cs / price if inst.kind is Kind.INVERSE else qty * cs * price


def all_orders(engine: Engine) -> list[Any]:
    """Every order of the run: both legs of each arbitrage trade, the leg-risk orders, every leg of each cycle."""
    out = [o for t in engine.executor.trades for o in (t.buy_order, t.sell_order)] + list(engine.executor.singles)
    if engine.cycles is not None:
        out += [o for t in engine.cycles.executor.trades for o in t.orders]
    return out


def equity_change_from_fills(engine: Engine) -> F:
    """What the fills did to the account, valued at the engine's final marks, from scratch."""
    marks = engine.marks
    flows: dict[str, F] = defaultdict(F)
    positions: dict[str, F] = defaultdict(F)
    insts: dict[str, Instrument] = {}
    for order in all_orders(engine):
        inst = engine.catalog.get(order.venue, order.symbol)
        insts[inst.key] = inst
        for f in order.fills:
            q, p = F(f.qty), F(f.price)
            signed = q if f.side == "buy" else -q
            if inst.kind is Kind.SPOT:
                flows[inst.base] += signed
                flows[inst.quote] -= signed * p
            else:
                flows[inst.settle] -= _value(inst, signed, p)  # cash-settled: pay the value now
                positions[inst.key] += signed
            flows[f.fee_currency] -= F(f.fee)
    total = F(0)
    for ccy, amount in flows.items():
        if amount:
            px = marks.price(ccy)
            assert px is not None, f"nothing prices {ccy}"
            total += amount * F(px)
    for key, qty in positions.items():
        if qty:
            inst = insts[key]
            mark, settle = marks.mid(key), marks.price(inst.settle)
            assert mark is not None and settle is not None, key
            total += _value(inst, qty, F(mark)) * F(settle)
    return total


def equity_change_from_portfolio(engine: Engine) -> F:
    """Wallets against deposits, plus the positions' open PnL, at the final marks."""
    pf, marks = engine.portfolio, engine.marks
    total = F(0)
    for venue, ccys in pf.balances.items():
        for ccy, amount in ccys.items():
            delta = amount - pf.deposits[venue][ccy]
            if delta:
                px = marks.price(ccy)
                assert px is not None, f"nothing prices {ccy}"
                total += F(delta) * F(px)
    for key, pos in pf.derivatives.items():
        mark, settle = marks.mid(key), marks.price(pos.inst.settle)
        if pos.qty:
            assert mark is not None and settle is not None, key
            total += F(pos.unrealised(mark)) * F(settle)
    return total


def assert_pnl_invariant(engine: Engine, summary: dict[str, Any] | None = None) -> F:
    """Equity change at the final marks == realised + unrealised; returns the equity change."""
    for key, book in engine.books.items():  # the marks are the books' mids
        if book.valid and book.bid and book.ask:
            assert engine.marks.mid(key) == Decimal(repr(book.mid())), key
    snap = engine.pnl_snapshot()
    assert not snap.unpriced, snap.unpriced
    realised, unrealised, total = (F(x) for x in snap.exact)
    from_fills = equity_change_from_fills(engine)
    from_wallets = equity_change_from_portfolio(engine)
    assert abs(from_fills - from_wallets) <= TOLERANCE, (float(from_fills), float(from_wallets))
    assert abs(from_fills - (realised + unrealised)) <= TOLERANCE, (float(from_fills), float(realised),
                                                                     float(unrealised))
    assert abs(total - (realised + unrealised)) <= TOLERANCE
    trades: list[Any] = list(engine.executor.trades)
    if engine.cycles is not None:
        trades += engine.cycles.executor.trades
    if all(t.closed_ns for t in trades) and not any(o.status.terminal is False for o in engine.executor.singles):
        # every fill belongs to a settled trade or cycle, or to a leg-risk incident, and books its PnL there
        incidents = engine.legrisk.incidents.values()
        booked = sum((F(t.realized_pnl) for t in trades), F(0)) + sum((F(i.realised) for i in incidents), F(0))
        assert abs(booked - realised) <= TOLERANCE, (float(booked), float(realised))
        assert sum(len(i.orders) for i in incidents) == len(engine.executor.singles)
    s = summary if summary is not None else engine.summary()
    assert s["pnl_quote"] == s["pnl"]["realised"] == float(realised)
    assert s["pnl"]["unrealised"] == float(unrealised) and s["pnl"]["total"] == float(total)
    assert s["max_unhedged_quote"] >= snap.unhedged_quote >= 0.0
    return from_fills
