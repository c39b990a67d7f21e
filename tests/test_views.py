"""Readable views: prices at tick precision, an 80x24 screen that never cuts a number (PnL
first), every subscribed book shown, and a live summary that states its run time."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.text import Text

import test_live
from cryptoarb.config import load_settings
from cryptoarb.demo.run import Demo, build_demo, print_summary
from cryptoarb.demo.view import DemoView
from cryptoarb.engine import Engine
from cryptoarb.fmt import num
from helpers import book, spot

recorded = test_live.recorded  # the local venue serving real Binance frames (tests/test_live.py)
venue = test_live.venue


def _arb(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "cryptoarb.cli", *args], capture_output=True, text=True,
                          env=env, timeout=300, stdin=subprocess.DEVNULL)


def _render(renderable: Any, width: int, height: int) -> str:
    con = Console(width=width, height=height, record=True, force_terminal=False, file=open(os.devnull, "w"))  # noqa: SIM115
    con.print(renderable)
    return con.export_text()


# -- tick precision ---------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "step", "text"), [
    (61602.01, 0.01, "61,602.01"),
    (61602.02, 0.01, "61,602.02"),
    (61602.0, 0.01, "61,602.00"),
    (61602.1, 0.1, "61,602.1"),
    (0.00001234, 1e-8, "0.00001234"),
    (1.5e-05, 1e-08, "0.00001500"),
    (0.000123, 0.01, "0.000123"),  # finer than its catalogued tick: never hidden by rounding
    (12345.0, 10.0, "12,345"),
])
def test_prices_at_tick_precision_never_scientific(value: float, step: float, text: str) -> None:
    assert num(value, step) == text


def test_replay_books_table_shows_prices_at_tick_precision(tmp_path: Path) -> None:
    """The real spot capture's best levels: printed to the cent, as the summary JSON holds them."""
    import gzip

    src = test_live.DATA / "spot_btcusdt_20240808.gz"
    if not src.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{src} is missing: CI must have ../shared/data")
        pytest.skip("../shared/data is absent (real exchange captures); CI has it")
    head = tmp_path / "head.gz"
    with gzip.open(src, "rb") as f, gzip.open(head, "wb") as out:
        for i, line in enumerate(f):
            if i == 3000:
                break
            out.write(line)
    summary = tmp_path / "s.json"
    r = _arb("replay", f"binance:{head}", "--no-store", "--summary-json", str(summary))
    assert r.returncode == 0, r.stderr
    b = json.loads(summary.read_text())["books"]["binance BTC/USDT"]
    (bid, bid_qty), (ask, ask_qty) = b["bids"][0], b["asks"][0]
    row = next(line for line in r.stdout.splitlines() if "binance BTC/USDT" in line)
    assert f"{bid:,.2f} x {bid_qty:.5f}" in row and f"{ask:,.2f} x {ask_qty:.5f}" in row, row
    assert not re.search(r"\de[+-]\d", r.stdout)


# -- the 80x24 screen -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_view() -> tuple[Demo, DemoView]:
    demo = build_demo(load_settings(storage={"enabled": False}), seed=7)
    view = DemoView(demo.engine, demo.market, speed=1.0, duration=30, start_ns=0)
    demo.engine.on_opportunity.append(view.on_opportunity)
    demo.run(30, live=False, speed=0, start_ns=0)
    return demo, view


def _tokens(text: str) -> set[str]:
    return {tok for line in text.splitlines() for tok in line.split()}


def test_demo_at_80x24_shows_every_number_whole_pnl_first(demo_view: Any) -> None:
    demo, view = demo_view
    e = demo.engine
    text = _render(view.render(), 80, 24)
    lines = text.splitlines()
    assert len(lines) <= 24 and all(len(line) <= 80 for line in lines), text
    tokens = _tokens(text)
    snap = e.pnl_snapshot()
    assert e.executor.stats.submitted > 0 and snap.realised != 0  # the view has trades to show
    for v in (snap.realised, snap.unrealised, snap.total, snap.max_unhedged_quote):
        assert f"{v:,.2f}" in tokens, (v, text)
    assert len(e.books) == 11  # 5 venues x 2 + the SIMULATED triangle's ETH/BTC on binance
    for b in e.books.values():
        row = next(line for line in lines if line.split()[:2] == [b.instrument.venue, b.instrument.symbol])
        cells = row.split()
        assert num(b.bid, b.instrument.tick_size) in cells and num(b.ask, b.instrument.tick_size) in cells, row
        assert any(c in cells for c in ("valid", "syncing", "invalid", "empty")), row
    balances = lines[next(i for i, line in enumerate(lines) if line.startswith("balances")):]
    for venue_, ccys in e.portfolio.balances.items():
        row = next(line for line in balances if line.split()[:1] == [venue_])
        for ccy, amount in ccys.items():
            assert f"{amount:,.{2 if ccy == 'USDT' else 5}f}" in row.split(), (ccy, row)
    first_book = next(i for i, line in enumerate(lines) if line.startswith("binance "))
    assert max(i for i, line in enumerate(lines) if "realised PnL" in line) < first_book
    assert "total PnL" in text and "unrealised PnL" in text and "max unhedged" in text


def test_a_taller_narrow_screen_adds_the_last_opportunities(demo_view: Any) -> None:
    _, view = demo_view
    text = _render(view.render(), 80, 34)
    assert len(text.splitlines()) <= 34 and "net bps" in text
    tokens = _tokens(text)
    assert view.recent
    for opp, _trade in view.recent:
        assert f"{opp.profit_bps:.1f}" in tokens and f"{opp.qty_base:.5f}" in tokens, text


def test_smaller_screens_drop_whole_rows_and_say_so(demo_view: Any) -> None:
    _, view = demo_view
    text = _render(view.render(), 80, 16)
    assert len(text.splitlines()) <= 16 and "more book(s)" in text
    assert "realised PnL" in text.splitlines()[1]


def test_a_panel_below_keeps_its_lines(demo_view: Any) -> None:
    """The DEX panel of a live run goes under the view, which leaves it room at 80x24."""
    _, view = demo_view
    below = Text("\n".join(f"dex pool {i}" for i in range(5)))
    lines = _render(view.render(below=below), 80, 24).splitlines()
    assert len(lines) <= 24 and lines[-1].startswith("dex pool 4"), lines
    assert "realised PnL" in lines[1] and "more book(s)" in "\n".join(lines)


def test_wide_tall_screen_gets_the_full_layout(demo_view: Any) -> None:
    _, view = demo_view
    text = _render(view.render(), 120, 60)
    assert "paper balances" in text and "last opportunities" in text and "fair (hidden" in text


# -- every subscribed book --------------------------------------------------------------------
def test_a_one_venue_run_shows_its_books() -> None:
    """No group forms with one venue: its books are still on screen, waiting then priced."""
    btc, eth = spot("binance"), spot("binance", symbol="ETH/USDT")
    engine = Engine(load_settings(storage={"enabled": False}), ["binance"], instruments=[btc, eth])
    assert not engine.plan.groups
    view = DemoView(engine, banner="LIVE")
    text = _render(view.render(), 80, 24)
    assert "BTC/USDT" in text and "ETH/USDT" in text and "waiting" in text
    engine.register_book(book(btc, [(61602.01, 1.0)], [(61602.02, 2.0)]))
    text = _render(view.render(), 80, 24)
    row = next(line for line in text.splitlines() if "BTC/USDT" in line)
    assert "61,602.01" in row and "61,602.02" in row


@pytest.mark.parametrize("width", [80, 72])
def test_long_market_names_are_narrowed_before_any_number(width: int) -> None:
    """Spot, USDⓈ-M and COIN-M names are long: when the row is too wide, a name is shortened;
    prices, states and balances stay whole."""
    e = Engine(load_settings(storage={"enabled": False}), ["binance", "binanceusdm", "binancecoinm"])
    btc = [i for i in e.instruments if i.base == "BTC"]
    for inst in btc:
        e.register_book(book(inst, [(61602.01, 1.0)], [(61602.02, 2.0)]))
    text = _render(DemoView(e, banner="LIVE").render(), width, 24)
    lines = text.splitlines()
    assert len(lines) <= 24 and all(len(line) <= width for line in lines), text
    tokens = [tok for line in lines for tok in line.split()]
    assert tokens.count("61,602.01") == tokens.count("61,602.02") == len(btc), text
    assert tokens.count("valid") == len(btc) and "gaps" in tokens and "100,000.00" in tokens, text


def test_arb_run_live_one_venue_shows_its_book_and_run_time(venue: Any, tmp_path: Path) -> None:
    r = _arb("run", "--live", "--venues", "binance", "--symbols", "BTC/USDT", "--duration", "2",
             "--no-store", "--config", str(test_live._config(tmp_path, venue)))
    assert r.returncode == 0, r.stderr
    # the book's row (its prices depend on whether the feed was still up at the last frame)
    assert any({"binance", "BTC/USDT"} <= set(line.split()) for line in r.stdout.splitlines()), r.stdout
    assert "simulated seconds" not in r.stdout
    m = re.search(r"run time \(s\)\s*│\s*([\d.]+)", r.stdout)
    assert m and float(m[1]) >= 2.0, r.stdout


def test_demo_summary_starts_on_its_own_line_after_the_last_frame() -> None:
    """Off a terminal, rich ends the live display's last frame without a newline."""
    r = _arb("demo", "--duration", "2", "--speed", "0", "--no-store")
    assert r.returncode == 0, r.stderr
    line = next(line for line in r.stdout.splitlines() if "Demo summary" in line)
    assert line.strip().startswith("Demo summary"), line


def test_live_summary_says_run_time() -> None:
    con = Console(width=100, record=True, force_terminal=False, file=open(os.devnull, "w"))  # noqa: SIM115
    print_summary({"simulated": False, "duration_s": 12.34, "messages": 5, "books": {}, "opportunities": 0,
                   "trades": 0, "trades_by_status": {}, "expected_pnl": "0", "realized_pnl": str(Decimal(0)),
                   "latency_us": {}}, con)
    text = con.export_text()
    assert "run time (s)" in text and "12.3" in text and "simulated" not in text
