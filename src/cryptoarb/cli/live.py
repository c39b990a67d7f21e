"""``arb run --live`` and ``arb record``: the commands that talk to live venues.

A ``--venues`` name that is a configured ``[[dex.venues]]`` entry runs as a DEX venue (pools on a
chain, :mod:`cryptoarb.dex.live`) beside the CEX feeds.
"""

from __future__ import annotations

import os
import time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from rich.console import RenderableType

    from cryptoarb.config import Settings
    from cryptoarb.dex.execution import Signer
    from cryptoarb.dex.live import DexRuntime
    from cryptoarb.live.discovery import DiscoveryRequest
    from cryptoarb.stopping import StopFlag

from cryptoarb.cli.common import (
    ConfigOpt,
    DbOpt,
    NoStoreOpt,
    _close_sink,
    _open_sink,
    _settings,
    app,
    check_output_dir,
    check_output_file,
    console,
    err,
    fail,
    finish,
    warn,
)
from cryptoarb.cli.demo import ApiHostOpt, ApiPortOpt
from cryptoarb.cli.discovery import (
    DEFAULT_QUOTE,
    DryRunOpt,
    KindsOpt,
    MaxBooksOpt,
    MinVenuesOpt,
    QuoteOpt,
    _csv,
    discover_markets,
    discovery_request,
    dry_run,
)


def _live_setup(  # type: ignore[no-untyped-def]
    config: Path | None, db: str | None, no_store: bool, venues: str, symbols: str, mode: str, trade: bool = False,
    req: DiscoveryRequest | None = None,
):
    import asyncio

    from cryptoarb.engine.engine import Engine, build_catalog
    from cryptoarb.live.markets import MarketError
    from cryptoarb.live.runner import plan
    from cryptoarb.venues.registry import UnknownVenue

    settings = _settings(config, db, no_store)
    if trade:  # balances are the venues' (fetched at start), never the paper ones
        settings = settings.model_copy(update={"paper": settings.paper.model_copy(update={"balances": {}})})
    catalog = build_catalog(settings)
    try:
        if req is not None:  # --symbols all: found in the venues' metadata, counts shown first
            lp = discover_markets(settings, catalog, venues, req)
        else:
            lp = asyncio.run(plan(settings, catalog, _csv(venues, "--venues"), _csv(symbols, "--symbols")))
    except (UnknownVenue, MarketError) as e:
        fail(str(e))
    if mode == "record" and lp.dex_venues:
        fail(f"arb record records CEX traffic only; not: {', '.join(lp.dex_venues)}")
    signer = _signer() if lp.dex_venues else None
    sink = _open_sink(settings, mode, {"venues": lp.venues + lp.dex_venues, "symbols": lp.symbols}
                      ) if mode == "live" else None
    insts = [i for v in lp.venues for i in lp.instruments[v]]
    engine = Engine(settings, lp.venues, catalog=catalog, sink=sink, instruments=insts,
                    run_id=sink.run_id if sink else None)
    dex = None
    if lp.dex_venues:
        from cryptoarb.dex.live import DexRuntime, DexStartError

        try:
            dex = DexRuntime(settings.dex, engine, lp.dex_venues, {i.key for i in insts}, signer,
                             settings.detector.max_quote_age_ms)
        except DexStartError as e:
            _close_sink(sink, settings.storage.url)
            fail(escape(str(e)))
    return settings, lp, engine, sink, dex


def _signer() -> Signer | None:
    """The DEX key from the environment only; None (detection only) when none is set."""
    from cryptoarb.dex.errors import SecretError
    from cryptoarb.dex.execution import KEY_ENV, KEY_FILE_ENV
    from cryptoarb.dex.execution import Signer as _Signer

    if not os.environ.get(KEY_ENV) and not os.environ.get(KEY_FILE_ENV):
        return None
    try:
        return _Signer.from_env()
    except SecretError as e:
        fail(escape(str(e)))
    return None


@app.command()
def run(
    live: Annotated[bool, typer.Option("--live", help="Paper-trade on live public order books")] = False,
    trade: Annotated[bool, typer.Option("--trade", help="With --live: send REAL orders (API keys needed; "
                                        "docs/live-trading.md)")] = False,
    venues: Annotated[str, typer.Option(help="ccxt exchange ids, comma-separated")] = "binance",
    symbols: Annotated[str, typer.Option(help="ccxt unified symbols, comma-separated")] = "BTC/USDT",
    duration: Annotated[float | None, typer.Option("--duration", "-d", min=0.1, help="Stop after SECONDS")] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    no_store: NoStoreOpt = False,
    no_view: Annotated[bool, typer.Option("--no-view", help="No live view, summary only")] = False,
    api: Annotated[bool, typer.Option("--api/--no-api", help="Serve the API and dashboard beside the run "
                                                             "(needs a JWT secret: docs/api.md)")] = False,
    api_host: ApiHostOpt = None,
    api_port: ApiPortOpt = None,
    # -- sharding across processes (issue #15; docs/scale.md, "Sharding") --------------------------
    shards: Annotated[int, typer.Option("--shards", help="Processes to split the markets across (whole "
                                        "cross-venue groups each); 1: one process")] = 1,
    summary_json: Annotated[Path | None, typer.Option("--summary-json", help="Write the run summary here")] = None,
    # -- end of sharding -----------------------------------------------------------------------------
    quote: QuoteOpt = DEFAULT_QUOTE,
    kinds: KindsOpt = "spot,swap",
    min_venues: MinVenuesOpt = 2,
    max_books: MaxBooksOpt = None,
    dry_run_only: DryRunOpt = False,
) -> None:
    """Run the engine on live public order books (paper trading, no API keys)."""
    from cryptoarb.stopping import stop_on_signals

    if not live:
        fail("arb run needs --live (arb demo runs the simulated market, arb replay runs captures)")
    req = discovery_request(symbols, quote, kinds, min_venues, max_books, dry_run_only)
    if dry_run_only and req is not None:
        dry_run(config, db, no_store, venues, req)
        return
    # -- sharding ------------------------------------------------------------------------------------
    if shards < 1:
        fail(f"--shards {shards}: give 1 (one process) or more")
    if summary_json is not None:
        check_output_file(summary_json, "--summary-json")
    if shards > 1 and (trade or api):
        fail(f"--shards: {'--trade (real orders)' if trade else '--api'} runs in one process only; drop --shards")
    if shards > 1:
        from cryptoarb.shard.cli import run_sharded

        with stop_on_signals() as signalled:
            feeds = run_sharded(config, db, no_store, venues, symbols, duration, no_view, signalled, shards,
                                summary_json, req=req)
        if _report_failures(feeds) and not signalled.name:
            raise typer.Exit(1)
        finish(interrupted=signalled.name, nothing=_never_connected(feeds))
        return
    # -- end of sharding -----------------------------------------------------------------------------
    with stop_on_signals() as signalled:  # a signal during set-up or teardown never skips closing the run
        feeds = _run_live(config, db, no_store, venues, symbols, duration, no_view, signalled, trade,
                          (api_host, api_port) if api else None, summary_json=summary_json, req=req)
    if _report_failures(feeds) and not signalled.name:
        raise typer.Exit(1)
    finish(interrupted=signalled.name, nothing=_never_connected(feeds))


def _run_live(
    config: Path | None, db: str | None, no_store: bool, venues: str, symbols: str, duration: float | None,
    no_view: bool, signalled: StopFlag, trade: bool = False, api: tuple[str | None, int | None] | None = None,
    summary_json: Path | None = None, req: DiscoveryRequest | None = None,
) -> list[Any]:
    """The body of ``arb run --live`` (the caller handles signals and the exit code); the feeds."""

    from rich.live import Live

    from cryptoarb.cli.risk import engine_control
    from cryptoarb.cli.trade import check_trade, live_trading, print_trading
    from cryptoarb.demo.run import print_summary
    from cryptoarb.demo.view import DemoView
    from cryptoarb.dex.errors import DexError
    from cryptoarb.execution.service import LiveStartError
    from cryptoarb.live.feed import FeedError
    from cryptoarb.live.loop import run_in_loop
    from cryptoarb.live.runner import build_feeds, run_feeds

    keys = check_trade(_settings(config, db, no_store), _csv(venues, "--venues"), trade)  # before anything opens
    settings, lp, engine, sink, dex = _live_setup(config, db, no_store, venues, symbols, "live", keys is not None,
                                                    req=req)
    trading = live_trading(settings, keys, engine) if keys is not None else None
    if trading is None:
        _warn_no_balance(settings, lp.venues)
    from cryptoarb.ml.scorer import start_in_run

    stop_ml = start_in_run(engine, settings, sink)  # [ml]: model scores, weekly retrain (docs/ml.md)
    feeds = build_feeds(engine, lp, settings, None)
    services: list[Any] = [dex] if dex is not None else []
    if trading is not None:
        services.insert(0, trading)
    view = DemoView(engine, duration=duration, banner="LIVE TRADING — REAL ORDERS" if trading else
                    "LIVE MARKET DATA — paper trading", banner_style="bold red" if trading else "bold green")
    # the CEX panel pairs opportunities with the CEX executor's trades; DEX ones (label "dex") are
    # shown with their own trades in the DEX panel
    engine.on_opportunity.append(lambda o: None if o.label == "dex" else view.on_opportunity(o))

    def render() -> RenderableType:
        if dex is None:
            return view.render()
        # the CEX view needs CEX venues (its balance table has a row per venue): DEX-only runs skip it
        return view.render(below=_dex_table(dex)) if lp.venues else _dex_table(dex)

    beside = None
    if api is not None:  # the API on its own thread; its link pumps on this loop's refresher
        from cryptoarb.cli.api import start_beside

        try:
            beside = start_beside(engine, settings, "live", api[0], api[1], dev=settings.api.dev, feeds=feeds,
                                  paths=lp.paths)
        except BaseException:
            _close_sink(sink, settings.storage.url)
            raise
    pump = beside[1].pump if beside is not None else None
    started = time.monotonic()
    try:
        with engine_control(engine, settings) as alerts:  # arb kill / SIGUSR1, arb resume / SIGUSR2, alerts
            if alerts is not None and trading is not None:
                from cryptoarb.alerts.wiring import attach_trading

                attach_trading(trading, alerts, engine.run_id)
            if no_view:
                run_in_loop(settings.live.loop, run_feeds(engine, feeds, duration, services=services,
                                                          signalled=signalled, on_refresh=pump))
            else:
                with Live(render(), console=console, refresh_per_second=4, transient=False) as lv:
                    def refresh() -> None:
                        lv.update(render())
                        if pump is not None:
                            pump()

                    run_in_loop(settings.live.loop, run_feeds(engine, feeds, duration, on_refresh=refresh,
                                          services=services, signalled=signalled))
                if not console.is_terminal:
                    console.line()  # the last frame ends without a newline off a tty
    except FeedError as e:
        fail(str(e))
    except DexError as e:
        fail(escape(" ".join(str(e).split())))  # one line, whatever the RPC library said
    except LiveStartError as e:
        fail(escape(str(e)))
    finally:
        stop_ml()
        if beside is not None:
            from cryptoarb.cli.api import stop_beside

            stop_beside(beside)
        _close_sink(sink, settings.storage.url)
    summary = engine.summary()
    rows = [(f.venue, f.stats) for f in feeds] + (list(dex.stats.items()) if dex is not None else [])
    summary["feeds"] = {v: {"path": s.path, "connects": s.connects, "disconnects": s.disconnects,
                            "messages": s.messages, "bad_messages": s.bad_messages,
                            "failures": dict(getattr(s, "failures", {}))} for v, s in rows}
    summary.update(_money(engine), duration_s=round(time.monotonic() - started, 3))  # wall-clock run time
    if trading is not None:
        summary["live_orders"] = trading.summary()
    print_summary(summary, console)
    _print_feeds(rows)
    if trading is not None:
        print_trading(trading)
    if dex is not None:
        for note in dex.notes:
            err.print(f"[yellow]note:[/] {note}", highlight=False)
        summary["dex"] = _dex_summary(dex)
        console.print(_dex_table(dex))
        _print_dex_summary(summary["dex"])
    if summary_json is not None:  # the same contract as a sharded run's (docs/scale.md, "Sharding")
        _write_summary(summary_json, {**summary, "interrupted": True} if signalled.name else summary)
    return feeds


def _write_summary(path: Path, summary: dict[str, Any]) -> None:
    import json

    try:
        path.write_text(json.dumps(summary, indent=2, allow_nan=False, default=str))
    except OSError as e:
        fail(f"--summary-json {path}: cannot write: {e.strerror or e}")


def _report_failures(feeds: list[Any]) -> bool:
    """Markets or subscriptions a venue refused for good (not retried): one line each; True when
    any (the run did not stream everything it was asked to: exit 1)."""
    failures = [(f.venue, what, why) for f in feeds for what, why in f.stats.failures.items()]
    for venue, what, why in failures:
        err.print(f"[bold red]error:[/] {venue} {what}: {escape(why)}", highlight=False, soft_wrap=True)
    return bool(failures)


def _warn_no_balance(settings: Settings, venues: list[str]) -> None:
    """A venue without paper balance can never fill a leg: say so before the run, not after."""
    bal = settings.paper.balances
    poor = [v for v in venues if not any(a > 0 for a in bal.get(v, {}).values())]
    if poor:
        warn(f"no paper balance for {', '.join(poor)}: no trade can use {'it' if len(poor) == 1 else 'them'} "
             f"(set [paper.balances.{poor[0]}] in the settings, e.g. USDT = 10000, BTC = 1)")


def _never_connected(feeds: list[Any]) -> str:
    """Venues that never delivered a frame: the run tells nothing about them."""
    dead = [f.venue for f in feeds if not f.stats.connects and not f.stats.messages]
    if not dead:
        return ""
    why = "; ".join(f"{f.venue}: {f.stats.last_error}" for f in feeds if f.venue in dead and f.stats.last_error)
    return f"never connected: {', '.join(dead)}" + (f" ({why})" if why else "")


def _money(engine) -> dict[str, object]:  # type: ignore[no-untyped-def]
    st = engine.executor.stats
    return {"simulated": False, "trades_by_status": dict(st.by_status),
            "expected_pnl": str(st.expected_pnl), "realized_pnl": str(st.realized_pnl)}


def _print_feeds(rows) -> None:  # type: ignore[no-untyped-def]
    """One row per venue: (venue, stats) pairs, or feeds. For a DEX venue (path ``dex``) messages
    are pool updates, disconnects failed event polls, stale evaluations skipped on stale pools."""
    t = Table(title="Feeds")
    for col in ("venue", "path", "connects", "disconnects", "stale", "messages", "bad", "snapshots"):
        t.add_column(col, justify="left" if col in ("venue", "path") else "right")
    for row in rows:
        venue, s = row if isinstance(row, tuple) else (row.venue, row.stats)
        t.add_row(venue, s.path, str(s.connects), str(s.disconnects), str(s.stale), f"{s.messages:,}",
                  str(s.bad_messages), str(s.snapshots))
    console.print(t)


def _dex_table(dex) -> RenderableType:  # type: ignore[no-untyped-def]
    """The DEX pools of the run (state, updates, opportunities, trades) and the last DEX
    opportunities with what became of them: live view and end-of-run summary."""
    from rich.console import Group

    from cryptoarb.dex.arb import pool_mid

    mode = f"executing as {dex.signer.address}" if dex.executing else "DETECTION ONLY, no ARB_DEX_PRIVATE_KEY"
    t = Table(title=f"DEX pools — {mode}")
    for col in ("venue", "pair", "mid", "block", "state", "updates", "opps", "trades"):
        t.add_column(col, justify="left" if col in ("venue", "pair", "state") else "right")
    for e in dex.entries:
        s = dex.stats[e.venue]
        mid = f"{pool_mid(e.pool, e.base):,.2f}" if e.pool.healthy else "-"
        state = "healthy" if e.pool.healthy else f"UNHEALTHY: {e.pool.reason[:60]}"
        t.add_row(e.pool.venue, f"{e.base.symbol}/{e.quote.symbol}", mid, str(e.pool.block), state,
                  f"{s.messages:,}", f"{s.opportunities:,}", f"{s.trades:,}")
    if not dex.recent:
        return t
    r = Table(title="last DEX opportunities", title_justify="left")
    for col in ("#", "pair", "buy", "sell", "qty", "net bps", "expected", "state", "realised"):
        r.add_column(col, justify="left" if col in ("pair", "buy", "sell", "state") else "right")
    for seen in reversed(dex.recent):
        o = seen.opp.opportunity
        real = f"{seen.trade.realized_pnl:,.4f}" if seen.trade is not None and seen.trade.closed_ns else "-"
        r.add_row(str(o.id), o.group, o.buy.venue, o.sell.venue, f"{o.qty_base:.6g}", f"{o.profit_bps:.1f}",
                  f"{o.profit_quote:,.4f}", seen.state, real)
    return Group(t, r)


def _print_dex_summary(d: dict[str, object]) -> None:
    t = Table(title="DEX summary" + ("" if d["executing"] else " — detection only, nothing traded"))
    t.add_column("metric")
    t.add_column("value", justify="right")
    swaps: dict[str, int] = d["swaps"]  # type: ignore[assignment]
    by_status: dict[str, int] = d["trades_by_status"]  # type: ignore[assignment]
    rows = [
        ("DEX execution", "on: DEX leg on chain first, then the CEX leg" if d["executing"]
         else "OFF (no ARB_DEX_PRIVATE_KEY): opportunities recorded, not traded"),
        ("opportunities", f"{d['opportunities']:,}"),
        ("stale-pool skips / failed polls", f"{d['stale_skips']:,} / {d['poll_failures']:,}"),
        ("trades by status", ", ".join(f"{k} {v}" for k, v in sorted(by_status.items())) or "-"),
        ("swaps mined / reverted / rejected / dropped",
         " / ".join(str(swaps.get(k, 0)) for k in ("mined", "reverted", "rejected", "dropped"))),
        ("failed legs", str(d["failed_legs"])),
        ("expected PnL (quote)", f"{Decimal(str(d['expected_pnl'])):,.6f}"),
        ("realised PnL incl. gas (quote)", f"{Decimal(str(d['realized_pnl'])):,.6f}"),
        ("gas paid by swaps (native)", f"{Decimal(int(str(d['gas_wei']))) / Decimal(10**18):.9f}"),
        ("gas paid by approvals (native)", f"{Decimal(int(str(d['approvals_gas_wei']))) / Decimal(10**18):.9f}"),
    ]
    wallets: dict[str, dict[str, str]] = d["wallets"]  # type: ignore[assignment]
    rows += [(f"{w} balances", ", ".join(f"{c} {Decimal(a):,.6f}" for c, a in bal.items()))
             for w, bal in wallets.items()]
    for k, v in rows:
        t.add_row(k, v)
    console.print(t)


def _dex_summary(dex: DexRuntime) -> dict[str, Any]:
    """What the run did on chain: the ``dex`` part of the live summary."""
    from collections import Counter

    runners = [ch.runner for ch in dex.chains.values() if ch.runner is not None]
    swaps = Counter(out.status for r in runners for out in r.outcomes)
    by_status: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    for r in runners:
        by_status.update(r.stats.by_status)
        failed.update(r.stats.failed_by_reason)
    bal = dex.engine.portfolio.balances
    wallets = {ch.wallet: {c: str(a) for c, a in sorted(bal.get(ch.wallet, {}).items())}
               for ch in dex.chains.values() if ch.runner is not None}
    return {
        "executing": dex.executing,
        "signer": dex.signer.address if dex.signer else None,
        "venues": {v: vars(s).copy() for v, s in dex.stats.items()},
        "unhealthy_pools": {e.label: e.pool.reason for e in dex.entries if not e.pool.healthy},
        "opportunities": dex.opportunities,
        "stale_skips": sum(s.stale for s in dex.stats.values()),
        "trades_by_status": dict(by_status),
        "swaps": dict(swaps),
        "failed_legs": sum(r.stats.failed_legs for r in runners),
        "failed_by_reason": dict(failed),
        "expected_pnl": str(sum((r.stats.expected_pnl for r in runners), Decimal(0))),
        "realized_pnl": str(sum((r.stats.realized_pnl for r in runners), Decimal(0))),
        "gas_wei": sum(r.stats.gas_wei for r in runners),
        "approvals_gas_wei": sum(ch.approvals_gas_wei for ch in dex.chains.values()),
        "poll_failures": sum(ch.poll_failures for ch in dex.chains.values()),
        "errors": dex.errors,
        "wallets": wallets,
    }


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
    from cryptoarb.live.loop import run_in_loop
    from cryptoarb.live.recorder import Recorder
    from cryptoarb.live.runner import build_feeds, run_feeds

    check_output_dir(out, "--out")  # before connecting: not "0 lines" after the run
    from cryptoarb.stopping import stop_on_signals

    with stop_on_signals() as signalled:
        req = discovery_request(symbols, DEFAULT_QUOTE, "spot,swap", 2, None, False)  # --symbols all: defaults
        settings, lp, engine, _, _ = _live_setup(config, None, True, venues, symbols, "record", req=req)
        native = [v for v in lp.venues if lp.paths[v] == "native"]
        if len(native) != len(lp.venues):
            fail(f"recording needs native handlers; not native: {', '.join(set(lp.venues) - set(native))}")
        stop = asyncio.Event()
        recorder = Recorder(out, on_error=lambda _msg: stop.set())
        feeds = build_feeds(engine, lp, settings, recorder)
        try:
            with Progress(SpinnerColumn(), TextColumn("[bold]recording"), TextColumn("{task.fields[n]:,} lines"),
                          TimeElapsedColumn(), console=err, transient=True) as progress:
                task = progress.add_task("rec", total=None, n=0)
                run_in_loop(settings.live.loop, run_feeds(engine, feeds, duration, stop=stop, signalled=signalled,
                                      on_refresh=lambda: progress.update(task, n=recorder.lines)))
        except FeedError as e:
            fail(str(e))
        finally:
            recorder.close()
        if recorder.error:
            fail(f"--out {out}: {recorder.error} (the {recorder.lines:,} line(s) before it are kept)")
        console.print(f"recorded {recorder.lines:,} lines into {len(set(recorder.paths))} file(s) under {out}")
        _print_feeds(feeds)
    refused = _report_failures(feeds)
    nothing = _never_connected(feeds) or ("" if recorder.lines else "0 lines recorded")
    if refused and not signalled.name:
        raise typer.Exit(1)
    finish(interrupted=signalled.name, nothing=nothing)
