"""``arb cycles``: triangular / cyclic arbitrage within a venue, on the books of captures.

The captures are replayed through the live code path with the triangular detector on (every
book change evaluates the 3-leg cycles through that market, as live); at the end the cycles
through the start currency are listed with their rate at the final tops, and Bellman-Ford
finds profitable cycles of any length up to ``--max-legs``. Nothing is traded (no balance).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cryptoarb.cli.common import ConfigOpt, _settings, app, check_output_file, console, err, fail, finish


@app.command()
def cycles(
    sources: Annotated[list[str], typer.Argument(help="VENUE:PATH capture files (or PATH for cryptofeed captures)")],
    start: Annotated[str, typer.Option("--start", help="Start (and end) currency of every cycle")] = "USDT",
    max_legs: Annotated[int, typer.Option("--max-legs", min=3, max=8, help="Longest cycle Bellman-Ford reports")] = 4,
    currencies: Annotated[str, typer.Option("--currencies", help="Comma-separated currencies allowed (all)")] = "",
    scan_every: Annotated[float, typer.Option("--scan-every", min=0.0,
                                              help="Bellman-Ford every SECONDS of capture time (0: at the end only)")]
    = 1.0,
    out_json: Annotated[Path | None, typer.Option("--json", help="Write the cycles found here")] = None,
    config: ConfigOpt = None,
) -> None:
    """List a venue's cycles on the books of captures: 3-leg cycles evaluated on every book change,
    Bellman-Ford over the whole graph every --scan-every seconds and at the end, and every cycle
    through the start currency up to --max-legs legs with its rate at the final tops.

    Exit codes: 0 done; 2 bad input (a capture, the start currency not listed by the venue); 3 no
    cycle (the markets form none through the start currency); 130 Ctrl-C/SIGTERM.
    """
    from cryptoarb.core.cycles import simple_cycles
    from cryptoarb.detect.triangular import no_cycle_reason
    from cryptoarb.engine.engine import Engine
    from cryptoarb.replay.reader import CaptureError, parse_sources
    from cryptoarb.replay.run import ReplayError, nothing_built
    from cryptoarb.replay.run import replay as run_replay
    from cryptoarb.stopping import stop_on_signals

    if not start.strip() or not start.isalnum():
        fail(f"--start {start!r}: not a currency code")
    allowed = [c.strip() for c in currencies.split(",") if c.strip()]
    try:
        srcs = parse_sources(sources)
    except CaptureError as e:
        fail(str(e))
    if out_json is not None:
        check_output_file(out_json, "--json")
    venues = list(dict.fromkeys(s.venue for s in srcs))
    base = _settings(config, None, True)
    tri = base.tri.model_copy(update={"venues": venues, "start": start.upper(), "currencies": allowed,
                                      "max_legs": max_legs, "scan_interval_s": scan_every})
    settings = base.model_copy(update={"tri": tri})
    with stop_on_signals() as stop:
        engine = Engine(settings, venues)
        err.print(f"[dim]replaying {sum(len(s.paths) for s in srcs)} file(s) (Ctrl-C stops cleanly)[/]",
                  highlight=False)
        rt = engine.cycles
        assert rt is not None
        profitable_scans: dict[str, int] = {}
        best: dict[str, float] = {}

        def on_scan(found: list[Any]) -> None:
            for _v, c, r in found:
                profitable_scans[c.name] = profitable_scans.get(c.name, 0) + 1
                best[c.name] = max(best.get(c.name, 0.0), r)

        rt.on_scan.append(on_scan)
        try:
            result = run_replay(engine, srcs, stop=stop)
        except (CaptureError, ReplayError) as e:
            fail(str(e))
    nothing = nothing_built(engine, srcs, result)
    det = rt.detector
    report: dict[str, Any] = {"start": tri.start, "venues": {}}
    reasons = []
    for v in venues:
        venue = det.venues[v]
        why = no_cycle_reason(venue.graph, v, tri.start)
        if why and tri.start not in venue.graph.adj and venue.graph.markets:
            fail(why)  # the venue does not list the start currency: bad input
        scan = [x for x in det.scan(max_legs) if x[0] == v]  # also sets every edge to the final tops
        longer = simple_cycles(venue.graph, tri.start, max_legs)
        if longer:
            why = ""
        rows = sorted(((c.name, c.rate(), c.keys) for c in longer), key=lambda r: -r[1])
        report["venues"][v] = {
            "markets": sorted(k.split(" ", 1)[1] for k in venue.graph.markets),
            "cycles": [{"name": n, "rate": r, "markets": list(k)} for n, r, k in rows],
            "bellman_ford": [{"name": c.name, "rate": r, "legs": len(c.edges)} for _, c, r in scan],
            "scans_profitable": {n: {"scans": k, "best_rate": best[n]} for n, k in sorted(profitable_scans.items())},
        }
        if why:
            reasons.append(why)
        _print_venue(v, rows, scan, why)
    report["evaluations"] = det.evaluations
    report["scans"] = rt.scans
    console.print(f"{rt.scans:,} Bellman-Ford scans over the capture; profitable cycles seen: "
                  f"{', '.join(f'{n} ({k}x, best {best[n]:.6f})' for n, k in profitable_scans.items()) or 'none'}",
                  highlight=False)
    report["messages"] = engine.messages
    console.print(f"{det.evaluations:,} cycle evaluations on {engine.messages:,} messages", highlight=False)
    if out_json is not None:
        try:
            out_json.write_text(json.dumps(report, indent=2, allow_nan=False))
        except OSError as e:
            fail(f"--json {out_json}: cannot write: {e.strerror or e}")
    if not nothing and len(reasons) == len(venues):
        nothing = "no cycle: " + "; ".join(reasons)
    finish(interrupted=stop.name if result.interrupted else "", nothing=nothing)


def _print_venue(venue: str, rows: list[tuple[str, float, tuple[str, ...]]], scan: list[Any], why: str) -> None:
    t = Table(title=f"{venue}: cycles at the final tops (rate net of taker fees; > 1 pays)",
              title_justify="left")
    t.add_column("cycle", no_wrap=True)
    t.add_column("markets")
    t.add_column("rate", justify="right")
    for name, rate, keys in rows:
        t.add_row(name, ", ".join(k.split(" ", 1)[1] for k in keys), f"{Decimal(repr(rate)):.6f}" if rate else "-")
    if rows:
        console.print(t)
    elif why:
        console.print(f"[yellow]{why}[/]", highlight=False)
    if scan:
        for _, c, r in scan:
            console.print(f"Bellman-Ford: {c.name} pays {r:.6f} at the tops", highlight=False)
    else:
        console.print(f"Bellman-Ford: no profitable cycle on {venue}'s final books", highlight=False)
