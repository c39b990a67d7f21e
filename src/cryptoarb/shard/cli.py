"""``arb run --live --shards N``: the body of a sharded run (the CLI module keeps one branch).

Set-up is the single-process run's (settings, market plan, storage run row) and so is the end
(the summary table, the feeds table, ``--summary-json``, exit codes); in between the
:class:`~.coordinator.Coordinator` runs the shards.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from cryptoarb.live.discovery import DiscoveryRequest
    from cryptoarb.shard.coordinator import Coordinator
    from cryptoarb.stopping import StopFlag


def run_sharded(config: Path | None, db: str | None, no_store: bool, venues: str, symbols: str,
                duration: float | None, no_view: bool, signalled: StopFlag, shards: int,
                summary_json: Path | None, req: DiscoveryRequest | None = None) -> list[Any]:
    """Run; print the summary; returns feed-like rows (the caller's exit checks read them)."""
    import asyncio

    from rich.live import Live

    from cryptoarb.cli.common import _close_sink, _open_sink, _settings, console, err, fail
    from cryptoarb.cli.discovery import _csv
    from cryptoarb.cli.live import _print_feeds, _warn_no_balance
    from cryptoarb.demo.run import print_summary
    from cryptoarb.engine.control import operator_control
    from cryptoarb.engine.engine import build_catalog
    from cryptoarb.live.markets import MarketError
    from cryptoarb.live.runner import plan
    from cryptoarb.shard.coordinator import Coordinator
    from cryptoarb.shard.partition import ShardError
    from cryptoarb.venues.registry import UnknownVenue

    settings = _settings(config, db, no_store)
    catalog = build_catalog(settings)
    try:
        if req is not None:  # --symbols all: discovery and its counts, as the single-process run
            from cryptoarb.cli.discovery import discover_markets

            lp = discover_markets(settings, catalog, venues, req)
        else:
            lp = asyncio.run(plan(settings, catalog, _csv(venues, "--venues"), _csv(symbols, "--symbols")))
    except (UnknownVenue, MarketError) as e:
        fail(str(e))
    if lp.dex_venues:
        fail(f"--shards: DEX venues run in the single process only; not: {', '.join(lp.dex_venues)}")
    try:
        coord = Coordinator(settings, lp, catalog, shards)
    except ShardError as e:
        fail(escape(str(e)))
    _warn_no_balance(settings, lp.venues)
    sink = _open_sink(settings, "live", {"venues": lp.venues, "symbols": lp.symbols, "shards": shards})
    import uuid

    coord.attach(sink.run_id if sink is not None else uuid.uuid4().hex[:12], sink)
    started = time.monotonic()
    why = ""
    try:
        with operator_control(coord):  # arb kill / SIGUSR1, arb resume / SIGUSR2: every shard
            coord.start()
            if no_view:
                why = coord.run(duration, lambda: bool(signalled.name))
            else:
                with Live(_table(coord), console=console, refresh_per_second=4, transient=False) as lv:
                    why = coord.run(duration, lambda: bool(signalled.name), on_refresh=lambda: lv.update(_table(coord)))
                if not console.is_terminal:
                    console.line()
    finally:
        coord.stop()
        _close_sink(sink, settings.storage.url)
    for line in coord.death_lines():
        err.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
    summary = coord.summary()
    summary["duration_s"] = round(time.monotonic() - started, 3)
    if signalled.name:
        summary["interrupted"] = True
    print_summary(summary, console)
    feeds = coord.feeds(summary)
    _print_feeds(feeds)
    console.print(_table(coord))
    if summary_json is not None:
        try:
            summary_json.write_text(json.dumps(summary, indent=2, allow_nan=False))
        except OSError as e:
            fail(f"--summary-json {summary_json}: cannot write: {e.strerror or e}")
    if why == "shard died" or coord.dead():
        import typer

        raise typer.Exit(1)
    return feeds


def _table(coord: Coordinator) -> Table:
    t = Table(title=f"Shards — LIVE MARKET DATA, paper trading (run {coord.run_id})")
    for col in ("shard", "pid", "books", "groups", "valid", "messages", "opps", "trades", "realised", "state"):
        t.add_column(col, justify="left" if col in ("state",) else "right")
    for sh in coord.shards:
        st = sh.summary or sh.status
        state = ("done" if sh.summary is not None else f"DIED: {sh.error}" if sh in coord.dead()
                 else "killed" if st.get("killed") else "running" if st else "starting")
        t.add_row(str(sh.index), str(sh.proc.pid if sh.proc else "-"), str(len(sh.part.keys)),
                  str(len(sh.part.groups)), str(sh.status.get("valid_books", "-")), f"{st.get('messages', 0):,}",
                  f"{st.get('opportunities', 0):,}", str(st.get("trades", 0)),
                  f"{Decimal(st.get('realized_pnl', '0')):,.4f}", escape(state))
    return t
