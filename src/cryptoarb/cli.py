"""The ``arb`` command line (Typer + rich). Thin: it assembles the parts and reports."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from cryptoarb import __version__
from cryptoarb.config import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from cryptoarb.storage.writer import StorageWriter

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="cryptoarb: find and trade crypto arbitrage, net of every cost.",
)
console = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML settings file")]
DbOpt = Annotated[str | None, typer.Option("--db", help="Database URL or SQLite path (default from settings)")]
NoStoreOpt = Annotated[bool, typer.Option("--no-store", help="Do not write to the database")]


class UserError(Exception):
    """An error caused by the user's input: shown as one line, exit code 2."""


def fail(msg: str) -> None:
    err.print(f"[bold red]error:[/] {msg}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _settings(config: Path | None, db: str | None, no_store: bool) -> Settings:
    s = load_settings(config)
    upd: dict[str, object] = {}
    if db is not None:
        upd["url"] = db
    if no_store:
        upd["enabled"] = False
    s = s.model_copy(update={"storage": s.storage.model_copy(update=upd)}) if upd else s
    from cryptoarb.redact import hide_in_logs

    hide_in_logs(s)  # from here on, no log line shows a credential of these settings
    return s


def _open_sink(settings: Settings, mode: str, detail: dict[str, object]) -> StorageWriter | None:
    """Connect (running migrations) and start recording a run; None with ``--no-store``."""
    if not settings.storage.enabled:
        return None
    from cryptoarb.storage.db import connect
    from cryptoarb.storage.writer import StorageWriter

    writer = StorageWriter(connect(settings.storage.url), run_id=uuid.uuid4().hex[:12])
    writer.start_run(mode, {**detail, "settings": json.loads(settings.model_dump_json())})
    return writer


def _close_sink(sink: StorageWriter | None, url: str) -> None:
    if sink is None:
        return
    sink.end_run()
    errors = sink.close()
    if errors:
        err.print(f"[yellow]warning:[/] storage lost {sink.rows_lost} row(s); last error: {errors[-1]}",
                  highlight=False)
    else:
        err.print(f"[dim]stored {sink.rows_written:,} rows in {_safe_url(url)} (run {sink.run_id})[/]",
                  highlight=False)


def _safe_url(url: str) -> str:
    from cryptoarb.storage.urls import redact

    return redact(url)


@app.command()
def version() -> None:
    """Print the version."""
    console.print(f"cryptoarb {__version__}")


@app.command()
def replay(
    sources: Annotated[list[str], typer.Argument(help="VENUE:PATH capture files; a venue's files form one stream")],
    summary_json: Annotated[Path | None, typer.Option("--summary-json", help="Write the summary here")] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    no_store: NoStoreOpt = False,
    strict: Annotated[bool, typer.Option("--strict", help="Stop at the first bad message")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or tables")] = False,
) -> None:
    """Replay raw captures through the live code path: books, detection, paper trading, storage."""
    from cryptoarb.engine.engine import Engine
    from cryptoarb.replay.reader import CaptureError, parse_sources
    from cryptoarb.replay.run import ReplayError
    from cryptoarb.replay.run import replay as run_replay
    settings = _settings(config, db, no_store)
    skipped: list[tuple[str, str]] = []
    try:
        srcs = parse_sources(sources, skipped=skipped)
    except CaptureError as e:
        fail(str(e))
    if summary_json is not None and summary_json.parent and not summary_json.parent.exists():
        fail(f"--summary-json: directory {summary_json.parent} does not exist")
    sink = _open_sink(settings, "replay", {"sources": sources})
    engine = Engine(settings, [s.venue for s in srcs], sink=sink, run_id=sink.run_id if sink else None)
    try:
        with Progress(
            SpinnerColumn(), TextColumn("[bold]replay"), BarColumn(), TextColumn("{task.fields[n]:,} messages"),
            TimeElapsedColumn(), console=err, disable=quiet, transient=True,
        ) as progress:
            task = progress.add_task("replay", total=None, n=0)
            result = run_replay(engine, srcs, lambda n: progress.update(task, n=n), strict=strict)
    except (CaptureError, ReplayError) as e:
        _close_sink(sink, settings.storage.url)  # what was accepted before the error is kept
        fail(str(e))
    summary = engine.summary()
    _close_sink(sink, settings.storage.url)
    for key, why in engine.plan.refused.items():
        if key in engine.books:
            err.print(f"[yellow]note:[/] not compared: {why}", highlight=False)
    if summary_json is not None:
        summary_json.write_text(json.dumps(summary, indent=2, allow_nan=False))
    if result.stats.bad_count and not engine.books:
        # nothing built at all (e.g. every line is of a market the config does not know): the
        # work was not done, say why in one line
        first = result.stats.bad[0]
        fail(f"no order book built; {result.stats.bad_count} bad line(s), first: {first.path}:{first.line}: "
             f"{first.reason}")
    if result.stats.bad_count:
        first = result.stats.bad[0]
        err.print(
            f"[yellow]warning:[/] {result.stats.bad_count} bad line(s) skipped; first: "
            f"{first.path}:{first.line}: {first.reason}", highlight=False,
        )
    if not quiet:
        _print_summary(summary, engine)
        if (result.files and any(s.fmt != "lines" for s in srcs)) or skipped:
            _print_files(result, engine, skipped)


def _print_files(result, engine, skipped: list[tuple[str, str]]) -> None:  # type: ignore[no-untyped-def]
    """Per capture file: what it gave, or why it gave nothing."""
    from cryptoarb.core.book import STATE_NAMES

    t = Table(title="Captures")
    for col in ("file", "venue", "messages", "valid books", "bad", "note"):
        t.add_column(col, justify="right" if col in ("messages", "valid books", "bad") else "left")
    reasons = {c.key: c.reason for c in engine.state_changes}
    for path, rep in result.files.items():
        h = engine.handlers.get(rep.venue)
        books = list(h.syncs.values()) if h is not None else []
        valid = sum(1 for s in books if s.book.valid)
        notes = [rep.first_error] if rep.first_error else []
        if not books:
            notes.append("no order-book stream in this capture")
        if h is not None and (h.checksums_ok or h.checksum_failures):
            notes.append(f"checksums ok {h.checksums_ok}, failed {h.checksum_failures}")
        for s in books:
            if not s.book.valid:
                why = reasons.get(s.book.key, "no snapshot received")
                notes.append(f"{s.instrument.symbol} {STATE_NAMES[s.book.state]}: {why}")
        t.add_row(Path(path).name, rep.venue, f"{rep.messages:,}", f"{valid}/{len(books)}", str(rep.bad),
                  "; ".join(notes))
    for path, why in skipped:
        t.add_row(Path(path).name, "-", "0", "-", "-", why)
    console.print(t)


def _print_summary(summary: dict, engine) -> None:  # type: ignore[no-untyped-def,type-arg]
    t = Table(title="Books", show_lines=False)
    for col in ("book", "state", "best bid", "best ask", "diffs", "dropped", "gaps", "resyncs"):
        t.add_column(col, justify="right" if col not in ("book", "state") else "left")
    from cryptoarb.core.book import STATE_NAMES
    from cryptoarb.fmt import level_text

    for key, b in summary["books"].items():
        book = engine.books.get(key)
        state = STATE_NAMES[book.state] if book is not None else "?"
        inst = book.instrument if book is not None else None
        bid, ask = level_text(b["bids"], inst), level_text(b["asks"], inst)
        t.add_row(key, state, bid, ask, str(b["diffs_applied"]), str(b["dropped_before_snapshot"]),
                  str(b["gaps"]), str(b["resyncs"]))
    console.print(t)
    lat = summary["latency_us"]
    dec = engine.decision.summary_us()
    console.print(
        f"messages {summary['messages']:,} · opportunities {summary['opportunities']:,} · "
        f"trades {summary['trades']:,} · realised PnL {summary['pnl_quote']:.6f} (quote)\n"
        f"latency per depth message (raw bytes -> decision): p50 {lat['p50']} µs · p99 {lat['p99']} µs · "
        f"p99.9 {lat['p999']} µs; decision alone p50 {dec['p50']} µs",
        highlight=False,
    )


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


@app.command()
def demo(
    duration: Annotated[float | None, typer.Option("--duration", "-d", min=0.1, help="Stop after SECONDS")] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    no_store: NoStoreOpt = False,
    seed: Annotated[int, typer.Option(help="Seed of the simulated market")] = 7,
    speed: Annotated[
        float, typer.Option(min=0.0, help="Simulated seconds per wall second (0: as fast as possible)")
    ] = 1.0,
    no_live: Annotated[bool, typer.Option("--no-live", help="No live view, summary only")] = False,
) -> None:
    """Run the whole engine on a built-in SIMULATED multi-venue market, paper-trading into SQLite."""
    from cryptoarb.demo.run import demo_settings, print_summary, run_demo
    from cryptoarb.venues.simulated import SIM_VENUES

    # the run stores the balances and latencies the demo trades with, not the stock ones
    settings = demo_settings(_settings(config, db, no_store), list(SIM_VENUES))
    sink = _open_sink(settings, "demo", {"seed": seed, "duration": duration, "simulated": True})
    try:
        summary = run_demo(
            settings, duration, sink=sink, live=not no_live, speed=speed, seed=seed, console=console
        )
    finally:
        _close_sink(sink, settings.storage.url)
    print_summary(summary, console)


# the live commands (run, record) live in their own module; importing it registers them
from cryptoarb import cli_live as _cli_live  # noqa: E402, F401


def main() -> None:
    """Entry point: user errors become one red line and exit code 2, never a traceback."""
    from cryptoarb.storage.db import StorageError

    try:
        app()
    except (ConfigError, UserError, StorageError) as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    # run the imported module, not this __main__ copy, so that every command is registered once
    from cryptoarb.cli import main as _main

    _main()
