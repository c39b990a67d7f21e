"""What every ``arb`` command shares: the Typer app, the consoles, common options, settings and the
storage sink of a run. Each command group lives in its own module of this package."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from cryptoarb.config import Settings, load_settings

if TYPE_CHECKING:
    from cryptoarb.storage.writer import StorageWriter

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
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
    return s.model_copy(update={"storage": s.storage.model_copy(update=upd)}) if upd else s


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
