"""Views of stored data and of what is known: ``arb runs``, ``arb trades``, ``arb show settings``,
``arb venues``. Read-only; the tables are what the API serves, for a terminal."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.table import Table

from cryptoarb.cli.common import EXIT_NOTHING, ConfigOpt, DbOpt, _settings, app, console, fail, warn

show_app = typer.Typer(no_args_is_help=True, help="Show effective configuration.")
app.add_typer(show_app, name="show")

LimitOpt = Annotated[int, typer.Option("--limit", "-n", min=1, max=100_000, help="Rows to show (newest first)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON instead of a table")]


def _when(ns: int | None) -> str:
    if not ns:
        return "-"
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _db(config: ConfigOpt, db: DbOpt):  # type: ignore[no-untyped-def]
    from cryptoarb.storage.db import connect

    return connect(_settings(config, db, False).storage.url)


@app.command("runs")
def runs_cmd(config: ConfigOpt = None, db: DbOpt = None, limit: LimitOpt = 20,
             mode: Annotated[str | None, typer.Option(help="Only runs of this mode: demo, live, replay")] = None,
             as_json: JsonOpt = False) -> None:
    """The stored runs, newest first: mode, start, duration, opportunities and trades."""
    from cryptoarb.api import queries

    items, total = queries.runs(_db(config, db), limit, 0, mode)
    if as_json:
        console.print_json(json.dumps({"items": items, "total": total}))
        return
    if not items:
        warn("no run stored in this database")
        raise typer.Exit(EXIT_NOTHING)
    t = Table(title=f"runs ({len(items)} of {total}, newest first)")
    for col, j in (("run", "left"), ("mode", "left"), ("started (UTC)", "left"), ("duration", "right"),
                   ("opportunities", "right"), ("trades", "right")):
        t.add_column(col, justify=j)  # type: ignore[arg-type]
    for r in items:
        dur = f"{(r['ended_ns'] - r['started_ns']) / 1e9:,.1f} s" if r["ended_ns"] else "running / unclosed"
        t.add_row(r["id"], r["mode"], _when(r["started_ns"]), dur, f"{r['opportunities']:,}", f"{r['trades']:,}")
    console.print(t)


@app.command("trades")
def trades_cmd(config: ConfigOpt = None, db: DbOpt = None,
               run: Annotated[str | None, typer.Option("--run", help="Run id (default: every run)")] = None,
               status: Annotated[str | None, typer.Option(help="complete, partial, failed_leg, failed")] = None,
               limit: LimitOpt = 50, as_json: JsonOpt = False) -> None:
    """Stored arbitrage trades, newest first: expected vs realised PnL, fees, unhedged quantity."""
    from cryptoarb.api import queries

    engine = _db(config, db)
    if run is not None:
        try:
            queries.run(engine, run)
        except queries.NotFound as e:
            fail(f"--run {run}: {e}")
    items, total = queries.trades(engine, limit, 0, run, status)
    if as_json:
        console.print_json(json.dumps({"items": items, "total": total}))
        return
    if not items:
        warn("no trade stored" + (f" for run {run}" if run else ""))
        raise typer.Exit(EXIT_NOTHING)
    title = f"trades of run {run}" if run else "trades"
    t = Table(title=f"{title} ({len(items)} of {total}, newest first; PnL and fees in the quote currency)")
    cols: tuple[str, ...] = ("id", "group", "status", "expected", "realised", "gap", "fees", "qty", "unhedged",
                             "created (UTC)")
    if not run:
        cols = ("run", *cols)
    for col in cols:
        t.add_column(col, justify="left" if col in ("run", "group", "status", "created (UTC)") else "right")
    for r in items:
        gap = Decimal(r["realized_pnl"]) - Decimal(r["expected_pnl"])
        row = [str(r["id"]), r["group"], r["status"], _money(r["expected_pnl"]), _money(r["realized_pnl"]),
               _money(gap), _money(r["fees_quote"]), r["matched_qty_base"], r["unhedged_qty_base"],
               _when(r["created_ns"])]
        t.add_row(*([r["run_id"], *row] if not run else row))
    console.print(t)


def _money(v: str | Decimal) -> str:
    return f"{Decimal(v):,.4f}"


@show_app.command("settings")
def show_settings(config: ConfigOpt = None, db: DbOpt = None) -> None:
    """The effective settings (defaults < file < ARB_* environment), every credential as ***."""
    from cryptoarb.redact import redact_config

    s = _settings(config, db, False)
    console.print_json(json.dumps(redact_config(s.model_dump(mode="json"))))


@app.command("venues")
def venues_cmd(as_json: JsonOpt = False,
               config: ConfigOpt = None) -> None:
    """Known venues: the native handlers (our own parsers) with their built-in markets, and the
    ccxt.pro exchanges any other id runs through (markets resolved from ccxt at run time)."""
    from cryptoarb.engine.engine import build_catalog
    from cryptoarb.venues.registry import ccxt_pro_venues, native_venues

    catalog = build_catalog(_settings(config, None, True))
    native = native_venues()
    known = set(catalog.venues())
    rows: list[dict[str, Any]] = [{"venue": v, "path": "native", "markets": catalog.symbols(v) if v in known else []}
                                  for v in native]
    rows += [{"venue": v, "path": "ccxt", "markets": []} for v in ccxt_pro_venues() if v not in native]
    if as_json:
        console.print_json(json.dumps(rows))
        return
    t = Table(title=f"{len(native)} native venues, {len(rows) - len(native)} more through ccxt.pro")
    t.add_column("venue")
    t.add_column("path")
    t.add_column("built-in markets (others resolved through ccxt at run time)")
    for r in rows:
        mk = r["markets"]
        shown = ", ".join(mk[:8]) + (f" (+{len(mk) - 8})" if len(mk) > 8 else "")
        t.add_row(r["venue"], r["path"], shown or "-")
    console.print(t)
