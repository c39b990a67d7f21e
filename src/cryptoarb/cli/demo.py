"""``arb demo``: the whole engine on the built-in SIMULATED market (with the API and dashboard)."""

from __future__ import annotations

from typing import Annotated

import typer

from cryptoarb.cli.common import (
    ConfigOpt,
    DbOpt,
    NoStoreOpt,
    _close_sink,
    _open_sink,
    _settings,
    app,
    console,
    finish,
)

ApiOpt = Annotated[bool, typer.Option("--api/--no-api", help="Serve the API and dashboard beside the run (dev mode: "
                                                             "a one-off admin is created and printed)")]
ApiHostOpt = Annotated[str | None, typer.Option("--api-host", help="API address (default: api.host, 127.0.0.1)")]
ApiPortOpt = Annotated[int | None, typer.Option("--api-port", min=0, max=65535,
                                                help="API port (default: api.port, 8000; 0: any free port)")]


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
    api: ApiOpt = True,
    api_host: ApiHostOpt = None,
    api_port: ApiPortOpt = None,
) -> None:
    """Run the whole engine on a built-in SIMULATED multi-venue market, paper-trading into SQLite.

    Ctrl-C / SIGTERM stop it between two messages: the run is closed in storage, the summary
    printed, exit code 130.
    """
    from cryptoarb.cli.api import start_beside, stop_beside
    from cryptoarb.cli.risk import engine_control
    from cryptoarb.demo.run import build_demo, demo_settings, print_summary
    from cryptoarb.stopping import stop_on_signals
    from cryptoarb.venues.simulated import SIM_VENUES

    # the run stores the balances and latencies the demo trades with, not the stock ones
    settings = demo_settings(_settings(config, db, no_store), list(SIM_VENUES))
    with stop_on_signals() as stop:  # from here on a signal never skips closing the run
        sink = _open_sink(settings, "demo", {"seed": seed, "duration": duration, "simulated": True})
        started = None
        try:
            d = build_demo(settings, sink=sink, seed=seed)
            if api:  # a busy default port is a warning (the demo runs anyway); a chosen one is an error
                started = start_beside(d.engine, settings, "demo", api_host, api_port, dev=True,
                                       paths=dict.fromkeys(SIM_VENUES, "simulated"), required=api_port is not None)
            with engine_control(d.engine, settings):  # arb kill / SIGUSR1, arb resume / SIGUSR2, alerts
                summary = d.run(duration, live=not no_live, speed=speed, console=console, stop=stop,
                                tick=started[1].pump if started else None)
        finally:
            stop_beside(started)
            _close_sink(sink, settings.storage.url)
        print_summary(summary, console)
    finish(interrupted=stop.name if stop.signum else "")
