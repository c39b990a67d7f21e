"""The distributed roles: ``arb engine``, ``arb recorder``, ``arb analytics`` (docs/distributed.md).

Thin: settings, then the bus and the database are reached first (an unreachable Redis or
PostgreSQL is one ``error:`` line and exit 2 within seconds, never a hang), then the role runs
until its work is done (a replay), it is idle for ``--until-idle`` seconds, or SIGINT/SIGTERM
(exit 130 after a clean stop). Every role serves ``/metrics`` and ``/health``.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer

from cryptoarb.cli.common import ConfigOpt, _settings, app, check_output_file, err, fail, finish, warn
from cryptoarb.config import Settings

BusOpt = Annotated[str | None, typer.Option("--bus", help="Bus URL: redis://HOST:PORT/DB (default [bus] url)")]
PortOpt = Annotated[int | None, typer.Option("--metrics-port", min=0, max=65535,
                                             help="Port of /metrics and /health (0: any free port)")]
ConsumerOpt = Annotated[str | None, typer.Option("--consumer", help="Consumer name in the group (default host-pid)")]
IdleOpt = Annotated[float | None, typer.Option("--until-idle", min=0.1,
                                               help="Stop after SECONDS without an event (default: run until stopped)")]

DEFAULT_PORTS = {"engine": 9101, "recorder": 9102, "analytics": 9103}


def _bus(settings: Settings, url: str | None, required: bool) -> Any:
    from cryptoarb.bus.base import BusError
    from cryptoarb.bus.events import open_transport

    b = settings.bus
    try:
        return open_transport(url or b.url, prefix=b.prefix, maxlen=b.maxlen,
                              required_groups=tuple(b.required_groups) if required else ())
    except BusError as e:
        fail(str(e))


def _serve(settings: Settings, role: str, port: int | None, metrics: Any, health: Any = None) -> Any:
    from cryptoarb.obs.metrics import MetricsServer

    host = settings.bus.metrics_host
    try:
        srv = MetricsServer(metrics, host, DEFAULT_PORTS[role] if port is None else port, health)
    except OSError as e:
        fail(f"--metrics-port {port}: cannot listen on {host}: {e.strerror or e}")
    err.print(f"[dim]{role}: metrics on http://{host}:{srv.port}/metrics[/]", highlight=False)
    return srv


def _consumer_name(name: str | None) -> str:
    return name or f"{socket.gethostname()}-{os.getpid()}"


@app.command()
def engine(
    sources: Annotated[list[str] | None, typer.Argument(help="VENUE:PATH captures to replay (not with --live)")
                       ] = None,
    shard: Annotated[str | None, typer.Option("--shard", help="A shard of the settings (bus.shards.NAME): "
                                                              "its venues and symbols")] = None,
    venues: Annotated[str | None, typer.Option("--venues", help="Venues of this engine, comma-separated")] = None,
    symbols: Annotated[str | None, typer.Option("--symbols", help="Symbols (live), comma-separated")] = None,
    live: Annotated[bool, typer.Option("--live", help="Live public order books instead of captures")] = False,
    duration: Annotated[float | None, typer.Option("--duration", "-d", min=0.1, help="Live: stop after SECONDS")
                        ] = None,
    run_id: Annotated[str | None, typer.Option("--run-id", help="Run id (a restarted replay reuses it)")] = None,
    wait: Annotated[float, typer.Option("--wait", min=0, help="At the end, wait up to SECONDS for the required "
                                                              "groups to acknowledge everything")] = 30.0,
    summary_json: Annotated[Path | None, typer.Option("--summary-json", help="Write the run summary here")] = None,
    config: ConfigOpt = None,
    bus: BusOpt = None,
    metrics_port: PortOpt = None,
) -> None:
    """Run one engine shard and publish its events on the bus.

    Exit codes: 0 done; 1 events not acknowledged within --wait; 2 bad input or Redis
    unreachable; 3 nothing usable came out; 130 SIGINT/SIGTERM.
    """
    from cryptoarb.obs.metrics import Metrics
    from cryptoarb.stopping import stop_on_signals

    settings = _settings(config, None, True)
    vs, syms = _shard(settings, shard, venues, symbols)
    if live == bool(sources):
        fail("give capture files to replay, or --live (not both)")
    if summary_json is not None:
        check_output_file(summary_json, "--summary-json")
    srcs = _sources(sources or [], vs) if not live else []
    rid = run_id or f"{shard or 'engine'}-{uuid.uuid4().hex[:8]}"
    transport = _bus(settings, bus, required=True)
    metrics = Metrics("engine")
    srv = _serve(settings, "engine", metrics_port, metrics)
    interrupted = ""
    nothing = ""
    try:
        with stop_on_signals() as stop:
            if live:
                role, nothing = _engine_live(settings, vs, syms, transport, rid, metrics, duration, stop)
            else:
                role, nothing = _engine_replay(settings, vs, srcs, transport, rid, metrics, stop)
            interrupted = stop.name if stop.signum else ""
        role.stop("live" if live else "replay")
        ok = transport.flush(max(wait, 1.0))
        confirm = getattr(transport, "wait_confirmed", None)
        if ok and confirm is not None and wait > 0:
            ok = confirm(wait)
        summary = {**role.engine.summary(), "run_id": rid, "published": role.sink.seq,
                   "published_by_stream": {k: v[0] for k, v in role.published.items()},
                   "unconfirmed": transport.backlog(), "republished": getattr(transport, "republished", 0)}
        if summary_json is not None:
            summary_json.write_text(json.dumps(summary, indent=2, allow_nan=False))
        err.print(f"[dim]engine {rid}: {role.sink.seq:,} events published, {summary['opportunities']:,} "
                  f"opportunities, {summary['trades']:,} trades[/]", highlight=False)
    finally:
        transport.close()
        srv.close()
    if not ok and not interrupted:
        warn(f"{transport.backlog():,} event(s) not acknowledged by {', '.join(settings.bus.required_groups)} "
             f"within {wait:g}s (is the recorder running?)")
        raise typer.Exit(1)
    finish(interrupted=interrupted, nothing=nothing)


def _shard(settings: Settings, shard: str | None, venues: str | None, symbols: str | None
           ) -> tuple[list[str], list[str]]:
    if shard is not None:
        sh = settings.bus.shards.get(shard)
        if sh is None:
            known = ", ".join(settings.bus.shards) or "none configured"
            fail(f"--shard {shard!r}: no [bus.shards.{shard}] in the settings ({known})")
        vs, syms = list(sh.venues), list(sh.symbols)
    else:
        vs, syms = [], ["BTC/USDT"]
    if venues is not None:
        vs = [v.strip() for v in venues.split(",") if v.strip()]
    if symbols is not None:
        syms = [s.strip() for s in symbols.split(",") if s.strip()]
    return vs, syms


def _sources(sources: list[str], venues: list[str]) -> list[Any]:
    from cryptoarb.replay.reader import CaptureError, parse_sources

    try:
        srcs = parse_sources(sources)
    except CaptureError as e:
        fail(str(e))
    if venues:
        other = sorted({s.venue for s in srcs} - set(venues))
        if other:
            fail(f"captures of {', '.join(other)}: not in this engine's venues ({', '.join(venues)})")
    return srcs


def _engine_replay(settings: Settings, venues: list[str], srcs: list[Any], transport: Any, rid: str, metrics: Any,
                   stop: Any) -> tuple[Any, str]:
    from cryptoarb.replay.reader import CaptureError
    from cryptoarb.replay.run import ReplayError, nothing_built, replay
    from cryptoarb.roles.engine import EngineRole, progress_hook

    role = EngineRole(settings, venues or [s.venue for s in srcs], transport, rid, metrics)
    role.start("replay", {"sources": [str(p) for s in srcs for p in s.paths], "venues": role.engine.venues})
    try:
        result = replay(role.engine, srcs, progress_hook(role), stop=stop)
    except (CaptureError, ReplayError) as e:
        fail(str(e))
    return role, nothing_built(role.engine, srcs, result)


def _engine_live(settings: Settings, venues: list[str], symbols: list[str], transport: Any, rid: str, metrics: Any,
                 duration: float | None, stop: Any) -> tuple[Any, str]:
    import asyncio

    from cryptoarb.engine.engine import build_catalog
    from cryptoarb.live.loop import run_in_loop
    from cryptoarb.live.markets import MarketError
    from cryptoarb.live.runner import LivePlan, build_feeds, plan, run_feeds
    from cryptoarb.roles.engine import EngineRole, split_symbols
    from cryptoarb.venues.registry import UnknownVenue

    if not venues:
        fail("--live needs venues: --venues or --shard")
    if not symbols:
        fail("--live needs symbols: --symbols or the shard's symbols")
    catalog = build_catalog(settings)
    lp = LivePlan([], list(symbols))
    try:
        if symbols == ["all"]:  # --symbols all: discovery with its defaults (docs/scale.md), counts first
            from cryptoarb.cli.discovery import discover_markets
            from cryptoarb.live.discovery import DiscoveryRequest

            lp = discover_markets(settings, catalog, ",".join(venues), DiscoveryRequest())
        else:
            for v, syms in split_symbols(catalog, venues, symbols).items():
                if not syms:
                    fail(f"{v}: none of the symbols ({', '.join(symbols)}) is listed on it; add its own "
                         f"(known: {', '.join(catalog.symbols(v)) or 'none'})")
                part = asyncio.run(plan(settings, catalog, [v], syms))
                lp.venues += part.venues
                lp.instruments.update(part.instruments)
                lp.paths.update(part.paths)
                lp.dex_venues += part.dex_venues
    except (UnknownVenue, MarketError) as e:
        fail(str(e))
    insts = [i for v in lp.venues for i in lp.instruments[v]]
    role = EngineRole(settings, lp.venues, transport, rid, metrics, instruments=insts, catalog=catalog)
    role.start("live", {"venues": lp.venues, "symbols": lp.symbols})
    feeds = build_feeds(role.engine, lp, settings, None)

    def refresh() -> None:
        for f in feeds:
            role.msgs[f.venue] = f.stats.messages
        role.tick()

    run_in_loop(settings.live.loop, run_feeds(role.engine, feeds, duration, on_refresh=refresh, signalled=stop))
    dead = [f.venue for f in feeds if not f.stats.connects and not f.stats.messages]
    return role, f"never connected: {', '.join(dead)}" if dead else ""


def _consume(settings: Settings, role_name: str, group: str, streams: tuple[str, ...], bus: str | None,
             consumer: str | None, metrics_port: int | None, until_idle: float | None, handler: Any,
             health: Any = None) -> str:
    """The loop shared by the consuming roles; returns the signal name if one stopped it."""
    from cryptoarb.bus.events import EventConsumer
    from cryptoarb.roles.consumers import run_consumer
    from cryptoarb.stopping import stop_on_signals

    transport = _bus(settings, bus, required=False)
    srv = _serve(settings, role_name, metrics_port, handler.metrics, health)
    try:
        c = EventConsumer(transport, group, _consumer_name(consumer), streams, handler.handle,
                          claim_idle_ms=settings.bus.claim_idle_ms)
        with stop_on_signals() as stop:
            run_consumer(c, handler.metrics, group, lambda: bool(stop.signum), handler.refresh, until_idle)
        err.print(f"[dim]{role_name}: {c.received:,} events, {c.duplicates:,} duplicates dropped, "
                  f"{c.bad:,} malformed dead-lettered, {c.claimed:,} claimed[/]", highlight=False)
        return stop.name if stop.signum else ""
    finally:
        transport.close()
        srv.close()


@app.command()
def recorder(
    db: Annotated[str | None, typer.Option("--db", help="Database URL (default [storage] url)")] = None,
    outbox: Annotated[Path | None, typer.Option("--outbox", help="Local outbox file (default [bus] outbox)")] = None,
    drain: Annotated[float, typer.Option("--drain", min=0, help="At the end, wait up to SECONDS for the outbox "
                                                                "to reach the database")] = 30.0,
    config: ConfigOpt = None,
    bus: BusOpt = None,
    consumer: ConsumerOpt = None,
    until_idle: IdleOpt = None,
    metrics_port: PortOpt = None,
) -> None:
    """Consume every event and store it in the database, exactly once, through a local outbox.

    Exit codes: 0 done; 1 outbox not drained within --drain; 2 bad input, Redis or the
    database unreachable at start; 130 SIGINT/SIGTERM.
    """
    from cryptoarb.bus.events import RECORDER
    from cryptoarb.bus.outbox import Outbox
    from cryptoarb.obs.metrics import Metrics
    from cryptoarb.roles.consumers import RECORDED, Recorder
    from cryptoarb.storage.db import connect

    settings = _settings(config, db, False)
    path = outbox or Path(settings.bus.outbox)
    check_output_file(path, "--outbox")
    engine = connect(settings.storage.url)  # StorageError: one line, exit 2
    try:
        box = Outbox(path, engine)
    except Exception as e:  # sqlite3.Error: a file that is not an outbox
        fail(f"--outbox {path}: {e}")
    rec = Recorder(box, Metrics("recorder"))
    try:
        interrupted = _consume(settings, "recorder", RECORDER, RECORDED, bus, consumer, metrics_port, until_idle,
                               rec, health=lambda: {"ok": True, "db_up": box.db_up, "outbox": box.depth()})
        drained = box.drain(drain)
        left = box.depth()
    finally:
        box.close()
        engine.dispose()
    err.print(f"[dim]recorder: {box.written:,} events written, {left:,} in the outbox[/]", highlight=False)
    if not drained and not interrupted:
        warn(f"{left:,} event(s) still in the outbox {path} (database unavailable?); "
             "they are written by the next recorder run")
        raise typer.Exit(1)
    finish(interrupted=interrupted)


@app.command()
def analytics(
    summary_json: Annotated[Path | None, typer.Option("--summary-json", help="Aggregates per run, rewritten "
                                                                             "every second")] = None,
    features_out: Annotated[Path | None, typer.Option("--features-out", help="Append feature rows (JSON lines)")
                            ] = None,
    events_out: Annotated[Path | None, typer.Option("--events-out", help="Append one line per opportunity, "
                                                                         "order, fill and trade")] = None,
    config: ConfigOpt = None,
    bus: BusOpt = None,
    consumer: ConsumerOpt = None,
    until_idle: IdleOpt = None,
    metrics_port: PortOpt = None,
) -> None:
    """Consume every event: aggregates per run, the feature log, the event log.

    Exit codes: 0 done; 2 bad input or Redis unreachable; 130 SIGINT/SIGTERM.
    """
    from cryptoarb.bus import messages as M
    from cryptoarb.bus.events import ANALYTICS
    from cryptoarb.obs.metrics import Metrics
    from cryptoarb.roles.consumers import Analytics

    settings = _settings(config, None, True)
    for p, opt in ((summary_json, "--summary-json"), (features_out, "--features-out"), (events_out, "--events-out")):
        if p is not None:
            check_output_file(p, opt)
    a = Analytics(Metrics("analytics"), features_out, events_out, summary_json)
    try:
        interrupted = _consume(settings, "analytics", ANALYTICS, M.ALL_KINDS, bus, consumer, metrics_port,
                               until_idle, a)
    finally:
        a.close()
    finish(interrupted=interrupted)
