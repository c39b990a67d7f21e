"""What every ``arb`` command shares: the Typer app, the consoles, common options, settings and the
storage sink of a run. Each command group lives in its own module of this package."""

from __future__ import annotations

import json
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

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


#: exit codes, the same for every command (README "Exit codes")
EXIT_USER_ERROR = 2  # bad input, settings or output path: one ``error:`` line, nothing started
EXIT_NOTHING = 3  # the command ran but produced nothing usable: a ``warning:`` line says why
EXIT_INTERRUPTED = 130  # Ctrl-C / SIGTERM: stopped cleanly, storage flushed, partial results kept


class UserError(Exception):
    """An error caused by the user's input: shown as one line, exit code 2."""


def fail(msg: str) -> NoReturn:
    err.print(f"[bold red]error:[/] {msg}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_USER_ERROR)


def warn(msg: str) -> None:
    """One ``warning:`` line; ``msg`` is plain text (brackets are shown, not read as markup)."""
    err.print(f"[yellow]warning:[/] {escape(msg)}", highlight=False, soft_wrap=True)


def finish(interrupted: str = "", nothing: str = "") -> None:
    """The end of a command that did its work: exit 130 after an interrupt (the partial results
    are already printed and written), 3 with a warning when nothing usable came out, else 0."""
    if interrupted:
        err.print(f"[yellow]interrupted[/] ({interrupted}): stopped cleanly; the results above are partial",
                  highlight=False)
        raise typer.Exit(EXIT_INTERRUPTED)
    if nothing:
        warn(nothing)
        raise typer.Exit(EXIT_NOTHING)


def check_output_file(path: Path, option: str) -> None:
    """Fail now, before any work, if ``path`` cannot be written (not after an hour of replay)."""
    if path.is_dir():
        fail(f"{option} {path}: is a directory; give a file name")
    if not path.parent.is_dir():
        fail(f"{option} {path}: directory {path.parent} does not exist")
    existed = path.exists()
    try:
        with path.open("a"):
            pass
    except OSError as e:
        fail(f"{option} {path}: cannot write: {e.strerror or e}")
    if not existed:
        path.unlink(missing_ok=True)


def check_output_dir(path: Path, option: str) -> None:
    """Create ``path`` if needed and prove a file can be written in it, before any work."""
    if path.exists() and not path.is_dir():
        fail(f"{option} {path}: exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        fail(f"{option} {path}: cannot write there: {e.strerror or e}")


def _settings(config: Path | None, db: str | None, no_store: bool) -> Settings:
    s = load_settings(config)
    upd: dict[str, object] = {}
    if db is not None:
        from cryptoarb.storage.urls import check_storage_url

        try:
            check_storage_url(db)
        except ValueError as e:
            fail(f"--db {e}")
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
