"""``arb demo``: the whole engine on the built-in SIMULATED market."""

from __future__ import annotations

from typing import Annotated

import typer

from cryptoarb.cli.common import ConfigOpt, DbOpt, NoStoreOpt, _close_sink, _open_sink, _settings, app, console


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
    from cryptoarb.demo.run import print_summary, run_demo

    settings = _settings(config, db, no_store)
    sink = _open_sink(settings, "demo", {"seed": seed, "duration": duration, "simulated": True})
    try:
        summary = run_demo(
            settings, duration, sink=sink, live=not no_live, speed=speed, seed=seed, console=console
        )
    finally:
        _close_sink(sink, settings.storage.url)
    print_summary(summary, console)
