"""``arb replay``: captures through the live code path, with the summary tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from cryptoarb.cli.common import (
    ConfigOpt,
    DbOpt,
    NoStoreOpt,
    _close_sink,
    _open_sink,
    _settings,
    app,
    check_output_file,
    console,
    err,
    fail,
    finish,
    warn,
)


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
    """Replay raw captures through the live code path: books, detection, paper trading, storage.

    Exit codes: 0 done; 2 bad input (one error line, checked before the work starts); 3 nothing
    usable came out (no recognised message, or a venue that built no book); 130 Ctrl-C/SIGTERM
    (stopped between two messages, storage flushed, run closed, partial summary printed and
    written).
    """
    from cryptoarb.cli.risk import engine_control
    from cryptoarb.engine.engine import Engine
    from cryptoarb.replay.reader import CaptureError, LineStats, parse_sources, total_bytes
    from cryptoarb.replay.run import ReplayError, nothing_built
    from cryptoarb.replay.run import replay as run_replay
    from cryptoarb.stopping import stop_on_signals

    settings = _settings(config, db, no_store)
    skipped: list[tuple[str, str]] = []
    try:
        srcs = parse_sources(sources, skipped=skipped)
    except CaptureError as e:
        fail(str(e))
    if summary_json is not None:
        check_output_file(summary_json, "--summary-json")
    with stop_on_signals() as stop:
        sink = _open_sink(settings, "replay", {"sources": sources})
        engine = Engine(settings, [s.venue for s in srcs], sink=sink, run_id=sink.run_id if sink else None)
        stats = LineStats(strict=strict)
        if not quiet:
            err.print(f"[dim]replaying {sum(len(s.paths) for s in srcs)} file(s), "
                      f"{total_bytes(srcs) / 1e6:,.1f} MB (Ctrl-C stops cleanly)[/]", highlight=False)
        try:
            with engine_control(engine, settings), Progress(
                SpinnerColumn(), TextColumn("[bold]replay"), BarColumn(), TaskProgressColumn(),
                TextColumn("{task.fields[n]:,} messages"), TimeElapsedColumn(), TextColumn("ETA"),
                TimeRemainingColumn(), console=err, disable=quiet, transient=True,
            ) as progress:
                task = progress.add_task("replay", total=total_bytes(srcs) or None, n=0)
                result = run_replay(
                    engine, srcs, lambda n: progress.update(task, n=n, completed=stats.progress.read()),
                    strict=strict, stop=stop, stats=stats,
                )
        except (CaptureError, ReplayError) as e:
            _close_sink(sink, settings.storage.url)  # what was accepted before the error is kept
            fail(str(e))
        summary = engine.summary()
        if result.interrupted:
            summary["interrupted"] = True
        _close_sink(sink, settings.storage.url)
        for key, why in engine.plan.refused.items():
            if key in engine.books:
                err.print(f"[yellow]note:[/] not compared: {why}", highlight=False)
        if summary_json is not None:
            try:
                summary_json.write_text(json.dumps(summary, indent=2, allow_nan=False))
            except OSError as e:
                fail(f"--summary-json {summary_json}: cannot write: {e.strerror or e}")
        if result.stats.bad_count:
            first = result.stats.bad[0]
            warn(f"{result.stats.bad_count} bad line(s) skipped; first: {first.path}:{first.line}: {first.reason}")
        if not quiet:
            _print_summary(summary, engine)
            if (result.files and any(s.fmt != "lines" for s in srcs)) or skipped:
                _print_files(result, engine, skipped)
    finish(interrupted=stop.name if result.interrupted else "", nothing=nothing_built(engine, srcs, result))


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


def us(v: float | None, spec: str = "g") -> str:
    """A latency in µs; "-" when nothing was measured (never a made-up 0.0)."""
    return "-" if v is None else f"{v:{spec}} µs"


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
    pnl = summary["pnl"]
    dec = engine.decision.summary_us()
    console.print(
        f"messages {summary['messages']:,} · opportunities {summary['opportunities']:,} · "
        f"trades {summary['trades']:,}\n"
        f"PnL ({engine.currency}): realised {pnl['realised']:,.6f} · unrealised {pnl['unrealised']:,.6f} · "
        f"total {pnl['total']:,.6f} · max unhedged {summary['max_unhedged_quote']:,.2f}\n"
        f"latency per depth message (raw bytes -> decision): p50 {us(lat['p50'])} · p99 {us(lat['p99'])} · "
        f"p99.9 {us(lat['p999'])}; decision alone p50 {us(dec['p50'] if len(engine.decision) else None)}",
        highlight=False,
    )
