"""Orders on the local venue: Binance's checks (parameters, filters, balances) and matching
against the capture's book, each order one SQLite transaction.

Binance's rules followed here: LIMIT needs timeInForce, quantity and price; MARKET takes
quantity or quoteOrderQty. PRICE_FILTER, LOT_SIZE and NOTIONAL failures are ``-1013 Filter
failure: <NAME>``; an account short of funds gets ``-2010 Account has insufficient balance for
requested action.``; a client order id already used by an open order gets ``-2010 Duplicate
order sent.``. A buy locks ``quantity x price`` of the quote (the estimated cost for a market
order), a sell locks the quantity. Takers fill at each book level's price; the commission is
taken from the asset received (base on a buy, quote on a sell). An IOC or market remainder
expires; a GTC remainder rests and fills, as maker at its own price, once the book crosses it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from tests.exchange.market import BUY, SELL, CaptureMarket
from tests.exchange.store import ZERO, Order, Store

EIGHT = Decimal("0.00000001")
CLIENT_ID = re.compile(r"^[a-zA-Z0-9\-_]{1,36}$")


class VenueError(Exception):
    """An answer in Binance's error format: ``{"code": code, "msg": msg}`` with an HTTP status."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status


def mandatory(name: str) -> VenueError:
    return VenueError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def insufficient() -> VenueError:
    return VenueError(-2010, "Account has insufficient balance for requested action.")


@dataclass(frozen=True)
class SymbolRules:
    """exchangeInfo of the one symbol (Binance's values for BTCUSDT in August 2024 by default)."""

    symbol: str = "BTCUSDT"
    base: str = "BTC"
    quote: str = "USDT"
    tick_size: Decimal = Decimal("0.01")
    min_price: Decimal = Decimal("0.01")
    max_price: Decimal = Decimal("1000000")
    step_size: Decimal = Decimal("0.00001")
    min_qty: Decimal = Decimal("0.00001")
    max_qty: Decimal = Decimal("9000")
    min_notional: Decimal = Decimal("5")
    max_notional: Decimal = Decimal("9000000")

    def filters(self) -> list[dict[str, Any]]:
        f8 = fmt
        return [
            {"filterType": "PRICE_FILTER", "minPrice": f8(self.min_price), "maxPrice": f8(self.max_price),
             "tickSize": f8(self.tick_size)},
            {"filterType": "LOT_SIZE", "minQty": f8(self.min_qty), "maxQty": f8(self.max_qty),
             "stepSize": f8(self.step_size)},
            {"filterType": "MARKET_LOT_SIZE", "minQty": f8(ZERO), "maxQty": f8(self.max_qty), "stepSize": f8(ZERO)},
            {"filterType": "NOTIONAL", "minNotional": f8(self.min_notional), "applyMinToMarket": True,
             "maxNotional": f8(self.max_notional), "applyMaxToMarket": False, "avgPriceMins": 5},
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
        ]


def fmt(d: Decimal) -> str:
    """Binance's number format: a string with eight decimals."""
    return f"{d.quantize(EIGHT):f}"


def parse_decimal(params: dict[str, str], name: str) -> Decimal | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        d = Decimal(raw)
    except InvalidOperation:
        raise VenueError(-1100, f"Illegal characters found in parameter '{name}'; legal range is "
                                "'^([0-9]{1,20})(\\.[0-9]{1,20})?$'.") from None
    if not d.is_finite() or d < 0:
        raise VenueError(-1100, f"Illegal characters found in parameter '{name}'.")
    exponent = d.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -8:
        raise VenueError(-1111, f"Parameter '{name}' has too much precision.")
    return d


class Matcher:
    """Places, fills and cancels orders of every account on the one symbol."""

    def __init__(self, store: Store, market: CaptureMarket, rules: SymbolRules,
                 fees: dict[str, tuple[Decimal, Decimal]], clock: Callable[[], int]) -> None:
        self.store = store
        self.market = market
        self.rules = rules
        self.fees = fees  # account -> (taker, maker)
        self.clock = clock  # the venue's time, ms
        self._open: list[Order] | None = None  # open orders, reloaded after any change
        market.on_move = self._moved

    # -- checks ----------------------------------------------------------------------------
    def _check_price(self, price: Decimal) -> None:
        r = self.rules
        if price < r.min_price or price > r.max_price or price % r.tick_size != 0:
            raise VenueError(-1013, "Filter failure: PRICE_FILTER")

    def _check_qty(self, qty: Decimal) -> None:
        r = self.rules
        if qty < r.min_qty or qty > r.max_qty or qty % r.step_size != 0:
            raise VenueError(-1013, "Filter failure: LOT_SIZE")

    def _check_notional(self, notional: Decimal) -> None:
        if notional < self.rules.min_notional or notional > self.rules.max_notional:
            raise VenueError(-1013, "Filter failure: NOTIONAL")

    # -- placing ---------------------------------------------------------------------------
    def place(self, account: str, params: dict[str, str], now: int) -> tuple[Order, list[dict[str, Any]]]:
        """Check, commit and match one new order; returns the order and its fills."""
        r = self.rules
        side = params.get("side", "")
        otype = params.get("type", "")
        if not side:
            raise mandatory("side")
        if not otype:
            raise mandatory("type")
        if side not in (BUY, SELL):
            raise VenueError(-1117, "Invalid side.")
        if otype not in ("LIMIT", "MARKET"):
            raise VenueError(-1116, "Invalid orderType.")
        qty = parse_decimal(params, "quantity")
        quote_qty = parse_decimal(params, "quoteOrderQty")
        price = parse_decimal(params, "price")
        tif = params.get("timeInForce", "")
        if otype == "LIMIT":
            if not tif:
                raise mandatory("timeInForce")
            if tif not in ("GTC", "IOC", "FOK"):
                raise VenueError(-1115, "Invalid timeInForce.")
            if qty is None:
                raise mandatory("quantity")
            if price is None:
                raise mandatory("price")
            if quote_qty is not None:
                raise VenueError(-1106, "Parameter 'quoteOrderQty' sent when not required.")
            self._check_price(price)
            self._check_qty(qty)
            self._check_notional(qty * price)
        else:
            if tif:
                raise VenueError(-1106, "Parameter 'timeInForce' sent when not required.")
            if price is not None:
                raise VenueError(-1106, "Parameter 'price' sent when not required.")
            if (qty is None) == (quote_qty is None):
                raise VenueError(-1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!")
            if qty is not None:
                self._check_qty(qty)
                self._check_notional(qty * self.market.mid())
            elif quote_qty is not None:
                if quote_qty <= 0:
                    raise VenueError(-1013, "Filter failure: NOTIONAL")
                self._check_notional(quote_qty)
        cid = params.get("newClientOrderId") or uuid.uuid4().hex[:22]
        if not CLIENT_ID.match(cid):
            raise VenueError(-1100, "Illegal characters found in parameter 'newClientOrderId'; legal range is "
                                    "'^[a-zA-Z0-9-_]{1,36}$'.")
        self.market.catch_up()
        store = self.store
        store.begin()
        try:
            if any(o.client_order_id == cid for o in store.open_orders(account, r.symbol)):
                raise VenueError(-2010, "Duplicate order sent.")
            lock_asset, lock = self._lock_needed(side, otype, qty, quote_qty, price)
            if store.free(account, lock_asset) < lock:
                raise insufficient()
            # FOK: all or nothing, decided before anything is taken
            fok_short = tif == "FOK" and sum((q for _, q in self._crossing(side, price)), ZERO) < (qty or ZERO)
            store.move(account, lock_asset, free=-lock, locked=lock)
            oid = store.insert_order({
                "account": account, "symbol": r.symbol, "client_order_id": cid, "side": side, "type": otype,
                "time_in_force": tif or "GTC", "price": price or ZERO, "orig_qty": qty or ZERO,
                "executed_qty": ZERO, "cum_quote": ZERO, "orig_quote_qty": quote_qty or ZERO, "status": "NEW",
                "time": now, "update_time": now})
            fills = [] if fok_short else self._take(account, oid, side, price, qty, quote_qty, now)
            executed = sum((f["qty"] for f in fills), ZERO)
            cum = sum((f["quote_qty"] for f in fills), ZERO)
            rests = otype == "LIMIT" and tif == "GTC"
            if qty is not None and executed == qty:
                status = "FILLED"
            elif rests:
                status = "PARTIALLY_FILLED" if executed else "NEW"
            elif quote_qty is not None and fills and not self._more_quote(side, quote_qty - cum):
                status = "FILLED"
            else:
                status = "EXPIRED"
            # release what the fills used and, unless the order rests, the rest of the lock
            used = cum if side == BUY else executed
            still = self._remaining_lock(side, price, qty, executed) if rests else ZERO
            store.move(account, lock_asset, free=lock - used - still, locked=-(lock - still))
            store.update_order(oid, executed, cum, status, now)
            store.commit()
        except BaseException:
            store.rollback()
            raise
        finally:
            self._open = None
        order = store.order(account, r.symbol, order_id=oid)
        assert order is not None
        return order, fills

    def _more_quote(self, side: str, left: Decimal) -> bool:
        """Could ``left`` quote still trade one more step at the best price? (a quoteOrderQty market order)"""
        best = next(self.market.levels("asks" if side == BUY else "bids"), None)
        return best is not None and left >= best[0] * self.rules.step_size

    def _lock_needed(self, side: str, otype: str, qty: Decimal | None, quote_qty: Decimal | None,
                     price: Decimal | None) -> tuple[str, Decimal]:
        r = self.rules
        if side == SELL:
            if qty is not None:
                return r.base, qty
            # a sell for a quote amount: the base it needs at the current bids
            need, left = ZERO, quote_qty or ZERO
            for p, q in self.market.levels("bids"):
                take = min(q, (left / p).quantize(r.step_size, ROUND_DOWN))
                need += take
                left -= take * p
                if take < q:
                    break
            return r.base, need
        if otype == "LIMIT":
            assert qty is not None and price is not None
            return r.quote, qty * price
        if quote_qty is not None:
            return r.quote, quote_qty
        cost, left = ZERO, qty or ZERO
        for p, q in self.market.levels("asks"):
            take = min(q, left)
            cost += take * p
            left -= take
            if left == 0:
                break
        return r.quote, cost

    @staticmethod
    def _remaining_lock(side: str, price: Decimal | None, qty: Decimal | None, executed: Decimal) -> Decimal:
        left = (qty or ZERO) - executed
        return left * (price or ZERO) if side == BUY else left

    def _crossing(self, side: str, limit: Decimal | None) -> list[tuple[Decimal, Decimal]]:
        book_side = "asks" if side == BUY else "bids"
        out = []
        for p, q in self.market.levels(book_side):
            if limit is not None and (p > limit if side == BUY else p < limit):
                break
            out.append((p, q))
        return out

    def _take(self, account: str, oid: int, side: str, limit: Decimal | None, qty: Decimal | None,
              quote_qty: Decimal | None, now: int) -> list[dict[str, Any]]:
        """Taker fills of a new order against the book, level by level."""
        book_side = "asks" if side == BUY else "bids"
        fills: list[dict[str, Any]] = []
        left_qty = qty
        left_quote = quote_qty
        for p, avail in self.market.levels(book_side):
            if limit is not None and (p > limit if side == BUY else p < limit):
                break
            if left_qty is not None:
                take = min(avail, left_qty)
            else:
                assert left_quote is not None
                take = min(avail, (left_quote / p).quantize(self.rules.step_size, ROUND_DOWN))
            if take <= 0:
                break
            fills.append((p, take))
            if left_qty is not None:
                left_qty -= take
                if left_qty == 0:
                    break
            else:
                assert left_quote is not None
                left_quote -= take * p
        out = []
        for p, take in fills:
            self.market.take(book_side, p, take)
            out.append(self._book_fill(account, oid, side, p, take, now, maker=False))
        return out

    def _book_fill(self, account: str, oid: int, side: str, price: Decimal, qty: Decimal, now: int,
                   maker: bool) -> dict[str, Any]:
        """One trade: the received asset net of commission credited (the paid side is settled by the caller
        from the order's lock)."""
        r = self.rules
        taker_fee, maker_fee = self.fees[account]
        rate = maker_fee if maker else taker_fee
        quote = qty * price
        if side == BUY:
            commission = (qty * rate).quantize(EIGHT, ROUND_HALF_EVEN)
            asset = r.base
            self.store.move(account, r.base, free=qty - commission)
        else:
            commission = (quote * rate).quantize(EIGHT, ROUND_HALF_EVEN)
            asset = r.quote
            self.store.move(account, r.quote, free=quote - commission)
        fill = {"order_id": oid, "account": account, "symbol": r.symbol, "price": price, "qty": qty,
                "quote_qty": quote, "commission": commission, "commission_asset": asset, "time": now,
                "is_buyer": int(side == BUY), "is_maker": int(maker)}
        fill["trade_id"] = self.store.insert_trade(fill)
        return fill

    # -- resting orders --------------------------------------------------------------------
    def fill_resting(self, now: int) -> int:
        """Bring the book up to the paced clock (filling resting orders at every line it passes),
        then fill what the book crosses now; returns the number of fills."""
        self.market.catch_up()
        return self._fill_crossed(now)

    def _moved(self) -> None:
        if self._open is None:
            self._open = self.store.open_orders(symbol=self.rules.symbol)
        if self._open:
            self._fill_crossed(self.clock())

    def _fill_crossed(self, now: int) -> int:
        """Fill open GTC orders that the book crosses, as makers at their own price."""
        if self._open is None:
            self._open = self.store.open_orders(symbol=self.rules.symbol)
        n = 0
        for o in self._open:
            book_side = "asks" if o.side == BUY else "bids"
            crossing = self._crossing(o.side, o.price)
            if not crossing:
                continue
            self.store.begin()
            try:
                executed, cum = o.executed_qty, o.cum_quote
                for p, avail in crossing:
                    take = min(avail, o.orig_qty - executed)
                    if take <= 0:
                        break
                    self.market.take(book_side, p, take)
                    self._book_fill(o.account, o.order_id, o.side, o.price, take, now, maker=True)
                    executed += take
                    cum += take * o.price
                    n += 1
                    if o.side == BUY:
                        self.store.move(o.account, self.rules.quote, locked=-(take * o.price))
                    else:
                        self.store.move(o.account, self.rules.base, locked=-take)
                status = "FILLED" if executed == o.orig_qty else "PARTIALLY_FILLED"
                self.store.update_order(o.order_id, executed, cum, status, now)
                self.store.commit()
            except BaseException:
                self.store.rollback()
                raise
        if n:
            self._open = None
        return n

    # -- cancelling ------------------------------------------------------------------------
    def cancel(self, account: str, order: Order, now: int) -> Order:
        if not order.is_open:
            raise VenueError(-2011, "Unknown order sent.")
        r = self.rules
        still = self._remaining_lock(order.side, order.price, order.orig_qty, order.executed_qty)
        asset = r.quote if order.side == BUY else r.base
        self.store.begin()
        try:
            self.store.move(account, asset, free=still, locked=-still)
            self.store.update_order(order.order_id, order.executed_qty, order.cum_quote, "CANCELED", now)
            self.store.commit()
        except BaseException:
            self.store.rollback()
            raise
        finally:
            self._open = None
        done = self.store.order(account, r.symbol, order_id=order.order_id)
        assert done is not None
        return done
