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


def test_zero_fee_basis_run_detects_trades_and_settles_everything(zero_fee_run: Engine) -> None:
    e = zero_fee_run
    s = e.summary()
    assert s["opportunities"] > 0 and s["trades"] > 0
    assert all(t.status is not ArbStatus.PENDING for t in e.executor.trades)
    assert s["pnl_quote"] == pytest.approx(float(sum(t.realized_pnl for t in e.executor.trades)))
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
    # with zero fees and fully hedged trades, cash gained equals realised PnL
    if unhedged == 0:
        cash = pf.balance("binance", "USDT") + pf.balance("binanceusdm", "USDT") - D(100_000)
        assert cash == sum((t.realized_pnl for t in e.executor.trades), D(0))


def test_latency_is_recorded_per_depth_message(zero_fee_run: Engine) -> None:
    e = zero_fee_run
    s = e.summary()
    assert len(e.latency) == sum(b["diffs_applied"] for b in s["books"].values()) + s["books"]["binance BTC/USDT"][
        "dropped_before_snapshot"
    ] + s["books"]["binanceusdm BTC/USDT:USDT"]["dropped_before_snapshot"]
    assert 0 < s["latency_us"]["p50"] <= s["latency_us"]["p99"] <= s["latency_us"]["p999"]
