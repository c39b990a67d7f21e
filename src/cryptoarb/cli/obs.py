"""The root options every ``arb`` command takes: where logs go, and Sentry when ``SENTRY_DSN``
is set (:mod:`cryptoarb.obs.logs`, :mod:`cryptoarb.obs.errors`; docs/deploy.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cryptoarb.cli.common import fail

LogLevelOpt = Annotated[str | None, typer.Option(
    "--log-level", help="debug, info, warning (default), error, critical [env ARB_LOG_LEVEL]")]
LogFileOpt = Annotated[Path | None, typer.Option(
    "--log-file", help="Also write log records to FILE (appended) [env ARB_LOG_FILE]")]
LogFormatOpt = Annotated[str | None, typer.Option(
    "--log-format", help="text (default, readable) or json (one object per line) [env ARB_LOG_FORMAT]")]


def setup_observability(level: str | None, file: Path | None, fmt: str | None) -> None:
    """Logs as asked, then Sentry if ``SENTRY_DSN`` is set; a bad value is one line, exit 2."""
    from cryptoarb.obs.errors import SentryConfigError, init_sentry
    from cryptoarb.obs.logs import LogConfigError, configure, resolve

    try:
        configure(*resolve(level, file, fmt))
        init_sentry()
    except (LogConfigError, SentryConfigError) as e:
        fail(str(e))
