"""``arb bench``: our hot path against ccxt.pro's order-book handling on the same messages."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from cryptoarb.cli.common import ConfigOpt, app, console, err, fail, finish
from cryptoarb.config import Settings, load_settings


@app.command()
def bench(
    sources: Annotated[list[str], typer.Argument(help="VENUE:PATH capture files")],
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON")] = False,
    no_ccxt: Annotated[bool, typer.Option("--no-ccxt", help="Skip the ccxt.pro comparison")] = False,
    config: ConfigOpt = None,
) -> None:
    """Measure our hot path against ccxt.pro's order-book handling on the same messages.

    Exit codes as ``arb replay``: 3 when the captures gave nothing to measure (the figures print
    "-"), 130 after Ctrl-C/SIGTERM (what was measured so far is printed).
    """
    from cryptoarb.bench.runner import BenchError, run_bench
    from cryptoarb.stopping import stop_on_signals

    settings = load_settings(config).model_copy(
        update={"storage": Settings().storage.model_copy(update={"enabled": False})}
    )
    with stop_on_signals() as stop:
        try:
            result = run_bench(settings, sources, with_ccxt=not no_ccxt,
                               progress_console=None if as_json else err, stop=stop)
        except BenchError as e:
            fail(str(e))
        if as_json:
            sys.stdout.write(json.dumps(result) + "\n")
        else:
            _print_table(result)
    finish(interrupted=stop.name if result.get("interrupted") else "", nothing=result.get("warning", ""))


def _print_table(result: dict[str, Any]) -> None:
    def us(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"

    t = Table(title="Per depth message (µs)")
    for col in ("path", "p50", "p99", "p99.9", "msgs/s"):
        t.add_column(col, justify="right" if col != "path" else "left")
    names = {"ours": "cryptoarb: raw bytes -> decision", "decision": "cryptoarb: decision alone",
             "ccxt": "ccxt.pro: parse + apply"}
    for k, label in names.items():
        r = result.get(k)
        if r:
            rate = r.get("msgs_per_s")
            t.add_row(label, us(r["p50_us"]), us(r["p99_us"]), us(r["p999_us"]),
                      "" if "msgs_per_s" not in r else "-" if rate is None else f"{rate:,.0f}")
    console.print(t)
    ours, ccxt = result["ours"].get("msgs_per_s"), (result.get("ccxt") or {}).get("msgs_per_s")
    if ours and ccxt:
        console.print(f"throughput ratio (ours / ccxt.pro): {ours / ccxt:.1f}x")
