"""The ``arb`` command line (Typer + rich). Thin: it assembles the parts and reports.

One module per command group: :mod:`.replay`, :mod:`.bench`, :mod:`.demo`, :mod:`.live` (``run``,
``record``); :mod:`.common` holds what they share. Importing this package registers every command.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cryptoarb import __version__
from cryptoarb.cli.common import UserError, app, console, err, fail
from cryptoarb.cli.obs import LogFileOpt, LogFormatOpt, LogLevelOpt, setup_observability
from cryptoarb.config import ConfigError

__all__ = ["UserError", "app", "console", "err", "fail", "main"]


def _print_version(value: bool) -> None:
    if value:
        console.print(f"cryptoarb {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", "-V", callback=_print_version, is_eager=True,
                                          help="Print the version and exit")] = False,
    log_level: LogLevelOpt = None,
    log_file: LogFileOpt = None,
    log_format: LogFormatOpt = None,
) -> None:
    """cryptoarb: find and trade crypto arbitrage, net of every cost."""
    setup_observability(log_level, log_file, log_format)


@app.command()
def version() -> None:
    """Print the version."""
    console.print(f"cryptoarb {__version__}")


# importing the command modules registers their commands on ``app``, in this order in --help
from cryptoarb.cli import replay as _replay  # noqa: E402, F401, I001
from cryptoarb.cli import bench as _bench  # noqa: E402, F401
from cryptoarb.cli import demo as _demo  # noqa: E402, F401
from cryptoarb.cli import live as _live  # noqa: E402, F401
from cryptoarb.cli import ml as _ml  # noqa: E402, F401
from cryptoarb.cli import risk as _risk  # noqa: E402, F401
from cryptoarb.cli import inventory as _inventory  # noqa: E402, F401
from cryptoarb.cli import api as _api, users as _users, views as _views  # noqa: E402, F401
from cryptoarb.cli import cycles as _cycles  # noqa: E402, F401
from cryptoarb.cli import roles as _roles  # noqa: E402, F401


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
