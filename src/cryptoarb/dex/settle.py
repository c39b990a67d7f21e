"""Executes DEX opportunities and books their realised PnL exactly, gas included.

Order of legs: the on-chain leg first, the CEX leg only once the swap is mined. A swap is slow
and can fail (revert, drop); a CEX taker order is fast. Sending the CEX leg only after the swap
succeeded means a failed swap leaves no unhedged position, only its gas. For DEX<->DEX the buy
swap runs first and the sell swap sells exactly what the buy delivered.

Realised PnL is computed from exact amounts: raw token amounts from the swaps' ``Transfer``
logs, the CEX fills' decimal prices and fees, and ``gasUsed x effectiveGasPrice`` converted at
the opportunity's native-coin price. When both legs moved the same base quantity it is exactly
``quote received - quote paid - CEX fee - gas``, which is the change of the balances on chain
(and on the CEX). A failed leg (reverted, dropped or rejected transaction) is recorded on its
order, counted in :class:`DexExecStats` and passed to ``on_failed_leg`` listeners (risk).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, localcontext

from cryptoarb.core.accounting import Portfolio, spot_need
from cryptoarb.core.book import OrderBook
from cryptoarb.core.instruments import dec
from cryptoarb.core.opportunity import OrderIntent
from cryptoarb.core.orders import ZERO, ArbStatus, ArbTrade, Fill, Order, OrderStatus
from cryptoarb.dex.arb import DEX_DEX, DexLeg, DexOpportunity, pool_out
from cryptoarb.dex.errors import DexError, StalePoolError
from cryptoarb.dex.execution import REJECTED, DexExecutor, SwapOutcome
from cryptoarb.dex.lots import floor_to, grid_step
from cryptoarb.execution.paper import PaperVenue

WEI = Decimal(10) ** 18


@dataclass
class DexExecStats:
    submitted: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    failed_legs: int = 0
    failed_by_reason: dict[str, int] = field(default_factory=dict)  # reverted / dropped / rejected / stale
    gas_wei: int = 0
    expected_pnl: Decimal = ZERO
    realized_pnl: Decimal = ZERO


@dataclass(slots=True)
class LegResult:
    """What one leg moved, exactly (base and quote in human units)."""

    order: Order
    base: Decimal = ZERO
    quote: Decimal = ZERO
    cex_fee: Decimal = ZERO
    gas_wei: int = 0
    outcome: SwapOutcome | None = None


class DexArbExecutor:
    """Runs :class:`DexOpportunity` plans and settles them into :class:`ArbTrade` records."""

    def __init__(
        self,
        dex: DexExecutor,
        portfolio: Portfolio | None = None,
        cex_venues: dict[str, PaperVenue] | None = None,
        books: Callable[[str], OrderBook | None] | None = None,
        run_id: str = "dex",
    ) -> None:
        self.dex = dex
        self.portfolio = portfolio
        self.cex_venues = cex_venues or {}
        self.books = books or (lambda key: None)
        self.run_id = run_id
        self.stats = DexExecStats()
        self.trades: list[ArbTrade] = []
        self.outcomes: list[SwapOutcome] = []
        self.on_trade: list[Callable[[ArbTrade], None]] = []
        self.on_failed_leg: list[Callable[[Order, str], None]] = []

    def _order(self, intent: OrderIntent, arb_id: int, leg: str, now_ns: int, qty: Decimal | None = None) -> Order:
        return Order(
            id=f"{self.run_id}-{arb_id}{leg}",
            venue=intent.venue,
            symbol=intent.symbol,
            side=intent.side,
            qty=qty if qty is not None else dec(intent.qty),
            limit_price=dec(intent.limit_price),
            expected_price=dec(intent.expected_price),
            created_ns=now_ns,
            type="swap" if "@" in intent.venue else "limit_ioc",
            arb_id=arb_id,
        )

    async def execute(self, opp: DexOpportunity, now_ns: int) -> ArbTrade:
        o = opp.opportunity
        self.stats.submitted += 1
        buy = self._order(o.buy, o.id, "b", now_ns, self._planned_base(opp, o.buy))
        sell = self._order(o.sell, o.id, "s", now_ns, self._planned_base(opp, o.sell))
        trade = ArbTrade(o.id, o.id, o.group, buy, sell, dec(o.profit_quote), dec(o.qty_base), now_ns)
        self.trades.append(trade)
        results = {"buy": LegResult(buy), "sell": LegResult(sell)}
        if opp.kind == DEX_DEX:
            await self._dex_dex(opp, results, now_ns)
        else:
            await self._cex_dex(opp, results, now_ns)
        self._settle(opp, trade, results["buy"], results["sell"], now_ns)
        return trade

    @staticmethod
    def _planned_base(opp: DexOpportunity, intent: OrderIntent) -> Decimal | None:
        """The exact base amount of an on-chain leg fixed by the plan (None: the intent's qty)."""
        for leg in opp.legs:
            if leg.pool.venue == intent.venue and leg.side == intent.side:
                raw = leg.amount_out if leg.side == "buy" else leg.amount_in
                return opp.base.human(raw)
        return None

    # -- legs ------------------------------------------------------------------------------------
    async def _swap(
        self,
        opp: DexOpportunity,
        leg: DexLeg,
        res: LegResult,
        now_ns: int,
        amount: int | None = None,
        bound: int | None = None,
    ) -> bool:
        order = res.order
        order.transition(OrderStatus.SUBMITTED, now_ns)
        try:
            leg.pool.check_fresh()
        except StalePoolError as e:
            return self._fail(order, now_ns, "stale", f"not sent: {e}", OrderStatus.REJECTED)
        try:
            out = await self.dex.swap(
                leg.pool,
                leg.token_in.address,
                amount or leg.amount,
                leg.bound if bound is None else bound,
                leg.exact_out,
            )
        except DexError as e:
            return self._fail(order, now_ns, REJECTED, str(e), OrderStatus.REJECTED)
        self.outcomes.append(out)
        res.outcome = out
        res.gas_wei = out.gas_cost_wei
        self.stats.gas_wei += out.gas_cost_wei
        if not out.ok:
            status = OrderStatus.REJECTED if out.status == REJECTED else OrderStatus.FAILED
            return self._fail(order, now_ns, out.status, f"{out.status}: {out.reason} {out.tx_hash}".strip(), status)
        base_raw, quote_raw = (out.amount_out, out.amount_in) if leg.side == "buy" else (out.amount_in, out.amount_out)
        res.base, res.quote = opp.base.human(base_raw), opp.quote.human(quote_raw)
        if res.base != order.qty:  # an exact-input leg delivers what the pool gives: that is the order
            order.qty = res.base
        with localcontext() as ctx:
            ctx.prec = 60
            price = res.quote / res.base if res.base else ZERO
        gas_native = Decimal(out.gas_cost_wei) / WEI
        order.add_fill(
            Fill(
                order.id,
                order.venue,
                order.symbol,
                order.side,
                price,
                res.base,
                gas_native,
                opp.gas.native_symbol,
                now_ns,
            )
        )
        self._book_wallet(opp, leg, res, gas_native)
        return True

    def _fail(self, order: Order, now_ns: int, kind: str, reason: str, status: OrderStatus) -> bool:
        order.transition(status, now_ns, reason)
        self.stats.failed_legs += 1
        self.stats.failed_by_reason[kind] = self.stats.failed_by_reason.get(kind, 0) + 1
        for fn in self.on_failed_leg:
            fn(order, reason)
        return False

    def _book_wallet(self, opp: DexOpportunity, leg: DexLeg, res: LegResult, gas_native: Decimal) -> None:
        if self.portfolio is None:
            return
        wallet = f"wallet@{leg.pool.chain_id}"
        sign = 1 if leg.side == "buy" else -1
        # a swap is trading, not a deposit: the PnL ledger values it (realised/unrealised PnL)
        self.portfolio.apply_exchange(
            wallet,
            [(opp.base.symbol, sign * res.base), (opp.quote.symbol, -sign * res.quote)],
            fees=[(opp.gas.native_symbol, gas_native)],
        )

    async def _cex_dex(self, opp: DexOpportunity, results: dict[str, LegResult], now_ns: int) -> None:
        leg = opp.legs[0]
        dex_res, cex_res = (results["buy"], results["sell"]) if leg.side == "buy" else (results["sell"], results["buy"])
        cex_order = cex_res.order
        venue = self.cex_venues.get(cex_order.venue)
        book = self.books(f"{cex_order.venue} {cex_order.symbol}")
        # the CEX leg is checked as the venue will check it *before* the swap is sent: a leg the
        # venue would refuse must not leave a mined swap unhedged
        why = self._cex_refusal(opp, cex_order, venue, book)
        if why:
            cex_order.transition(OrderStatus.REJECTED, now_ns, why)
            self._fail(
                dex_res.order,
                now_ns,
                "cex_check",
                f"not sent: the CEX leg would be refused: {why}",
                OrderStatus.REJECTED,
            )
            return
        ok = await self._swap(opp, leg, dex_res, now_ns)
        if not ok:
            cex_order.transition(OrderStatus.REJECTED, now_ns, "not sent: the DEX leg failed")
            return
        assert venue is not None and book is not None
        # hedge exactly what the chain moved, in whole lots (the plan makes them equal; any
        # remainder is the trade's unhedged quantity, never an off-grid order)
        cex_order.qty = floor_to(dex_res.base, grid_step(book.instrument, opp.base.decimals))
        venue.execute(cex_order, book, now_ns)
        cex_res.base = cex_order.filled_qty
        cex_res.quote = sum((f.price * f.qty for f in cex_order.fills), ZERO)
        # the trade's fees are in quote: a fee the venue took in the base received is worth its price
        fee = cex_order.fee
        cex_res.cex_fee = fee * cex_order.avg_price if cex_order.fee_currency == book.instrument.base else fee

    @staticmethod
    def _cex_refusal(opp: DexOpportunity, order: Order, venue: PaperVenue | None, book: OrderBook | None) -> str:
        """Why the venue would refuse the planned CEX order now ("" when it would take it): no venue
        or book, an off-grid quantity or price, or the free balance its funds rule requires
        (``core.accounting.spot_need``, the check the paper venue itself applies)."""
        if venue is None or book is None or not book.valid:
            return f"no CEX venue/book for {order.venue} {order.symbol}"
        inst = book.instrument
        step, tick = grid_step(inst, opp.base.decimals), dec(inst.tick_size)
        if order.qty % step or order.limit_price % tick:
            return f"{order.qty} @ {order.limit_price} is off the venue's grid (lot {step}, tick {tick})"
        have_ccy, need = spot_need(inst, order.side, order.qty, order.limit_price, dec(inst.fees.taker))
        have = venue.portfolio.balance(venue.venue, have_ccy)
        return f"insufficient {have_ccy}: need {need}, have {have}" if have < need else ""

    async def _dex_dex(self, opp: DexOpportunity, results: dict[str, LegResult], now_ns: int) -> None:
        first, second = opp.legs
        if not await self._swap(opp, first, results["buy"], now_ns):
            results["sell"].order.transition(OrderStatus.REJECTED, now_ns, "not sent: the buy swap failed")
            return
        got = first.token_out.raw(results["buy"].base)  # exactly what the first swap delivered
        slip = first.amount_out - first.bound
        try:
            expect = pool_out(second.pool, second.token_in, got)
            bound = expect - expect * slip // max(first.amount_out, 1)
        except (DexError, ValueError):
            bound = second.bound
        await self._swap(opp, second, results["sell"], now_ns, amount=got, bound=bound)

    # -- settlement --------------------------------------------------------------------------------
    def _settle(self, opp: DexOpportunity, trade: ArbTrade, b: LegResult, s: LegResult, now_ns: int) -> None:
        gas_quote = Decimal(b.gas_wei + s.gas_wei) / WEI * dec(opp.gas.native_price_quote)
        fees = b.cex_fee + s.cex_fee + gas_quote
        if b.base == s.base:
            gross = s.quote - b.quote  # exact: the same base bought and sold
        else:
            with localcontext() as ctx:
                ctx.prec = 60
                matched = min(b.base, s.base)
                gross = matched * (s.quote / s.base - b.quote / b.base) if matched else ZERO
        trade.matched_qty_base = min(b.base, s.base)
        trade.unhedged_qty_base = b.base - s.base
        trade.fees_quote = fees
        trade.realized_pnl = gross - fees
        trade.closed_ns = now_ns
        if b.base == 0 and s.base == 0:
            trade.status = ArbStatus.FAILED
        elif b.base == 0 or s.base == 0:
            trade.status = ArbStatus.FAILED_LEG
        elif b.order.remaining == 0 and s.order.remaining == 0:
            trade.status = ArbStatus.COMPLETE
        else:
            trade.status = ArbStatus.PARTIAL
        st = self.stats
        st.by_status[trade.status.value] = st.by_status.get(trade.status.value, 0) + 1
        st.expected_pnl += trade.expected_pnl
        st.realized_pnl += trade.realized_pnl
        for fn in self.on_trade:
            fn(trade)
