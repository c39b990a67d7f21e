"""Balances, derivative positions and realised PnL in exact decimals.

Booked the way venues book them:

* **Spot**: the base and quote balances move by the fill; the fee is taken in the asset the
  venue's rule says (:func:`fee_asset`; most venues take it from the asset received).
* **Derivatives** (linear and inverse) are margin-style: the position carries quantity and entry
  value, and the wallet (settlement currency) moves only by realised PnL when a position is
  reduced, and by fees. An inverse contract's PnL is ``qty x cs x (1/entry - 1/exit)`` in base;
  a base-sized one's (Bitget COIN-FUTURES, ``Instrument.base_sized``) is the linear PnL in quote
  divided by the exit price: ``qty x cs x (exit - entry) / exit`` in base, the same thing with the
  quote notional ``qty x cs x entry`` fixed when the position opened.

Every fill is also booked in the run's :class:`~cryptoarb.core.pnl.PnlLedger`, which values it
in the valuation currency and says how much PnL the fill *realised* (closed); the rest of the
account's change is open inventory, marked to the books (see docs/pnl.md).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, localcontext

from cryptoarb.core.instruments import Instrument, Kind
from cryptoarb.core.orders import ZERO, ArbStatus, ArbTrade, Fill, Order
from cryptoarb.core.pnl import PREC, PnlLedger

# Spot fee side per venue when the instrument does not say (ccxt's ``feeSide`` vocabulary).
# Most venues take the fee from the asset received ("get"): Binance, Bybit, OKX, Gate, HTX,
# Bitfinex, KuCoin. These take it in the quote currency on both sides:
VENUE_FEE_SIDE: dict[str, str] = {"coinbase": "quote", "kraken": "quote", "bitstamp": "quote", "gemini": "quote"}
DEFAULT_FEE_SIDE = "get"


def fee_side(inst: Instrument) -> str:
    return inst.fee_side or VENUE_FEE_SIDE.get(inst.venue, DEFAULT_FEE_SIDE)


def fee_asset(inst: Instrument, side: str) -> str:
    """The currency a fill's fee is charged in: the settlement currency for derivatives, the
    instrument's fee side for spot (``get`` = base when buying, quote when selling)."""
    if inst.kind is not Kind.SPOT:
        return inst.settle
    rule = fee_side(inst)
    if rule == "get":
        return inst.base if side == "buy" else inst.quote
    if rule == "give":
        return inst.quote if side == "buy" else inst.base
    return inst.base if rule == "base" else inst.quote


def fill_fee(inst: Instrument, side: str, qty: Decimal, price: Decimal, rate: Decimal) -> tuple[Decimal, str]:
    """The taker fee of one fill and its currency: ``rate`` x the fill's value in that currency."""
    ccy = fee_asset(inst, side)
    cs = Decimal(repr(inst.contract_size))
    if inst.quote_contracts:
        return qty * cs / price * rate, ccy
    if ccy == inst.base:  # spot fee taken in base, or a base-sized inverse contract's (settled in base)
        return qty * cs * rate, ccy
    return qty * cs * price * rate, ccy


def spot_need(inst: Instrument, side: str, qty: Decimal, limit: Decimal, rate: Decimal) -> tuple[str, Decimal]:
    """What a venue checks before accepting a spot order: (currency, amount), the fee included
    only when it is charged in the currency being spent."""
    spend = inst.quote if side == "buy" else inst.base
    amount = qty * limit if side == "buy" else qty
    if fee_asset(inst, side) == spend:
        amount += amount * rate
    return spend, amount


def base_qty(inst: Instrument, qty: Decimal, price: Decimal) -> Decimal:
    """A native fill quantity in base currency, exactly."""
    cs = Decimal(repr(inst.contract_size))
    if inst.quote_contracts:
        return qty * cs / price
    return qty * cs


def contract_value(inst: Instrument, qty: Decimal, price: Decimal) -> Decimal:
    """Signed value of ``qty`` contracts at ``price``, the quantity whose change is a position's
    PnL: ``qty x cs x price`` in quote (linear, and base-sized inverse, whose PnL is then
    converted to base at the exit price: :class:`Position`), ``-qty x cs / price`` in base
    (inverse: a long gains BTC when the USD price rises)."""
    cs = Decimal(repr(inst.contract_size))
    if inst.quote_contracts:
        return -qty * cs / price
    return qty * cs * price


@dataclass(slots=True)
class Position:
    """A derivative position: signed native quantity and the entry value of what is open."""

    inst: Instrument
    qty: Decimal = ZERO
    # sum of contract_value(q, entry price) over the open quantity: settlement currency, except
    # for a base-sized inverse contract (quote: the notional the position opened with)
    cost: Decimal = ZERO

    def apply(self, dq: Decimal, price: Decimal) -> Decimal:
        """Add ``dq`` contracts (signed) at ``price``; returns the PnL realised, in settlement currency."""
        qty = self.qty
        if not qty or (qty > 0) == (dq > 0):
            self.qty = qty + dq
            self.cost += contract_value(self.inst, dq, price)
            return ZERO
        closing = -dq if abs(dq) <= abs(qty) else qty  # same sign as qty
        released = self.cost if closing == qty else self.cost * closing / qty
        realised = contract_value(self.inst, closing, price) - released
        if self.inst.base_sized:  # quote PnL, paid in the base coin at the exit price
            realised /= price
        self.qty = qty - closing
        self.cost -= released
        rest = dq + closing
        if rest:
            self.cost += contract_value(self.inst, rest, price)
            self.qty += rest
        return realised

    def unrealised(self, mark: Decimal) -> Decimal:
        """Open PnL at ``mark``, in settlement currency."""
        if not self.qty or not mark:
            return ZERO
        upnl = contract_value(self.inst, self.qty, mark) - self.cost
        return upnl / mark if self.inst.base_sized else upnl

    def entry_price(self) -> Decimal:
        if not self.qty or not self.cost:
            return ZERO
        cs = Decimal(repr(self.inst.contract_size))
        if self.inst.quote_contracts:
            return -self.qty * cs / self.cost
        return self.cost / (self.qty * cs)


PriceFn = Callable[[str], Decimal | None]


class Portfolio:
    """Per-venue balances (by currency), derivative positions and the run's PnL ledger.

    ``currency`` is what PnL is valued in; ``equivalents`` count 1:1 with it (USD ~ USDT);
    ``price(asset)`` gives any other asset's current price in ``currency`` (the engine reads the
    books' mids). Without a currency, the quote currency of the first fill is used.
    """

    def __init__(
        self, currency: str | None = None, equivalents: frozenset[str] = frozenset(), price: PriceFn | None = None
    ) -> None:
        self.balances: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        self.deposits: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        # native quantity per venue and symbol (a reader's view of ``derivatives``)
        self.positions: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        self.derivatives: dict[str, Position] = {}  # instrument key -> position
        self.price = price
        self.ledger: PnlLedger | None = PnlLedger(currency, equivalents) if currency else None
        self._equivalents = equivalents

    def deposit(self, venue: str, currency: str, amount: Decimal) -> None:
        """Money arriving from outside the run: starting inventory, not PnL."""
        self.balances[venue][currency] += amount
        self.deposits[venue][currency] += amount

    def balance(self, venue: str, currency: str) -> Decimal:
        return self.balances[venue][currency]

    def _rate(self, ccy: str) -> Decimal:
        """The price of ``ccy`` in the valuation currency now (0 when nothing prices it)."""
        led = self.ledger
        assert led is not None
        if led.is_cash(ccy):
            return Decimal(1)
        px = self.price(ccy) if self.price is not None else None
        if px is None:
            led.unpriced.add(ccy)
            return ZERO
        return px

    def apply_fill(self, inst: Instrument, fill: Fill) -> None:
        """Move balances and positions for one fill, and book it in the ledger: sets
        ``fill.pnl`` (realised by this fill) and ``fill.fee_quote`` (in the valuation currency)."""
        if self.ledger is None:
            self.ledger = PnlLedger(inst.quote, self._equivalents)
        led = self.ledger
        wallet = self.balances[inst.venue]
        sign = 1 if fill.side == "buy" else -1
        with localcontext() as ctx:
            ctx.prec = PREC
            realised = ZERO
            if inst.kind is Kind.SPOT:
                q_rate = self._rate(inst.quote)
                base_px = fill.price * q_rate  # the base asset's price in valuation currency
                wallet[inst.base] += sign * fill.qty
                wallet[inst.quote] -= sign * fill.qty * fill.price
                realised += led.flow(inst.base, sign * fill.qty, base_px)
                realised += led.flow(inst.quote, -sign * fill.qty * fill.price, q_rate)
                fee_rate = base_px if fill.fee_currency == inst.base else self._rate(fill.fee_currency)
            else:
                pos = self.derivatives.get(inst.key)
                if pos is None:
                    pos = self.derivatives[inst.key] = Position(inst)
                pnl = pos.apply(sign * fill.qty, fill.price)
                self.positions[inst.venue][inst.symbol] = pos.qty
                # an inverse contract settles in its base: priced by the fill itself
                s_rate = fill.price * self._rate(inst.quote) if inst.kind is Kind.INVERSE else self._rate(inst.settle)
                if pnl:
                    wallet[inst.settle] += pnl
                    realised += led.income(inst.settle, pnl, s_rate)
                fee_rate = s_rate if fill.fee_currency == inst.settle else self._rate(fill.fee_currency)
            if fill.fee:
                wallet[fill.fee_currency] -= fill.fee
                realised += led.income(fill.fee_currency, -fill.fee, fee_rate)
            fill.pnl = realised
            fill.fee_quote = fill.fee * fee_rate

    def apply_exchange(
        self, venue: str, moves: list[tuple[str, Decimal]], fees: list[tuple[str, Decimal]] | None = None
    ) -> Decimal:
        """Book a trade that is not a venue fill (a DEX swap): ``moves`` are signed balance changes
        (+ received, - paid), ``fees`` amounts paid (gas). Unlike :meth:`deposit`, this is trading:
        the ledger values it at the current prices; returns the PnL it realised."""
        if self.ledger is None:
            self.ledger = PnlLedger(next((c for c, _ in moves if c in self._equivalents), moves[0][0]),
                                    self._equivalents)
        led = self.ledger
        realised = ZERO
        with localcontext() as ctx:
            ctx.prec = PREC
            for ccy, amount in moves:
                self.balances[venue][ccy] += amount
                realised += led.flow(ccy, amount, self._rate(ccy))
            for ccy, amount in fees or []:
                self.balances[venue][ccy] -= amount
                realised += led.income(ccy, -amount, self._rate(ccy))
        return realised

    def snapshot(self) -> list[tuple[str, str, Decimal]]:
        rows = [(v, c, amt) for v, ccys in self.balances.items() for c, amt in ccys.items()]
        rows += [(p.inst.venue, p.inst.symbol, p.qty) for p in self.derivatives.values() if p.qty]
        return sorted(rows)


def order_base(inst: Instrument, order: Order) -> tuple[Decimal, Decimal]:
    """(base quantity filled, base paid or received as fees), converted fill by fill."""
    got = fee = ZERO
    for f in order.fills:
        got += base_qty(inst, f.qty, f.price)
        if inst.kind is Kind.SPOT and f.fee_currency == inst.base:
            fee += f.fee
    return got, fee


def settle_arb(trade: ArbTrade, buy_inst: Instrument, sell_inst: Instrument, ts_ns: int) -> None:
    """Status, quantities and realised PnL once both legs are terminal.

    The trade's realised PnL is what its fills closed (``Fill.pnl``, from the ledger), fees
    included: a failed leg or the open legs of a basis trade realise only their fees, the
    position they leave is open inventory, marked to the books. Base quantities are converted
    fill by fill (inverse: ``sum of q x cs / p``); ``unhedged_qty_base`` is the base the trade
    left behind, spot fees taken in base included.
    """
    b, s = trade.buy_order, trade.sell_order
    bq, b_fee = order_base(buy_inst, b)
    sq, s_fee = order_base(sell_inst, s)
    trade.matched_qty_base = min(bq, sq)
    trade.unhedged_qty_base = (bq - b_fee) - (sq + s_fee)
    trade.fees_quote = sum((f.fee_quote for f in (*b.fills, *s.fills)), ZERO)
    trade.realized_pnl = sum((f.pnl for f in (*b.fills, *s.fills)), ZERO)
    trade.closed_ns = ts_ns
    if bq == 0 and sq == 0:
        trade.status = ArbStatus.FAILED
    elif bq == 0 or sq == 0:
        trade.status = ArbStatus.FAILED_LEG
    elif b.remaining == 0 and s.remaining == 0:
        trade.status = ArbStatus.COMPLETE
    else:
        trade.status = ArbStatus.PARTIAL
