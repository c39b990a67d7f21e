"""Cross-venue detector: buy on one book, sell the same asset on another, net of taker fees.

On every change of a valid book it checks the changed book against every other valid book
of its groups, both directions. The check is O(1) on the best prices (fees folded into
precomputed multipliers); only when the top of book crosses by more than the threshold does
it walk both books level by level, in base units, to size the trade within the limits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cryptoarb.core.book import OrderBook
from cryptoarb.core.instruments import Instrument, Kind
from cryptoarb.core.opportunity import BUY, SELL, Opportunity, OrderIntent
from cryptoarb.detect.groups import Group


@dataclass(frozen=True)
class Limits:
    """What one opportunity may be: thresholds and the size caps applied while walking."""

    min_profit_bps: float = 1.0  # net of fees, on the whole size (also the marginal threshold)
    min_profit_quote: float = 0.0
    max_notional_quote: float = 10_000.0  # per opportunity, buy leg cost
    max_quote_age_ns: int = 5_000_000_000  # ignore a peer book not updated for this long


# (venue, currency) -> float amount available for sizing; maintained by the executor
Available = dict[tuple[str, str], float]


class _Leg:
    """Precomputed per-book numbers, so the hot check touches no Instrument attributes."""

    __slots__ = ("book", "buy_mult", "cs", "inst", "inverse", "sell_mult", "spot")

    def __init__(self, book: OrderBook) -> None:
        inst = book.instrument
        self.book = book
        self.inst = inst
        self.buy_mult = 1.0 + inst.fees.taker
        self.sell_mult = 1.0 - inst.fees.taker
        self.inverse = inst.kind is Kind.INVERSE
        self.spot = inst.kind is Kind.SPOT
        self.cs = inst.contract_size


class _Pair:
    __slots__ = ("group", "label", "other")

    def __init__(self, other: _Leg, group: Group) -> None:
        self.other = other
        self.group = group.name
        self.label = group.label


def _levels(leg: _Leg, side: str) -> list[tuple[float, float, float]]:
    """(price, base qty, native qty) best first, lazily long enough for a walk."""
    it = leg.book.asks() if side == "asks" else leg.book.bids()
    out = []
    cs = leg.cs
    for p, q in it:
        out.append((p, q * cs / p if leg.inverse else q * cs, q))
        if len(out) >= 400:
            break
    return out


class CrossVenueDetector:
    """Detects opportunities among the books of configured groups."""

    def __init__(
        self,
        groups: list[Group],
        limits: Limits,
        available: Available | None = None,
        next_id: Callable[[], int] | None = None,
    ) -> None:
        self.groups = groups
        self.limits = limits
        self.available: Available = available if available is not None else {}
        self._legs: dict[str, _Leg] = {}
        self._pairs: dict[str, list[_Pair]] = {}
        self._member_of: dict[str, list[Group]] = {}
        for g in groups:
            for key in g.members:
                self._member_of.setdefault(key, []).append(g)
        self._thr = 1.0 + limits.min_profit_bps / 1e4
        self._count = 0
        self._next_id = next_id or self._default_id
        self.evaluations = 0
        self.walks = 0

    def _default_id(self) -> int:
        self._count += 1
        return self._count

    def add_book(self, book: OrderBook) -> None:
        """Register a book; it is compared only with books sharing one of its groups, once per peer."""
        key = book.key
        if key in self._legs or key not in self._member_of:
            return
        leg = self._legs[key] = _Leg(book)
        self._pairs[key] = []
        for g in self._member_of[key]:
            for other_key in g.members:
                other = self._legs.get(other_key)
                # two books in several groups (spot markets sit in their spot group and in the
                # basis group) are one pair: the first group listing them names it
                if other is None or other_key == key or any(p.other is other for p in self._pairs[key]):
                    continue
                self._pairs[key].append(_Pair(other, g))
                self._pairs[other_key].append(_Pair(leg, g))

    def watches(self, key: str) -> bool:
        return key in self._member_of

    # -- hot path --------------------------------------------------------------------
    def on_book(self, book: OrderBook, now_ns: int) -> list[Opportunity] | None:
        """Evaluate a changed (valid) book against its peers. None when nothing fires."""
        pairs = self._pairs.get(book.key)
        if not pairs:
            return None
        leg = self._legs[book.key]
        thr = self._thr
        oldest = now_ns - self.limits.max_quote_age_ns
        found: list[Opportunity] | None = None
        for pair in pairs:
            other = pair.other
            ob = other.book
            if not ob.valid or ob.local_ns < oldest:
                continue
            self.evaluations += 1
            # buy here, sell there
            if ob.bid * other.sell_mult > book.ask * leg.buy_mult * thr and book.ask:
                opp = self._size(leg, other, pair, now_ns)
                if opp is not None:
                    found = [opp] if found is None else [*found, opp]
            # buy there, sell here
            if book.bid * leg.sell_mult > ob.ask * other.buy_mult * thr and ob.ask:
                opp = self._size(other, leg, pair, now_ns)
                if opp is not None:
                    found = [opp] if found is None else [*found, opp]
        return found

    def _cap_base(self, buy: _Leg, sell: _Leg) -> tuple[float, float]:
        """Caps from balances: (quote the buy leg may spend, base the sell leg may deliver)."""
        inf = float("inf")
        spend = self.limits.max_notional_quote
        if buy.spot:
            spend = min(spend, self.available.get((buy.inst.venue, buy.inst.quote), 0.0))
        deliver = inf
        if sell.spot:
            deliver = self.available.get((sell.inst.venue, sell.inst.base), 0.0)
        return spend, deliver

    def _size(self, buy: _Leg, sell: _Leg, pair: _Pair, now_ns: int) -> Opportunity | None:
        """Walk both books best-first while the marginal unit still clears the threshold."""
        self.walks += 1
        spend, deliver = self._cap_base(buy, sell)
        if spend <= 0.0 or deliver <= 0.0:
            return None
        asks = _levels(buy, "asks")
        bids = _levels(sell, "bids")
        bm, sm, thr = buy.buy_mult, sell.sell_mult, self._thr
        i = j = 0
        a_left = asks[0][1] if asks else 0.0
        b_left = bids[0][1] if bids else 0.0
        qty = cost = 0.0
        while i < len(asks) and j < len(bids):
            ap = asks[i][0]
            bp = bids[j][0]
            if bp * sm <= ap * bm * thr:
                break
            take = min(a_left, b_left, deliver - qty, (spend - cost) / (ap * bm))
            if take <= 0.0:
                break
            qty += take
            cost += take * ap * bm
            a_left -= take
            b_left -= take
            if a_left <= 1e-15:
                i += 1
                a_left = asks[i][1] if i < len(asks) else 0.0
            if b_left <= 1e-15:
                j += 1
                b_left = bids[j][1] if j < len(bids) else 0.0
        if qty <= 0.0:
            return None
        return self._finish(buy, sell, pair, qty, asks, bids, now_ns)

    def _finish(
        self,
        buy: _Leg,
        sell: _Leg,
        pair: _Pair,
        qty: float,
        asks: list[tuple[float, float, float]],
        bids: list[tuple[float, float, float]],
        now_ns: int,
    ) -> Opportunity | None:
        """Round to lots, price both legs exactly for the rounded size, apply min notional."""
        bq_native, b_notional, b_base, b_worst = _fill(buy.inst, asks, qty)
        sq_native, s_notional, s_base, s_worst = _fill(sell.inst, bids, min(qty, b_base))
        if bq_native <= 0.0 or sq_native <= 0.0:
            return None
        # the buy leg must not outsize the sell leg after the sell's own rounding
        if b_base > s_base * 1.0000001 and not buy.inverse:
            bq_native, b_notional, b_base, b_worst = _fill(buy.inst, asks, s_base)
            if bq_native <= 0.0:
                return None
        lim = self.limits
        if b_notional < buy.inst.min_notional or s_notional < sell.inst.min_notional:
            return None
        base = min(b_base, s_base)
        buy_fee = b_notional * buy.inst.fees.taker
        sell_fee = s_notional * sell.inst.fees.taker
        cost = b_notional + buy_fee
        # PnL on the matched base quantity, at each leg's VWAP
        b_vwap = b_notional / b_base
        s_vwap = s_notional / s_base
        profit = base * (s_vwap - b_vwap) - buy_fee - sell_fee
        if profit <= 0.0 or profit < lim.min_profit_quote or profit / cost * 1e4 < lim.min_profit_bps:
            return None
        bi, si = buy.inst, sell.inst
        return Opportunity(
            self._next_id(),
            pair.group,
            pair.label,
            OrderIntent(bi.venue, bi.symbol, BUY, bq_native, b_worst, b_vwap),
            OrderIntent(si.venue, si.symbol, SELL, sq_native, s_worst, s_vwap),
            base,
            b_vwap,
            s_vwap,
            cost,
            buy_fee + sell_fee,
            profit,
            max(buy.book.exchange_ns, sell.book.exchange_ns),
            now_ns,
        )


def _fill(inst: Instrument, levels: list[tuple[float, float, float]], base_qty: float) -> tuple[
    float, float, float, float
]:
    """Take ``base_qty`` (rounded down to whole lots) from ``levels``.

    Returns (native qty, quote notional, base qty, worst price).
    """
    inverse = inst.kind is Kind.INVERSE
    cs = inst.contract_size
    if inverse:
        # contracts are priced per level: convert level by level while walking
        want = base_qty
        native = notional = got = worst = 0.0
        lot = inst.lot_size
        for p, _base, q in levels:
            take_n = min(q, (want - got) * p / cs)
            take_n = int(take_n / lot + 1e-9) * lot
            if take_n <= 0.0:
                break
            native += take_n
            notional += take_n * cs
            got += take_n * cs / p
            worst = p
            if got >= want * 0.999999:
                break
        return native, notional, got, worst
    target = inst.round_qty(base_qty / cs)
    native = notional = worst = 0.0
    for p, _base, q in levels:
        take = q if q < target - native else target - native
        native += take
        notional += take * cs * p
        worst = p
        if native >= target - 1e-12:
            break
    native = round(native, 12)
    return native, notional, native * cs, worst
