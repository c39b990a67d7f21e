"""``arb run --live --symbols all --dry-run`` against two local Binance-protocol venues (their
``/api/v3/exchangeInfo``, ``tests/discovery_venues.py``): N markets on one, 60 % of them on the
other; wall time of the whole command, 3 runs, beside ``arb --help`` (the import floor).

    python bench/discovery_bench.py 3000
"""

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import discovery_venues as dv

N = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
mk = [(f"C{k:04d}", q, "TRADING") for k in range(N // 2) for q in ("USDT", "USDC")]
dv.BINANCE_MARKETS["binance"] = mk
dv.BINANCE_MARKETS["binanceus"] = mk[: int(len(mk) * 0.6)]
CFG = f"/tmp/discovery_bench_{os.getpid()}.toml"
vs = {"binance": dv.binance_venue("binance").start(), "binanceus": dv.binance_venue("binanceus").start()}
Path(CFG).write_text(dv.config_toml(vs))
ts = []
for _ in range(3):
    t = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "cryptoarb.cli", "run", "--live", "--config", CFG,
                        "--venues", "binance,binanceus", "--symbols", "all", "--dry-run"],
                       capture_output=True, text=True, env={**os.environ, "COLUMNS": "120"})
    ts.append(time.monotonic() - t)
    assert r.returncode == 0, r.stderr
print(r.stdout)
t = time.monotonic()
r = subprocess.run([sys.executable, "-m", "cryptoarb.cli", "--help"], capture_output=True)
base = time.monotonic() - t
for v in vs.values():
    v.stop()
os.unlink(CFG)
print("dry-run s:", [round(x, 2) for x in ts], "median", round(statistics.median(ts), 2),
      "| arb --help s:", round(base, 2))
