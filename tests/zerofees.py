"""Zero-fee settings for the Binance captures of ``../shared/data/binance-2024-08-08``: with real
fees the spot/perpetual basis of those days never pays, so nothing would be found or traded.
One source for the role tests (``tests/busenv.py``) and the bus benchmark (``bench/bus_bench.py``);
the same TOML is quoted in docs/benchmarks.md ("Detector working")."""

from __future__ import annotations

#: detector threshold, USD ~ USDT for the COIN-M pair, and the three instruments without fees
ZERO_FEES = """\
[detector]
min_profit_bps = 0.5
quote_equivalents = [["USD", "USDT"]]
[[instruments]]
venue = "binance"
symbol = "BTC/USDT"
exchange_symbol = "BTCUSDT"
taker_fee = 0.0
maker_fee = 0.0
[[instruments]]
venue = "binanceusdm"
symbol = "BTC/USDT:USDT"
exchange_symbol = "BTCUSDT"
kind = "linear"
tick_size = 0.1
lot_size = 0.001
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
