"""``arb run --live`` and ``arb record``: the commands that talk to live venues."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from cryptoarb.cli import (
    ConfigOpt,
    DbOpt,
    NoStoreOpt,
    _close_sink,
    _open_sink,
    _settings,
    app,
    console,
    err,
    fail,
)


def _csv(value: str, what: str) -> list[str]:
    items = [x.strip() for x in value.split(",") if x.strip()]
    if not items:
        fail(f"{what}: give a comma-separated list")
    return items


def _live_setup(  # type: ignore[no-untyped-def]
    config: Path | None, db: str | None, no_store: bool, venues: str, symbols: str, mode: str
):
    import asyncio

    from cryptoarb.engine.engine import Engine, build_catalog
    from cryptoarb.live.markets import MarketError
    from cryptoarb.live.runner import plan
    from cryptoarb.venues.registry import UnknownVenue

    settings = _settings(config, db, no_store)
    catalog = build_catalog(settings)
    try:
        lp = asyncio.run(plan(settings, catalog, _csv(venues, "--venues"), _csv(symbols, "--symbols")))
    except (UnknownVenue, MarketError) as e:
        fail(str(e))
    sink = _open_sink(settings, mode, {"venues": lp.venues, "symbols": lp.symbols}) if mode == "live" else None
    insts = [i for v in lp.venues for i in lp.instruments[v]]
    engine = Engine(settings, lp.venues, catalog=catalog, sink=sink, instruments=insts,
                    run_id=sink.run_id if sink else None)
    return settings, lp, engine, sink


@app.command()
def run(
    live: Annotated[bool, typer.Option("--live", help="Paper-trade on live public order books")] = False,
    venues: Annotated[str, typer.Option(help="ccxt exchange ids, comma-separated")] = "binance",
    symbols: Annotated[str, typer.Option(help="ccxt unified symbols, comma-separated")] = "BTC/USDT",
    duration: Annotated[float | None, typer.Option("--duration", "-d", min=0.1, help="Stop after SECONDS")] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    no_store: NoStoreOpt = False,
    no_view: Annotated[bool, typer.Option("--no-view", help="No live view, summary only")] = False,
) -> None:
    """Run the engine on live public order books (paper trading, no API keys)."""
    import asyncio

    from rich.live import Live

    from cryptoarb.demo.run import print_summary
    from cryptoarb.demo.view import DemoView
    from cryptoarb.live.feed import FeedError
    from cryptoarb.live.runner import build_feeds, run_feeds

    if not live:
        fail("arb run needs --live (arb demo runs the simulated market, arb replay runs captures)")
    settings, lp, engine, sink = _live_setup(config, db, no_store, venues, symbols, "live")
    feeds = build_feeds(engine, lp, settings, None)
    view = DemoView(engine, duration=duration, banner="LIVE MARKET DATA — paper trading",
                    banner_style="bold green")
    engine.on_opportunity.append(view.on_opportunity)
    try:
        if no_view:
            asyncio.run(run_feeds(engine, feeds, duration))
        else:
            with Live(view.render(), console=console, refresh_per_second=4, transient=False) as lv:
                asyncio.run(run_feeds(engine, feeds, duration, on_refresh=lambda: lv.update(view.render())))
    except FeedError as e:
        fail(str(e))
    finally:
        _close_sink(sink, settings.storage.url)
    summary = engine.summary()
    summary["feeds"] = {f.venue: {"path": f.stats.path, "connects": f.stats.connects,
                                  "disconnects": f.stats.disconnects, "messages": f.stats.messages,
                                  "bad_messages": f.stats.bad_messages} for f in feeds}
    summary.update(_money(engine))
    print_summary(summary, console)
    _print_feeds(feeds)


def _money(engine) -> dict[str, object]:  # type: ignore[no-untyped-def]
    st = engine.executor.stats
    return {"simulated": False, "trades_by_status": dict(st.by_status),
            "expected_pnl": str(st.expected_pnl), "realized_pnl": str(st.realized_pnl)}


def _print_feeds(feeds) -> None:  # type: ignore[no-untyped-def]
    t = Table(title="Feeds")
    for col in ("venue", "path", "connects", "disconnects", "stale", "messages", "bad", "snapshots"):
        t.add_column(col, justify="left" if col in ("venue", "path") else "right")
    for f in feeds:
        s = f.stats
        t.add_row(f.venue, s.path, str(s.connects), str(s.disconnects), str(s.stale), f"{s.messages:,}",
                  str(s.bad_messages), str(s.snapshots))
    console.print(t)


@app.command()
def record(
    venues: Annotated[str, typer.Option(help="ccxt exchange ids, comma-separated")] = "binance",
    symbols: Annotated[str, typer.Option(help="ccxt unified symbols, comma-separated")] = "BTC/USDT",
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the captures")] = Path("captures"),
    duration: Annotated[float | None, typer.Option("--duration", "-d", min=0.1, help="Stop after SECONDS")] = None,
    config: ConfigOpt = None,
) -> None:
    """Record raw public traffic (REST snapshots included) to gzip captures for arb replay."""
    import asyncio

    from cryptoarb.live.feed import FeedError
    from cryptoarb.live.recorder import Recorder
    from cryptoarb.live.runner import build_feeds, run_feeds

    if out.exists() and not out.is_dir():
        fail(f"--out {out}: exists and is not a directory")
    settings, lp, engine, _ = _live_setup(config, None, True, venues, symbols, "record")
    native = [v for v in lp.venues if lp.paths[v] == "native"]
    if len(native) != len(lp.venues):
        fail(f"recording needs native handlers; not native: {', '.join(set(lp.venues) - set(native))}")
    recorder = Recorder(out)
    feeds = build_feeds(engine, lp, settings, recorder)
    try:
        with Progress(SpinnerColumn(), TextColumn("[bold]recording"), TextColumn("{task.fields[n]:,} lines"),
                      TimeElapsedColumn(), console=err, transient=True) as progress:
            task = progress.add_task("rec", total=None, n=0)
            asyncio.run(run_feeds(engine, feeds, duration,
                                  on_refresh=lambda: progress.update(task, n=recorder.lines)))
    except FeedError as e:
        fail(str(e))
    finally:
        recorder.close()
    console.print(f"recorded {recorder.lines:,} lines into {len({p for p in recorder.paths})} file(s) under {out}")
    _print_feeds(feeds)
