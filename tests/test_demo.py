"""The offline demo: simulated feed -> real engine -> paper trades, checked end to end.

Every run here is as fast as possible (speed 0) from a fixed simulated start, so results
depend on the seed only, never on how fast the machine is.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

import orjson
import pytest
from rich.console import Console

from cryptoarb.config import Settings, load_settings
from cryptoarb.core.book import INVALID, VALID
from cryptoarb.core.instruments import Instrument
from cryptoarb.core.orders import ArbStatus
from cryptoarb.demo.market import SimulatedMarket
from cryptoarb.demo.run import Demo, build_demo, print_summary, run_demo
from cryptoarb.demo.view import BANNER, DemoView
from cryptoarb.venues.base import DEPTH, SNAPSHOT, MessageError
from cryptoarb.venues.catalog import UnknownInstrument
from cryptoarb.venues.simulated import SIM_SYMBOLS, SIM_TRI, SIM_VENUES, SimulatedHandler, demo_catalog
from tests.accounting import assert_pnl_invariant

SECONDS = 30


def _settings() -> Settings:
    return load_settings(storage={"enabled": False})


@pytest.fixture(scope="module")
def demo_run() -> tuple[Demo, dict[str, Any], dict[tuple[str, str], Decimal]]:
    demo = build_demo(_settings(), seed=7)
    start = {(v, c): a for v, cs in demo.engine.portfolio.balances.items() for c, a in cs.items()}
    summary = demo.run(SECONDS, live=False, speed=0, start_ns=0)
    return demo, summary, start


# -- the whole demo ------------------------------------------------------------------------
def test_books_become_valid_on_every_venue(demo_run: Any) -> None:
    demo, summary, _ = demo_run
    keys = {f"{v} {s}" for v in SIM_VENUES for s in SIM_SYMBOLS} | {f"{v} {s}" for v, s in SIM_TRI}
    assert set(demo.engine.books) == keys
    became_valid = {c.key for c in demo.engine.state_changes if c.state == VALID}
    assert became_valid == keys
    for key, book in summary["books"].items():
        assert book["bids"] and book["asks"], key
        assert book["bids"][0][0] < book["asks"][0][0], key


def test_finds_and_trades_opportunities(demo_run: Any) -> None:
    demo, summary, _ = demo_run
    assert summary["simulated"] is True
    assert summary["duration_s"] == pytest.approx(SECONDS, abs=0.1)
    assert summary["opportunities"] > 0
    assert summary["trades"] > 0
    assert sum(summary["trades_by_status"].values()) == summary["trades"]
    # the detector only fires net of both venues' taker fees
    assert all(t.expected_pnl > 0 for t in demo.engine.executor.trades)


def test_every_trade_settled_with_realised_pnl(demo_run: Any) -> None:
    demo, summary, _ = demo_run
    ex = demo.engine.executor
    trades = ex.trades
    assert trades and all(t.status is not ArbStatus.PENDING and t.closed_ns for t in trades)
    assert sum((t.realized_pnl for t in trades), Decimal(0)) == ex.stats.realized_pnl
    assert sum((t.expected_pnl for t in trades), Decimal(0)) == ex.stats.expected_pnl
    assert Decimal(summary["realized_pnl"]) == ex.stats.realized_pnl
    assert Decimal(summary["expected_pnl"]) == ex.stats.expected_pnl
    for t in trades:
        fills = [*t.buy_order.fills, *t.sell_order.fills]
        assert t.realized_pnl == sum((f.pnl for f in fills), Decimal(0))
        assert t.fees_quote == sum((f.fee_quote for f in fills), Decimal(0))


def test_equity_change_is_realised_plus_unrealised(demo_run: Any) -> None:
    demo, summary, _ = demo_run
    assert_pnl_invariant(demo.engine, summary)
    assert summary["pnl"]["total"] == pytest.approx(summary["pnl"]["realised"] + summary["pnl"]["unrealised"])


def test_balances_move_only_by_fills(demo_run: Any) -> None:
    demo, _, start = demo_run
    pf = demo.engine.portfolio
    flows: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    unhedged: dict[str, Decimal] = defaultdict(Decimal)
    ex = demo.engine.executor
    for t in ex.trades:
        unhedged[t.group.split("/")[0]] += t.unhedged_qty_base
    for o in [o for t in ex.trades for o in (t.buy_order, t.sell_order)] + ex.singles:  # + leg-risk orders
        base = o.symbol.split("/")[0]
        sign = 1 if o.side == "buy" else -1
        flows[(o.venue, base)] += sign * o.filled_qty
        flows[(o.venue, "USDT")] -= sign * o.notional
        for f in o.fills:  # in the asset the venue takes it in (base when buying on most)
            flows[(o.venue, f.fee_currency)] -= f.fee
    cycles = demo.engine.cycles
    assert cycles is not None and cycles.executor.trades  # the SIMULATED triangle traded too
    for c in cycles.executor.trades:
        for o in c.orders:
            inst = demo.engine.catalog.get(o.venue, o.symbol)
            sign = 1 if o.side == "buy" else -1
            flows[(o.venue, inst.base)] += sign * o.filled_qty
            flows[(o.venue, inst.quote)] -= sign * o.notional
            for f in o.fills:
                flows[(o.venue, f.fee_currency)] -= f.fee
    for venue, ccys in pf.balances.items():
        for ccy, amount in ccys.items():
            assert amount == start.get((venue, ccy), Decimal(0)) + flows[(venue, ccy)], (venue, ccy)
    # summed over venues, base moves only by what one leg bought and the other did not sell
    # (fees taken in base included), less what the leg-risk orders closed since (the one-legged
    # exposure the engine tracks), and by what the cycles left behind (their residual)
    left: dict[str, Decimal] = defaultdict(Decimal)
    for c in cycles.executor.trades:
        for ccy, amount in c.residual.items():
            left[ccy] += amount
    for base in ("BTC", "ETH"):
        total = sum((pf.balance(v, base) - start[(v, base)] for v in SIM_VENUES), Decimal(0))
        assert total == demo.engine.legrisk.exposure.qty.get(base, Decimal(0)) + left[base]
        if not ex.singles:
            assert total == unhedged[base] + left[base]


def test_market_gaps_are_resynced_through_snapshot_requests() -> None:
    demo = build_demo(_settings(), seed=3, drop_rate=0.01)
    summary = demo.run(8, live=False, speed=0, start_ns=0)
    gaps = sum(b["gaps"] for b in summary["books"].values())
    assert demo.market.dropped > 0 and gaps > 0
    assert sum(b["resyncs"] for b in summary["books"].values()) >= gaps
    assert summary["market"]["snapshots"] > len(summary["books"])  # answers beyond the first ones
    assert_pnl_invariant(demo.engine, summary)
    invalid = [c for c in demo.engine.state_changes if c.state == INVALID]
    assert invalid
    # each invalidation is followed by the book becoming valid again (unless at the very end)
    for c in invalid:
        later = [x for x in demo.engine.state_changes if x.key == c.key and x.local_ns >= c.local_ns]
        assert any(x.state == VALID for x in later) or c.local_ns > 7.5e9


def test_run_demo_is_reproducible_and_prints() -> None:
    a = run_demo(_settings(), 6, live=False, speed=0, seed=11, start_ns=0)
    b = run_demo(_settings(), 6, live=False, speed=0, seed=11, start_ns=10**18)
    for key in ("messages", "opportunities", "trades", "expected_pnl", "realized_pnl", "balances", "books", "pnl",
                "max_unhedged_quote"):
        assert a[key] == b[key], key
    con = Console(width=100, record=True, force_terminal=False)
    print_summary(a, con)
    text = con.export_text()
    assert "SIMULATED" in text
    assert "unrealised PnL at final mids" in text and f"{a['pnl']['total']:,.2f}" in text


def test_view_renders_in_100_columns(demo_run: Any) -> None:
    demo, _, _ = demo_run
    view = DemoView(demo.engine, demo.market, speed=1.0, duration=SECONDS, start_ns=0)
    con = Console(width=100, record=True, force_terminal=False)
    con.print(view.render())
    text = con.export_text()
    assert BANNER in text
    assert all(len(line) <= 100 for line in text.splitlines())
    for word in ("binance", "kraken", "opps", "realised", "p99"):
        assert word in text


# -- the market ----------------------------------------------------------------------------
def test_market_frames_are_ordered_and_chained() -> None:
    market = SimulatedMarket(seed=5, drop_rate=0.0)
    last_ns = -1
    seqs: dict[tuple[str, str], int] = {}
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for local_ns, venue, raw in market.events(0, 5_000_000_000):
        assert local_ns >= last_ns
        last_ns = local_ns
        m = orjson.loads(raw)
        key = (venue, m["symbol"])
        counts[key] += 1
        if m["type"] == "snapshot":
            assert key not in seqs  # only the first one: nothing was requested
            assert 20 <= len(m["bids"]) <= 50 and 20 <= len(m["asks"]) <= 50
            assert m["bids"][0][0] < m["asks"][0][0]
        else:
            assert m["seq"] == seqs[key] + 1
            assert m["bids"] or m["asks"]
        seqs[key] = m["seq"]
    assert len(counts) == len(SIM_VENUES) * len(SIM_SYMBOLS)
    # 10-50 updates/s per book
    assert all(40 <= n <= 260 for n in counts.values()), counts


# -- the handler ---------------------------------------------------------------------------
def _frames(venue: str = "binance", symbol: str = "BTC/USDT", n: int = 40) -> list[bytes]:
    out = []
    for _, v, raw in SimulatedMarket(seed=9, drop_rate=0.0).events(0):
        if v == venue and orjson.loads(raw)["symbol"] == symbol:
            out.append(raw)
            if len(out) == n:
                return out
    raise AssertionError("market ended")


class _Recorder:
    def __init__(self) -> None:
        self.books: list[int] = []
        self.states: list[Any] = []
        self.requests: list[Instrument] = []


def _handler(rec: _Recorder) -> SimulatedHandler:
    h = SimulatedHandler(
        "binance",
        demo_catalog(),
        lambda book, ns: rec.books.append(book.update_id),
        request_snapshot=rec.requests.append,
        on_state=rec.states.append,
    )
    return h


def _snapshot_of(h: SimulatedHandler, symbol: str) -> bytes:
    book = h.syncs[symbol].book
    bids, asks = book.snapshot_levels()
    return orjson.dumps(
        {"type": "snapshot", "symbol": symbol, "seq": book.update_id, "ts": book.exchange_ns,
         "bids": bids, "asks": asks}
    )


def test_gap_invalidates_and_snapshot_resyncs() -> None:
    frames = _frames()
    ref = _handler(_Recorder())
    for i, raw in enumerate(frames):
        ref.on_message(raw, i)
    rec = _Recorder()
    h = _handler(rec)
    assert h.on_message(frames[0], 0) == SNAPSHOT
    for i in range(1, 10):
        assert h.on_message(frames[i], i) == DEPTH
    book = h.syncs["BTC/USDT"].book
    assert book.valid and len(rec.books) == 10
    # frame 10 is lost: frame 11 exposes the gap
    h.on_message(frames[11], 11)
    assert not book.valid and book.state != VALID
    assert rec.requests and rec.requests[-1].key == "binance BTC/USDT"
    assert any(c.state == INVALID for c in rec.states)
    assert h.syncs["BTC/USDT"].gaps == 1
    # diffs keep arriving while the snapshot is on its way: buffered, not applied, not reported
    seen = len(rec.books)
    for i in range(12, 30):
        h.on_message(frames[i], i)
    assert not book.valid and len(rec.books) == seen
    # the snapshot (as of frame 20) arrives; buffered diffs 21..29 chain onto it
    mid = _handler(_Recorder())
    for i in range(21):
        mid.on_message(frames[i], i)
    h.on_message(_snapshot_of(mid, "BTC/USDT"), 30)
    assert book.valid and book.update_id == orjson.loads(frames[29])["seq"]
    for i in range(30, 40):
        h.on_message(frames[i], i + 1)
    assert book.snapshot_levels() == ref.syncs["BTC/USDT"].book.snapshot_levels()
    assert rec.states[-1].state != INVALID and book.valid


def test_snapshot_that_does_not_reach_the_buffer_resyncs_again() -> None:
    frames = _frames()
    rec = _Recorder()
    h = _handler(rec)
    h.on_message(frames[0], 0)
    h.on_message(frames[3], 3)  # gap: 1, 2 missing
    h.on_message(frames[4], 4)
    stale = orjson.loads(frames[0])  # a snapshot older than the buffered diffs' chain
    stale_raw = orjson.dumps(stale)
    h.on_message(stale_raw, 5)
    assert not h.syncs["BTC/USDT"].book.valid
    assert len(rec.requests) == 2


def test_malformed_frames_raise_and_leave_the_book_alone() -> None:
    frames = _frames(n=5)
    h = _handler(_Recorder())
    for i, raw in enumerate(frames):
        h.on_message(raw, i)
    book = h.syncs["BTC/USDT"].book
    before = (book.snapshot_levels(), book.update_id, book.state, book.local_ns)
    diff = orjson.loads(frames[4])
    nxt = {**diff, "seq": diff["seq"] + 1}
    bad = [
        frames[4][:-7],  # truncated
        b"not json",
        orjson.dumps({**nxt, "type": "trade"}),
        orjson.dumps({**nxt, "bids": [[60000.0, -1.0]]}),
        orjson.dumps({**nxt, "asks": [[0.0, 1.0]]}),
        orjson.dumps({**nxt, "bids": [["60000.0", 1.0]]}),
        orjson.dumps({**nxt, "bids": [[60000.0]]}),
        orjson.dumps({k: v for k, v in nxt.items() if k != "seq"}),
    ]
    for raw in bad:
        with pytest.raises(MessageError):
            h.on_message(raw, 99)
        assert (book.snapshot_levels(), book.update_id, book.state, book.local_ns) == before
    assert h.bad_messages == len(bad)
    with pytest.raises(UnknownInstrument):
        h.on_message(orjson.dumps({**nxt, "symbol": "DOGE/USDT"}), 99)


def test_view_renders_with_no_trading_venue() -> None:
    """A run whose venues hold no balances (e.g. DEX only) still renders its screen."""
    from rich.console import Console

    from cryptoarb.config import load_settings
    from cryptoarb.demo.view import DemoView
    from cryptoarb.engine import Engine

    engine = Engine(load_settings(storage={"enabled": False}), [], instruments=[])
    import io

    out = io.StringIO()
    Console(file=out, width=100).print(DemoView(engine, banner="LIVE").render())
    assert "LIVE" in out.getvalue() and "total" in out.getvalue()
