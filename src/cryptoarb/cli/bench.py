"""``arb bench``: our hot path against ccxt.pro's order-book handling on the same messages."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from cryptoarb.cli.common import ConfigOpt, app, console, err, fail
from cryptoarb.config import Settings, load_settings


@app.command()
def bench(
    sources: Annotated[list[str], typer.Argument(help="VENUE:PATH capture files")],
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON")] = False,
    no_ccxt: Annotated[bool, typer.Option("--no-ccxt", help="Skip the ccxt.pro comparison")] = False,
    config: ConfigOpt = None,
) -> None:
    """Measure our hot path against ccxt.pro's order-book handling on the same messages."""
    from cryptoarb.bench.runner import BenchError, run_bench

    settings = load_settings(config).model_copy(
        update={"storage": Settings().storage.model_copy(update={"enabled": False})}
    )
    try:
        result = run_bench(settings, sources, with_ccxt=not no_ccxt, progress_console=None if as_json else err)
    except BenchError as e:
        fail(str(e))
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
        return
    t = Table(title="Per depth message (µs)")
    for col in ("path", "p50", "p99", "p99.9", "msgs/s"):
        t.add_column(col, justify="right" if col != "path" else "left")
    names = {"ours": "cryptoarb: raw bytes -> decision", "decision": "cryptoarb: decision alone",
             "ccxt": "ccxt.pro: parse + apply"}
    for k, label in names.items():
        r = result.get(k)
        if r:
            t.add_row(label, f"{r['p50_us']:.2f}", f"{r['p99_us']:.2f}", f"{r['p999_us']:.2f}",
                      f"{r['msgs_per_s']:,.0f}" if "msgs_per_s" in r else "")
    console.print(t)
    if result.get("ccxt"):
        ratio = result["ours"]["msgs_per_s"] / result["ccxt"]["msgs_per_s"]
        console.print(f"throughput ratio (ours / ccxt.pro): {ratio:.1f}x")
