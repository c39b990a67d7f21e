"""The whole engine on real captures: detection, paper execution and accounting agree."""

from __future__ import annotations

import os
from decimal import Decimal as D
from pathlib import Path

import pytest

from cryptoarb.config import load_settings
from cryptoarb.core.orders import ArbStatus, OrderStatus
from cryptoarb.engine import Engine
from cryptoarb.replay.reader import parse_sources
from cryptoarb.replay.run import replay
from tests.accounting import assert_pnl_invariant

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance-2024-08-08"

ZERO_FEES = """
[detector]
min_profit_bps = 0.5
max_notional_quote = 5000
[paper]
default_latency_ms = 20
[paper.balances.binance]
USDT = "50000"
BTC = "0.5"
[paper.balances.binanceusdm]
USDT = "50000"
[[instruments]]
venue = "binance"
symbol = "BTC/USDT"
exchange_symbol = "BTCUSDT"
min_notional = 5
taker_fee = 0.0
maker_fee = 0.0
[[instruments]]
venue = "binanceusdm"
symbol = "BTC/USDT:USDT"
exchange_symbol = "BTCUSDT"
kind = "linear"
tick_size = 0.1
lot_size = 0.001
min_notional = 100
taker_fee = 0.0
maker_fee = 0.0
"""


COIN_M = """
[detector]
quote_equivalents = [["USD", "USDT"]]
[[instruments]]
venue = "binance"
symbol = "BTC/USDT"
exchange_symbol = "BTCUSDT"
min_notional = 5
taker_fee = 0.0
maker_fee = 0.0
[[instruments]]
venue = "binancecoinm"
symbol = "BTC/USD:BTC"
exchange_symbol = "BTCUSD_PERP"
kind = "inverse"
tick_size = 0.1
lot_size = 1
contract_size = 100
taker_fee = 0.0
maker_fee = 0.0
"""


@pytest.fixture(scope="module")
def data() -> Path:
    if not DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{DATA} is missing: CI must have ../shared/data")
        pytest.skip("../shared/data is absent (real exchange captures); CI has it")
    return DATA


@pytest.fixture(scope="module")
def zero_fee_run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    cfg = tmp_path_factory.mktemp("cfg") / "arb.toml"
    cfg.write_text(ZERO_FEES)
    settings = load_settings(cfg)
    sources = parse_sources(
        [f"binance:{data / 'spot_btcusdt_20240808.gz'}", f"binanceusdm:{data / 'usdm_btcusdt_20240808.gz'}"],
        ["binance", "binanceusdm"],
    )
    engine = Engine(settings, [s.venue for s in sources])
    replay(engine, sources)
    return engine


def test_default_fees_leave_no_opportunity_in_this_window(data: Path) -> None:
    """Spot vs USDⓈ-M differ by less than 15 bps of taker fees here: an honest zero."""
    settings = load_settings(storage={"enabled": False})
    sources = parse_sources(
        [f"binance:{data / 'spot_btcusdt_20240808.gz'}", f"binanceusdm:{data / 'usdm_btcusdt_20240808.gz'}"],
        ["binance", "binanceusdm"],
    )
    engine = Engine(settings, [s.venue for s in sources])
    replay(engine, sources)
    assert engine.opportunities == 0 and engine.executor.trades == []
    assert engine.detector.evaluations > 1000
    assert assert_pnl_invariant(engine) == 0


def test_zero_fee_basis_run_detects_trades_and_settles_everything(zero_fee_run: Engine) -> None:
    e = zero_fee_run
    s = e.summary()
    assert s["opportunities"] > 0 and s["trades"] > 0
    assert all(t.status is not ArbStatus.PENDING for t in e.executor.trades)
    assert s["pnl_quote"] == pytest.approx(float(sum(t.realized_pnl for t in e.executor.trades)))
    assert set(s["pnl"]) == {"realised", "unrealised", "total"} and s["pnl_quote"] == s["pnl"]["realised"]
    for t in e.executor.trades:
        assert t.buy_order.status.terminal and t.sell_order.status.terminal
        # an IOC leg never fills beyond its protective limit
        for o in (t.buy_order, t.sell_order):
            for f in o.fills:
                assert (f.price <= o.limit_price) if o.side == "buy" else (f.price >= o.limit_price)
        if t.status is ArbStatus.COMPLETE:
            assert t.buy_order.status is OrderStatus.FILLED and t.sell_order.status is OrderStatus.FILLED


def test_accounting_conserves_btc_and_books_pnl_exactly(zero_fee_run: Engine) -> None:
    e = zero_fee_run
    pf = e.portfolio
    spot_btc = pf.balance("binance", "BTC")
    perp = pf.positions["binanceusdm"]["BTC/USDT:USDT"]
    unhedged = sum((t.unhedged_qty_base for t in e.executor.trades), D(0))
    # every matched unit bought on one venue was sold on the other
    assert spot_btc + perp - D("0.5") == unhedged
    assert_pnl_invariant(e)


def test_linear_perp_wallet_moves_by_realised_pnl_not_notional(zero_fee_run: Engine) -> None:
    """Margin-style, as venues book it: the USDT wallet of the perp account changes only by the PnL of
    what was closed; what is open is the position, at its entry value."""
    e = zero_fee_run
    key = "binanceusdm BTC/USDT:USDT"
    fills = [f for t in e.executor.trades for o in (t.buy_order, t.sell_order) for f in o.fills
             if f"{f.venue} {f.symbol}" == key]
    assert fills
    notional_flow = sum((-(f.qty if f.side == "buy" else -f.qty) * f.price for f in fills), D(0))
    pos = e.portfolio.derivatives[key]
    wallet = e.portfolio.balance("binanceusdm", "USDT") - D(50_000)
    # cash-settled identity: what the wallet did not move is the open position's entry value
    assert wallet == notional_flow + pos.cost
    if pos.qty:
        assert abs(wallet) < abs(notional_flow) or notional_flow == 0
        assert pos.entry_price() > 0


def test_pnl_snapshot_is_what_the_live_view_reads(zero_fee_run: Engine) -> None:
    snap = zero_fee_run.pnl_snapshot()
    for name in ("realised", "unrealised", "total", "max_unhedged_quote", "unhedged_quote"):
        assert type(getattr(snap, name)) is float, name
    assert snap.currency == "USDT" and snap.total == pytest.approx(snap.realised + snap.unrealised)
    rows = {(r.venue, r.asset): r for r in snap.exposures}
    pos = zero_fee_run.portfolio.derivatives["binanceusdm BTC/USDT:USDT"]
    if pos.qty:
        row = rows[("binanceusdm", "BTC/USDT:USDT")]
        assert row.kind == "position" and row.qty == float(pos.qty)
    assert snap.max_unhedged_quote >= snap.unhedged_quote


def test_spot_vs_coin_m_replay_reports_the_account_change(data: Path, tmp_path: Path) -> None:
    """The issue's repro: spot + COIN-M, zero fees. The old summary booked the entry spreads as realised
    profit while the account (valued at the final mids) lost money and carried ~2.9 BTC unhedged; the
    summary now reports the account's change, whatever its sign (with the footprint-aware detector
    this window no longer loses)."""
    cfg = tmp_path / "arb.toml"
    cfg.write_text(COIN_M)
    settings = load_settings(cfg, storage={"enabled": False})
    sources = parse_sources(
        [f"binance:{data / 'spot_btcusdt_20240808.gz'}", f"binancecoinm:{data / 'cm_btcusd_perp_20240808.gz'}"],
        ["binance", "binancecoinm"],
    )
    engine = Engine(settings, [s.venue for s in sources])
    replay(engine, sources)
    s = engine.summary()
    assert engine.currency == "USDT" and s["trades"] > 0
    equity = assert_pnl_invariant(engine, s)
    assert s["pnl"]["total"] == pytest.approx(float(equity))
    assert s["max_unhedged_quote"] > 0 and s["pnl"]["total"] != s["pnl_quote"]
    snap = engine.pnl_snapshot()
    assert snap.net["BTC"] != 0  # the inverse leg was never fully hedged (failed legs)
    assert s["max_unhedged_quote"] >= abs(snap.net["BTC"]) * float(engine.marks.price("BTC") or 0)


def test_latency_is_recorded_per_depth_message(zero_fee_run: Engine) -> None:
    e = zero_fee_run
    s = e.summary()
    assert len(e.latency) == sum(b["diffs_applied"] for b in s["books"].values()) + s["books"]["binance BTC/USDT"][
        "dropped_before_snapshot"
    ] + s["books"]["binanceusdm BTC/USDT:USDT"]["dropped_before_snapshot"]
    assert 0 < s["latency_us"]["p50"] <= s["latency_us"]["p99"] <= s["latency_us"]["p999"]
