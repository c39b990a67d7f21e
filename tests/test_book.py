"""OrderBook: hand-checked cases, and random update sequences against a plain dict model.

The book keeps every level in a dict plus a sorted *head* of the best levels above a floor,
refilled from the dict when deletions drain it. The random sequences are built to stress
exactly that: books deeper than the head, mass deletions through the head, inserts far below
the floor, re-inserts of deleted prices, snapshots and clears in the middle.

``hypothesis`` is not installed here, so the sequences come from ``random.Random`` with fixed
seeds (deterministic, and the failing seed/step is in the message).
"""

from __future__ import annotations

import random

import pytest

from cryptoarb.core.book import EMPTY, HEAD_MAX, HEAD_MIN, INVALID, SYNCING, VALID, BadBook, OrderBook
from cryptoarb.core.instruments import Instrument, Kind
from tests.helpers import spot

INST = spot("test")


def new_book(bids=(), asks=(), state: int = VALID) -> OrderBook:
    b = OrderBook(INST)
    b.load_snapshot(list(bids), list(asks))
    b.set_state(state)
    return b


# -- hand-checked cases --------------------------------------------------------------------
def test_empty_book() -> None:
    b = OrderBook(INST)
    assert b.state == EMPTY and not b.valid and not b.crossed
    assert (b.bid, b.bid_qty, b.ask, b.ask_qty) == (0.0, 0.0, 0.0, 0.0)
    assert list(b.bids()) == [] and list(b.asks()) == []
    assert b.top(5) == ([], [])
    assert b.depth() == (0, 0)
    assert b.mid() == 0.0
    assert b.walk("asks", 1.0) == (0.0, 0.0, 0.0)
    assert b.vwap("bids", 1.0) == 0.0
    assert b.key == INST.key


def test_best_prices_after_snapshot_apply_delete() -> None:
    b = new_book([(100.0, 1.0), (99.5, 2.0), (101.0, 0.0)], [(102.0, 3.0), (101.5, 0.5), (103.0, 0.0)])
    # zero quantities in a snapshot are not levels
    assert list(b.bids()) == [(100.0, 1.0), (99.5, 2.0)]
    assert list(b.asks()) == [(101.5, 0.5), (102.0, 3.0)]
    assert (b.bid, b.bid_qty, b.ask, b.ask_qty) == (100.0, 1.0, 101.5, 0.5)
    assert b.mid() == pytest.approx(100.75)
    assert b.valid and not b.crossed

    b.apply([(100.5, 4.0)], [(101.2, 1.0)])  # new best on both sides
    assert (b.bid, b.bid_qty, b.ask, b.ask_qty) == (100.5, 4.0, 101.2, 1.0)
    b.apply([(100.5, 7.0)], [])  # quantity update of the best
    assert (b.bid, b.bid_qty) == (100.5, 7.0)
    b.apply([(100.5, 0.0)], [(101.2, 0.0)])  # delete the best
    assert (b.bid, b.bid_qty, b.ask, b.ask_qty) == (100.0, 1.0, 101.5, 0.5)
    b.apply([(42.0, 0.0)], [(999.0, 0.0)])  # deleting an absent level is a no-op
    assert b.depth() == (2, 2)
    b.apply([(100.0, 0.0), (99.5, 0.0)], [])  # a side emptied
    assert (b.bid, b.bid_qty) == (0.0, 0.0) and list(b.bids()) == []
    assert b.valid and not b.crossed and b.mid() == 0.0
    b.apply([(99.0, 1.0), (99.0, 0.0), (98.0, 0.0), (98.0, 2.0)], [])  # same price twice in one update
    assert list(b.bids()) == [(98.0, 2.0)]


def test_top_and_levels_are_best_first() -> None:
    bids = [(100.0 - i, 1.0 + i) for i in range(10)]
    asks = [(101.0 + i, 2.0 + i) for i in range(10)]
    b = new_book(reversed(bids), asks[::-1])
    top_b, top_a = b.top(3)
    assert top_b == [[100.0, 1.0], [99.0, 2.0], [98.0, 3.0]]
    assert top_a == [[101.0, 2.0], [102.0, 3.0], [103.0, 4.0]]
    assert b.top(0) == ([], [])
    assert b.top(50) == ([list(x) for x in bids], [list(x) for x in asks])
    assert b.snapshot_levels() == (bids, asks)


def test_walk_and_vwap_by_hand() -> None:
    b = new_book([(99.0, 1.0), (98.0, 2.0), (97.0, 4.0)], [(100.0, 1.0), (101.0, 2.0), (102.0, 5.0)])
    assert b.walk("asks", 2.5) == (2.5, 100.0 + 1.5 * 101.0, 101.0)
    assert b.vwap("asks", 2.5) == pytest.approx((100.0 + 1.5 * 101.0) / 2.5)
    assert b.walk("asks", 1.0) == (1.0, 100.0, 100.0)  # exactly the first level
    assert b.walk("asks", 3.0) == (3.0, 302.0, 101.0)  # exactly two levels
    assert b.walk("asks", 100.0) == (8.0, 100.0 + 202.0 + 510.0, 102.0)  # more than the book
    assert b.walk("bids", 4.0) == (4.0, 99.0 + 196.0 + 97.0, 97.0)
    assert b.vwap("bids", 4.0) == pytest.approx(392.0 / 4.0)


def test_walk_stops_at_the_level_that_completes_the_quantity() -> None:
    b = new_book([(99.0, 1.0)], [(100.0, 4.14314743), (101.0, 100.0), (102.0, 5.0)])
    filled, notional, worst = b.walk("asks", 13.2718)
    assert worst == 101.0  # 101.0 alone has 100 available: 102.0 is never needed
    assert filled == pytest.approx(13.2718)
    assert notional == pytest.approx(100.0 * 4.14314743 + 101.0 * (13.2718 - 4.14314743))


def test_crossed_book_raises_and_is_not_valid() -> None:
    b = new_book([(100.0, 1.0)], [(101.0, 1.0)])
    assert b.valid and not b.crossed
    with pytest.raises(BadBook, match="crossed"):
        b.apply([(101.0, 2.0)], [])  # locked: bid == ask counts as crossed
    assert b.crossed and not b.valid and b.state == VALID
    b.set_state(VALID)  # a state change does not override the crossed flag
    assert not b.valid
    b.apply([(101.0, 0.0)], [])
    assert not b.crossed and b.valid
    with pytest.raises(BadBook, match="crossed"):
        b.apply([], [(99.0, 1.0)])  # crossed from the ask side
    assert b.crossed and not b.valid
    b.set_state(INVALID)
    b.apply([], [(99.0, 0.0)])
    assert not b.crossed and not b.valid  # not crossed, but not VALID either
    b.set_state(VALID)
    assert b.valid
    # a one-sided book is never crossed
    b.apply([(100.0, 0.0)], [])
    assert (b.bid, b.crossed, b.valid) == (0.0, False, True)


def test_crossed_snapshot() -> None:
    b = OrderBook(INST)
    with pytest.raises(BadBook, match="crossed snapshot"):
        b.load_snapshot([(102.0, 1.0)], [(101.0, 1.0)])
    assert b.crossed and not b.valid
    b.set_state(VALID)
    assert not b.valid


NAN, INF = float("nan"), float("inf")
IMPOSSIBLE = [(NAN, 1.0), (INF, 1.0), (-INF, 1.0), (-1.0, 1.0), (0.0, 1.0), (1e308, 1.0),
              (100.5, NAN), (100.5, INF), (100.5, -1.0), (100.5, 1e300)]


@pytest.mark.parametrize("level", IMPOSSIBLE, ids=repr)
@pytest.mark.parametrize("side", ["bids", "asks"])
def test_impossible_levels_raise(level: tuple[float, float], side: str) -> None:
    p, q = level
    if side == "asks" and p == p and 0 < p < 1e15:
        p += 1.0  # above the best bid: only the value is wrong, not the side
    lv = [(p, q)]
    b = new_book([(100.0, 1.0)], [(101.0, 1.0)])
    with pytest.raises(BadBook, match="impossible"):
        b.apply(lv if side == "bids" else [], lv if side == "asks" else [])
    s = OrderBook(INST)
    with pytest.raises(BadBook, match="impossible"):
        s.load_snapshot(lv if side == "bids" else [(100.0, 1.0)], lv if side == "asks" else [(101.0, 1.0)])


def test_negative_ask_is_crossed_even_below_zero() -> None:
    """The crossed flag does not assume asks are positive (an ask at -1 under a bid at 100)."""
    b = new_book([(100.0, 1.0)], [(101.0, 1.0)])
    b._asks[-1.0] = 1.0  # what a decoder without validation used to let in
    b._akeys.append(1.0)
    b._refresh_top()
    assert b.ask == -1.0 and b.crossed and not b.valid


def test_zero_quantity_is_a_deletion_not_a_bad_value() -> None:
    b = new_book([(100.0, 1.0), (99.0, 2.0)], [(101.0, 1.0)])
    b.apply([(99.0, 0.0), (98.0, 0.0), (NAN, 0.0)], [(-5.0, 0.0)])  # deleting what is not there is fine
    assert list(b.bids()) == [(100.0, 1.0)] and b.valid
    b.load_snapshot([(100.0, 0.0), (99.0, 1.0)], [(101.0, 1.0)])  # zero levels in a snapshot are skipped
    assert list(b.bids()) == [(99.0, 1.0)]


def test_states() -> None:
    b = new_book([(100.0, 1.0)], [(101.0, 1.0)], state=SYNCING)
    assert not b.valid
    for state, valid in ((VALID, True), (INVALID, False), (SYNCING, False), (EMPTY, False), (VALID, True)):
        b.set_state(state)
        assert (b.state, b.valid) == (state, valid)


def test_clear() -> None:
    b = new_book([(400.0 - i, 1.0) for i in range(300)], [(401.0 + i, 1.0) for i in range(300)])
    with pytest.raises(BadBook):
        b.apply([(800.0, 1.0)], [])  # crossed too
    assert b.crossed
    b.clear()
    assert list(b.bids()) == [] and list(b.asks()) == []
    assert b.depth() == (0, 0) and b.top(5) == ([], [])
    assert (b.bid, b.bid_qty, b.ask, b.ask_qty) == (0.0, 0.0, 0.0, 0.0)
    assert not b.crossed
    # the head starts afresh: a small book after a deep one
    b.apply([(10.0, 1.0), (9.0, 2.0)], [(11.0, 1.0)])
    assert list(b.bids()) == [(10.0, 1.0), (9.0, 2.0)] and list(b.asks()) == [(11.0, 1.0)]
    assert (b.bid, b.ask) == (10.0, 11.0)


def test_valid_after_reloading_a_crossed_book() -> None:
    b = new_book([(100.0, 1.0)], [(101.0, 1.0)])
    with pytest.raises(BadBook):
        b.apply([(102.0, 1.0)], [])
    assert b.crossed and not b.valid
    b.load_snapshot([(100.0, 1.0)], [(101.0, 1.0)])
    assert not b.crossed and b.state == VALID
    assert b.valid == (b.state == VALID and not b.crossed)


def test_head_refill_after_mass_deletion_by_hand() -> None:
    n = 3 * HEAD_MAX
    b = new_book([(1000.0 - i, 1.0 + i) for i in range(n)], [(1001.0 + i, 1.0 + i) for i in range(n)])
    # delete everything but the deepest level, best first, in one update
    b.apply([(1000.0 - i, 0.0) for i in range(n - 1)], [(1001.0 + i, 0.0) for i in range(n - 1)])
    assert list(b.bids()) == [(1000.0 - (n - 1), float(n))]
    assert list(b.asks()) == [(1001.0 + (n - 1), float(n))]
    assert (b.bid, b.ask) == (1000.0 - (n - 1), 1001.0 + (n - 1))
    # deep insert while the head was full, then drain the head level by level
    b = new_book([(1000.0 - i, 1.0) for i in range(n)], [])
    b.apply([(1.0, 5.0)], [])  # far below the floor
    for i in range(n):
        b.apply([(1000.0 - i, 0.0)], [])
        assert b.bid == (1000.0 - i - 1 if i < n - 1 else 1.0)
    assert list(b.bids()) == [(1.0, 5.0)]
    # re-insert above the old head: new best
    b.apply([(1000.0, 9.0)], [])
    assert list(b.bids()) == [(1000.0, 9.0), (1.0, 5.0)]


# -- random sequences against a dict model --------------------------------------------------
class Model:
    """The obvious book: two dicts, sorted on every read."""

    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}

    def load(self, bids, asks) -> None:  # type: ignore[no-untyped-def]
        self.bids = {p: q for p, q in bids if q > 0}
        self.asks = {p: q for p, q in asks if q > 0}

    def apply(self, bids, asks) -> None:  # type: ignore[no-untyped-def]
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for p, q in levels:
                if q == 0:
                    side.pop(p, None)
                else:
                    side[p] = q

    def sorted_bids(self) -> list[tuple[float, float]]:
        return sorted(self.bids.items(), reverse=True)

    def sorted_asks(self) -> list[tuple[float, float]]:
        return sorted(self.asks.items())


def model_walk(levels: list[tuple[float, float]], qty: float) -> tuple[float, float, float]:
    """(filled, notional, price of the level that completes the fill); the quantities here are
    multiples of 1/8, so ``filled`` is exact and the stop test needs no tolerance."""
    filled = notional = 0.0
    worst = 0.0
    for p, q in levels:
        if filled >= qty:
            break
        take = min(q, qty - filled)
        filled += take
        notional += take * p
        worst = p
    return filled, notional, worst


# Bids live on cents 500.00..999.99, asks on 1000.01..1499.99 (never crossed here; crossing has
# its own tests). Quantities are multiples of 1/8, so every sum of them is exact in floats.
BID_LO, BID_HI = 50_000, 99_999
ASK_LO, ASK_HI = 100_001, 149_999


def _qty(rng: random.Random) -> float:
    return rng.randint(1, 80) / 8


def _random_side(rng: random.Random, lo: int, hi: int, n: int, zero_share: float = 0.0) -> list[tuple[float, float]]:
    return [(rng.randint(lo, hi) / 100, 0.0 if rng.random() < zero_share else _qty(rng)) for _ in range(n)]


class Gen:
    """Update batches for one side, aimed at the head/floor machinery."""

    def __init__(self, rng: random.Random, lo: int, hi: int, best_is_high: bool) -> None:
        self.rng = rng
        self.lo, self.hi = lo, hi
        self.best_is_high = best_is_high
        self.deleted: list[float] = []

    def best_first(self, side: dict[float, float]) -> list[float]:
        return sorted(side, reverse=self.best_is_high)

    def batch(self, side: dict[float, float], op: str) -> list[tuple[float, float]]:
        rng = self.rng
        out: list[tuple[float, float]] = []
        ranked = self.best_first(side)
        if op == "mass_delete" and ranked:
            m = len(ranked) if rng.random() < 0.15 else rng.randint(1, min(len(ranked), 2 * HEAD_MAX + 20))
            start = rng.choice([0, 0, 0, rng.randint(0, 10)])
            out = [(p, 0.0) for p in ranked[start:start + m]]
            rng.shuffle(out)
        elif op == "near_top":
            for _ in range(rng.randint(1, 30)):
                if ranked and rng.random() < 0.6:
                    p = rng.choice(ranked[:40])
                    out.append((p, 0.0 if rng.random() < 0.4 else _qty(rng)))
                else:  # a new price around the best
                    best = round(ranked[0] * 100) if ranked else (self.lo + self.hi) // 2
                    k = best + rng.randint(-300, 300)
                    out.append((min(max(k, self.lo), self.hi) / 100, _qty(rng)))
        elif op == "deep":  # far from the best: below the bid floor / above the ask floor
            edge = self.lo if self.best_is_high else self.hi
            for _ in range(rng.randint(1, 40)):
                k = edge + rng.randint(0, 2_000) * (1 if self.best_is_high else -1)
                out.append((k / 100, _qty(rng) if rng.random() < 0.85 else 0.0))
        elif op == "reinsert" and self.deleted:
            for _ in range(rng.randint(1, 40)):
                out.append((rng.choice(self.deleted), _qty(rng)))
        elif op == "dup":  # the same price several times in one batch
            p = rng.choice(ranked[:20]) if ranked and rng.random() < 0.5 else rng.randint(self.lo, self.hi) / 100
            for _ in range(rng.randint(2, 5)):
                out.append((p, 0.0 if rng.random() < 0.5 else _qty(rng)))
        else:
            out = _random_side(rng, self.lo, self.hi, rng.randint(0, 60), zero_share=0.3)
        self.deleted.extend(p for p, q in out if q == 0.0 and p in side)
        del self.deleted[:-500]
        return out


OPS = ["mass_delete", "near_top", "near_top", "deep", "reinsert", "dup", "random"]


def check_same(book: OrderBook, model: Model, where: str, rng: random.Random, walks: bool = True) -> None:
    want_b = model.sorted_bids()
    want_a = model.sorted_asks()
    assert list(book.bids()) == want_b, where
    assert list(book.asks()) == want_a, where
    assert book.depth() == (len(want_b), len(want_a)), where
    assert book.top(5) == ([list(x) for x in want_b[:5]], [list(x) for x in want_a[:5]]), where
    assert (book.bid, book.bid_qty) == (want_b[0] if want_b else (0.0, 0.0)), where
    assert (book.ask, book.ask_qty) == (want_a[0] if want_a else (0.0, 0.0)), where
    assert not book.crossed and book.valid == (book.state == VALID), where
    # the head's own promise: every level at or above the floor is in it, best last
    for head, floor, keys in ((book._bkeys, book._bfloor, list(model.bids)),
                              (book._akeys, book._afloor, [-p for p in model.asks])):
        assert head == sorted(head) and len(head) <= HEAD_MAX, where
        assert sorted(k for k in keys if k >= floor) == head, where
        assert len(head) >= HEAD_MIN or len(head) == len(keys), where
    if not walks:
        return
    for side, levels in (("asks", want_a), ("bids", want_b)):
        total = sum(q for _, q in levels)
        for qty in (rng.randint(1, 8) / 8, rng.randint(1, 800) / 8, total, total + 1.0):
            if qty <= 0:
                continue
            filled, notional, worst = book.walk(side, qty)
            m_filled, m_notional, m_worst = model_walk(levels, qty)
            assert (filled, worst) == (m_filled, m_worst), f"{where} walk {side} {qty}"
            assert notional == pytest.approx(m_notional, rel=1e-9), f"{where} walk {side} {qty}"
            want_vwap = m_notional / m_filled if m_filled else 0.0
            assert book.vwap(side, qty) == pytest.approx(want_vwap, rel=1e-9), where


def test_random_sequences_match_dict_model() -> None:
    coverage = {"deep_below_floor": 0, "head_overflow": 0, "refill_with_rest": 0, "drained_to_empty": 0}
    for seed in range(80):
        rng = random.Random(seed)
        book = OrderBook(INST)
        model = Model()
        bid_gen = Gen(rng, BID_LO, BID_HI, best_is_high=True)
        ask_gen = Gen(rng, ASK_LO, ASK_HI, best_is_high=False)
        size = rng.choice([0, 5, HEAD_MIN, HEAD_MAX - 3, HEAD_MAX + 1, 300, 700])
        snap = (_random_side(rng, BID_LO, BID_HI, size, 0.05), _random_side(rng, ASK_LO, ASK_HI, size, 0.05))
        book.load_snapshot(*snap)
        model.load(*snap)
        book.set_state(VALID)
        check_same(book, model, f"seed {seed} snapshot", rng)
        for step in range(150):
            where = f"seed {seed} step {step}"
            roll = rng.random()
            if roll < 0.03:
                size = rng.choice([0, 10, 200, 600])
                snap = (_random_side(rng, BID_LO, BID_HI, size, 0.05), _random_side(rng, ASK_LO, ASK_HI, size, 0.05))
                book.load_snapshot(*snap)
                model.load(*snap)
                where += " (snapshot)"
            elif roll < 0.045:
                book.clear()
                model.load([], [])
                where += " (clear)"
            else:
                ops = (rng.choice(OPS), rng.choice(OPS))
                bids = bid_gen.batch(model.bids, ops[0])
                asks = ask_gen.batch(model.asks, ops[1])
                where += f" {ops}"
                bfloor, afloor, refills = book._bfloor, book._afloor, book.refills
                coverage["deep_below_floor"] += sum(1 for p, q in bids if q and p < bfloor and p not in model.bids)
                coverage["deep_below_floor"] += sum(1 for p, q in asks if q and -p < afloor and p not in model.asks)
                had = (len(model.bids), len(model.asks))
                book.apply(bids, asks)
                model.apply(bids, asks)
                if book._bfloor > bfloor or book._afloor > afloor:
                    coverage["head_overflow"] += 1
                if book.refills > refills and max(len(model.bids), len(model.asks)) > HEAD_MAX:
                    coverage["refill_with_rest"] += 1
                if min(had) > HEAD_MAX and (not model.bids or not model.asks):
                    coverage["drained_to_empty"] += 1
            check_same(book, model, where, rng, walks=step % 4 == 0)
    # the sequences did reach the paths they are meant for
    assert all(n >= 5 for n in coverage.values()), coverage


@pytest.mark.parametrize("seed", range(5))
def test_random_crossing_flag(seed: int) -> None:
    """Overlapping random updates: ``crossed`` always says whether best bid >= best ask."""
    rng = random.Random(1000 + seed)
    book = new_book(_random_side(rng, 9_000, 10_000, 50), _random_side(rng, 10_001, 11_000, 50))
    model = Model()
    model.load(list(book.bids()), list(book.asks()))
    seen = set()
    for step in range(300):
        bids = _random_side(rng, 9_700, 10_050, rng.randint(0, 4), zero_share=0.5)
        asks = _random_side(rng, 9_950, 10_300, rng.randint(0, 4), zero_share=0.5)
        model.apply(bids, asks)
        bb = max(model.bids, default=0.0)
        ba = min(model.asks, default=0.0)
        crossed = bb >= ba > 0.0
        if crossed:
            with pytest.raises(BadBook, match="crossed"):
                book.apply(bids, asks)
        else:
            book.apply(bids, asks)
        assert (book.bid, book.ask, book.crossed) == (bb, ba, crossed), f"seed {seed} step {step}"
        assert book.valid == (not crossed), f"seed {seed} step {step}"
        seen.add(crossed)
    assert seen == {True, False}


def test_inverse_instrument_book_is_the_same_machinery() -> None:
    inst = Instrument("binancecoinm", "BTC/USD:BTC", "BTC", "USD", Kind.INVERSE, 0.1, 1.0, 0.0, 100.0,
                      exchange_symbol="BTCUSD_PERP")
    b = OrderBook(inst)
    b.load_snapshot([(61000.0, 10.0)], [(61000.1, 20.0)])
    assert b.key == "binancecoinm BTC/USD:BTC"
    assert b.walk("asks", 5.0) == (5.0, 5.0 * 61000.1, 61000.1)
