"""Cross-venue detector: buy on one book, sell the same asset on another, net of taker fees.

On every change of a valid book it checks the changed book against every other valid book
of its groups, both directions. The check is O(1) on the best prices (fees folded into
precomputed multipliers); only when the top of book crosses by more than the threshold does
it walk both books, lazily and best first, to size the trade (see :mod:`.sizing`).

Books are read through our own footprint (:mod:`cryptoarb.core.footprint`): liquidity our
orders in flight will take, or our fills took before the venue's next update, is not there
for the next opportunity. Balances are read net of what trades in flight reserved, and every
opportunity found in one message is sized after the previous one took its share.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import replace
from decimal import Decimal

from cryptoarb.core.accounting import spot_need
from cryptoarb.core.book import OrderBook
from cryptoarb.core.footprint import Footprints
from cryptoarb.core.instruments import Instrument, Kind, common_step, dec
from cryptoarb.core.opportunity import BUY, SELL, Opportunity, OrderIntent
from cryptoarb.detect.groups import Group
from cryptoarb.detect.sizing import Leg, Limits, Plan, plan_trade

__all__ = ["Available", "AvailableExact", "CrossVenueDetector", "Limits", "reservations"]


# (venue, currency) -> float amount available for sizing; maintained by the engine
Available = dict[tuple[str, str], float]
# the same, exact: the balance checks a venue applies are decided on these
AvailableExact = dict[tuple[str, str], Decimal]


class _Pair:
    __slots__ = ("group", "label", "other", "step")

    def __init__(self, leg: Leg, other: Leg, group: Group) -> None:
        self.other = other
        self.group = group.name
        self.label = group.label
        # both legs of a linear/spot trade trade the same base quantity: a multiple of both lots
        self.step: Decimal | None = None
        if not leg.inverse and not other.inverse:
            self.step = common_step(leg.inst.base_step(), other.inst.base_step())


class CrossVenueDetector:
    """Detects opportunities among the books of configured groups."""

    def __init__(
        self,
        groups: list[Group],
        limits: Limits,
        available: Available | None = None,
        next_id: Callable[[], int] | None = None,
        footprints: Footprints | None = None,
        available_exact: AvailableExact | None = None,
    ) -> None:
        self.groups = groups
        self.limits = limits
        self.available: Available = available if available is not None else {}
        self.available_exact = available_exact
        self.footprints = footprints if footprints is not None else Footprints()
        self._legs: dict[str, Leg] = {}
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
        # model scores (docs/ml.md): group -> survival probability, written off the hot path
        self.scores: dict[str, float] | None = None
        self._score_filter = True
        self._min_survival = 0.0
        self.model_skipped = 0

    def use_scores(self, scores: dict[str, float], mode: str, min_survival: float) -> None:
        """Read ``scores[group]`` before sizing: "filter" skips a group whose survival score
        is below ``min_survival``; "size" scales the notional cap by the score. A group with no
        (fresh) score is sized as without a model."""
        if mode not in ("filter", "size"):
            raise ValueError(f"model use must be 'filter' or 'size', not {mode!r}")
        self.scores = scores
        self._score_filter = mode == "filter"
        self._min_survival = min_survival

    def _default_id(self) -> int:
        self._count += 1
        return self._count

    def add_book(self, book: OrderBook) -> None:
        """Register a book; it is compared only with books sharing one of its groups, once per peer."""
        key = book.key
        if key in self._legs or key not in self._member_of:
            return
        leg = self._legs[key] = Leg(book, self.footprints[key])
        self._pairs[key] = []
        seen: set[str] = set()
        for g in self._member_of[key]:
            for other_key in g.members:
                other = self._legs.get(other_key)
                # a pair sitting in two groups (spot and basis) is still one pair
                if other is None or other_key == key or other_key in seen:
                    continue
                seen.add(other_key)
                self._pairs[key].append(_Pair(leg, other, g))
                self._pairs[other_key].append(_Pair(other, leg, g))

    def watches(self, key: str) -> bool:
        return key in self._member_of

    # -- hot path --------------------------------------------------------------------
    def on_book(self, book: OrderBook, now_ns: int, skip: Container[str] | None = None) -> list[Opportunity] | None:
        """Evaluate a changed (valid) book against its peers. None when nothing fires.

        ``skip``: peers (book keys) whose pair with this book was already evaluated on the same
        states (a burst handled as a batch, ``engine/batch.py``: each pair once)."""
        pairs = self._pairs.get(book.key)
        if not pairs:
            return None
        if skip:
            pairs = [p for p in pairs if p.other.book.key not in skip]
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

    def _size(self, buy: Leg, sell: Leg, pair: _Pair, now_ns: int) -> Opportunity | None:
        self.walks += 1
        bi, si = buy.inst, sell.inst
        exact = self.available_exact
        av = self.available
        spend = have_quote = None
        if buy.spot:
            k = (bi.venue, bi.quote)
            spend = av.get(k, 0.0)
            have_quote = exact[k] if exact is not None and k in exact else dec(spend)
        deliver = have_base = None
        if sell.spot:
            k = (si.venue, si.base)
            deliver = av.get(k, 0.0)
            have_base = exact[k] if exact is not None and k in exact else dec(deliver)
        limits = self.limits
        scores = self.scores
        if scores:
            p = scores.get(pair.group)
            if p is not None:
                if self._score_filter:
                    if p < self._min_survival:
                        self.model_skipped += 1
                        return None
                elif p < 1.0:
                    if p <= 0.0:
                        self.model_skipped += 1
                        return None
                    limits = replace(limits, max_notional_quote=limits.max_notional_quote * p)
        plan = plan_trade(buy, sell, pair.step, limits, spend, have_quote, deliver, have_base)
        if plan is None:
            return None
        opp = Opportunity(
            self._next_id(),
            pair.group,
            pair.label,
            OrderIntent(bi.venue, bi.symbol, BUY, plan.buy_qty, plan.buy_limit, plan.buy_vwap),
            OrderIntent(si.venue, si.symbol, SELL, plan.sell_qty, plan.sell_limit, plan.sell_vwap),
            plan.base,
            plan.buy_vwap,
            plan.sell_vwap,
            plan.cost,
            plan.fees,
            plan.profit,
            max(buy.book.exchange_ns, sell.book.exchange_ns),
            now_ns,
        )
        self._commit(opp, plan, bi, si)
        return opp

    def _commit(self, opp: Opportunity, plan: Plan, bi: Instrument, si: Instrument) -> None:
        """What this opportunity takes is not there for the next one (until it is released)."""
        fps = self.footprints
        fps[opp.buy_key].hold(f"{opp.id}b", "asks", plan.buy_levels)
        fps[opp.sell_key].hold(f"{opp.id}s", "bids", plan.sell_levels)
        for key, amount in reservations(opp, bi, si):
            self.available[key] = self.available.get(key, 0.0) - float(amount)
            if self.available_exact is not None and key in self.available_exact:
                self.available_exact[key] -= amount

    def release(self, opp: Opportunity) -> None:
        """An opportunity that will not be traded gives back the liquidity it held."""
        self.footprints[opp.buy_key].release(f"{opp.id}b")
        self.footprints[opp.sell_key].release(f"{opp.id}s")


def reservations(opp: Opportunity, bi: Instrument, si: Instrument) -> list[tuple[tuple[str, str], Decimal]]:
    """Balances a trade's orders lock at their venues, by the rule the venue checks."""
    out: list[tuple[tuple[str, str], Decimal]] = []
    for inst, intent in ((bi, opp.buy), (si, opp.sell)):
        if inst.kind is Kind.SPOT:
            ccy, need = spot_need(inst, intent.side, dec(intent.qty), dec(intent.limit_price), dec(inst.fees.taker))
            out.append(((inst.venue, ccy), need))
    return out
