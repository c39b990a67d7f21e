"""Triangular arbitrage benchmark: the incremental cycle check per book update (µs) and
Bellman-Ford over a venue's whole graph (ms), at 100 and 1,000 markets on one venue.

    python bench/tri_bench.py                 # --runs 5 --updates 200000

Markets: Binance-shaped lists, generated (ccxt's offline ``binance.json`` in its test data is a
short excerpt of a few dozen markets, not the venue's list): the quote currencies and their
shares as Binance lists them (USDT for nearly every base; BTC, ETH, BNB, FDUSD, EUR, TRY for
fewer), bases sized by rank, plus the crosses between the quote currencies. Tops are consistent
(no cycle pays), so every update runs the check and none sizes: the hot path's usual case.

Per update: the changed market's two rates are rewritten and every 3-leg cycle through USDT
containing it is multiplied out. Updates hit markets uniformly at random (a hub like BTC/USDT
sits in hundreds of cycles; its own cost is reported too). Baseline in the same run: the
cross-venue detector's check of one book against 4 peers (the existing hot path).
Each figure is the median of ``--runs`` runs.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from cryptoarb.core.book import VALID, OrderBook
from cryptoarb.core.instruments import Fees, Instrument, Kind
from cryptoarb.detect.cross_venue import CrossVenueDetector, Limits
from cryptoarb.detect.groups import Group
from cryptoarb.detect.triangular import TriangularDetector

# (quote, share of bases listed against it) - Binance's spot list, roughly
QUOTES = [("USDT", 1.0), ("BTC", 0.45), ("ETH", 0.18), ("BNB", 0.14), ("FDUSD", 0.12), ("EUR", 0.06),
          ("TRY", 0.1)]
VALUE = {"USDT": 1.0, "BTC": 60_000.0, "ETH": 3_000.0, "BNB": 500.0, "FDUSD": 1.0, "EUR": 1.08, "TRY": 0.03}
CROSSES = [("BTC", "USDT"), ("ETH", "USDT"), ("BNB", "USDT"), ("FDUSD", "USDT"), ("EUR", "USDT"), ("USDT", "TRY"),
           ("ETH", "BTC"), ("BNB", "BTC"), ("BNB", "ETH"), ("BTC", "FDUSD"), ("ETH", "FDUSD"), ("BTC", "EUR"),
           ("ETH", "EUR"), ("BTC", "TRY"), ("ETH", "TRY"), ("BNB", "FDUSD")]


def markets(n: int, seed: int = 1) -> list[tuple[str, str, float]]:
    """``n`` (base, quote, price) markets: the crosses, then bases down the rank list."""
    rng = random.Random(seed)
    out = [(b, q, VALUE[b] / VALUE[q]) for b, q in CROSSES]
    i = 0
    while len(out) < n:
        i += 1
        base = f"C{i:04d}"
        worth = 10 ** rng.uniform(-4, 3)
        for q, share in QUOTES:
            # the top-ranked bases are listed against most quotes, the tail against USDT only
            if len(out) < n and (q == "USDT" or rng.random() < share * (2.0 if i < 60 else 0.7)):
                out.append((base, q, worth / VALUE[q]))
    return out[:n]


def books_for(ms: list[tuple[str, str, float]], venue: str = "binance") -> list[OrderBook]:
    out = []
    for base, quote, px in ms:
        inst = Instrument(venue, f"{base}/{quote}", base, quote, Kind.SPOT, px * 1e-5, 1e-8, 0.0, 1.0,
                          Fees(0.001, 0.001), base + quote)
        b = OrderBook(inst)
        b.load_snapshot([(px * (1 - 2e-4), 10.0), (px * (1 - 5e-4), 20.0)],
                        [(px * (1 + 2e-4), 10.0), (px * (1 + 5e-4), 20.0)])
        b.set_state(VALID)
        b.local_ns = 1
        out.append(b)
    return out


def median_run(fn: Callable[[], float], runs: int) -> float:
    return statistics.median(fn() for _ in range(runs))


def per_update_us(d: TriangularDetector, books: list[OrderBook], updates: int, seed: int = 2) -> float:
    """Mean µs per ``on_book`` over ``updates`` random book changes (tops moved by 1 bps), less
    the loop's own cost (measured with the same loop and no call)."""
    rng = random.Random(seed)
    seq = [(b, b.bid * (1 + 1e-4 * rng.uniform(-1, 1)), b.ask * (1 + 1e-4 * rng.uniform(-1, 1)))
           for b in rng.choices(books, k=updates)]
    on_book = d.on_book
    t0 = time.perf_counter_ns()
    for b, bid, ask in seq:
        b.bid = bid
        b.ask = ask
        on_book(b, 2)
    t1 = time.perf_counter_ns()
    for b, bid, ask in seq:
        b.bid = bid
        b.ask = ask
    t2 = time.perf_counter_ns()
    assert d.walks == 0, "a cycle paid: the benchmark must measure the check, not the sizing"
    return ((t1 - t0) - (t2 - t1)) / updates / 1e3


def hub_us(d: TriangularDetector, book: OrderBook, updates: int) -> float:
    on_book = d.on_book
    t0 = time.perf_counter_ns()
    for _ in range(updates):
        on_book(book, 2)
    return (time.perf_counter_ns() - t0) / updates / 1e3


def cross_venue_us(updates: int) -> float:
    books = []
    for v in ("binance", "okx", "bybit", "kraken", "coinbase"):
        inst = Instrument(v, "BTC/USDT", "BTC", "USDT", Kind.SPOT, 0.01, 1e-5, 0.0, 1.0, Fees(0.001), "BTCUSDT")
        b = OrderBook(inst)
        b.load_snapshot([(60_000.0, 1.0)], [(60_001.0, 1.0)])
        b.set_state(VALID)
        b.local_ns = 1
        books.append(b)
    d = CrossVenueDetector([Group("BTC/USDT", "spot", tuple(b.key for b in books))], Limits(), {})
    for b in books:
        d.add_book(b)
    b0 = books[0]
    t0 = time.perf_counter_ns()
    for _ in range(updates):
        d.on_book(b0, 2)
    return (time.perf_counter_ns() - t0) / updates / 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--updates", type=int, default=200_000)
    ap.add_argument("--sizes", default="100,1000")
    a = ap.parse_args()
    base = median_run(lambda: cross_venue_us(a.updates), a.runs)
    print(f"baseline: cross-venue check, 1 book vs 4 peers: {base:.3f} µs/update")
    print("| markets | currencies | 3-leg cycles via USDT | µs/update (mean, random market) | x baseline "
          "| BTC/USDT (hub) µs | its cycles | Bellman-Ford ms: none pays | one pays |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in (int(x) for x in a.sizes.split(",")):
        books = books_for(markets(n))
        d = TriangularDetector([b.instrument for b in books], ["binance"], "USDT", min_profit_bps=1.0,
                               available={})
        for b in books:
            d.add_book(b)
        us = median_run(lambda d=d, books=books: per_update_us(d, books, a.updates), a.runs)
        hub = next(b for b in books if b.key == "binance BTC/USDT")
        hub_n = len(d._index[hub.key][3])
        hub_t = median_run(lambda d=d, hub=hub: hub_us(d, hub, max(1, a.updates // 50)), a.runs)

        def bf(d: TriangularDetector = d) -> float:
            t0 = time.perf_counter_ns()
            d.scan(4)
            return (time.perf_counter_ns() - t0) / 1e6

        ms = median_run(bf, a.runs)
        # the worst case: one cycle pays (BF runs all |V| rounds, then again without that cycle)
        leaf = next(b for b in books if b.instrument.quote == "USDT" and b.instrument.base.startswith("C")
                    and f"binance {b.instrument.base}/BTC" in d.books)
        leaf.bid, leaf.ask = leaf.bid * 1.02, leaf.ask * 1.02
        found = d.scan(4)
        assert found, "the perturbed market must make a cycle pay"
        ms_neg = median_run(bf, a.runs)
        g = d.venues["binance"].graph
        print(f"| {n:,} | {len(g.currencies):,} | {d.cycle_count:,} | {us:.2f} | {us / base:.1f} | {hub_t:.1f} "
              f"| {hub_n:,} | {ms:.1f} | {ms_neg:.0f} |")


if __name__ == "__main__":
    main()
