"""Where log records go: readable text by default, JSON lines when configured (for a log
collector), to stderr and optionally a file, every record scrubbed of secrets.

Set once per process by the ``arb`` root options (``--log-level``, ``--log-file``,
``--log-format``; or ``ARB_LOG_LEVEL``, ``ARB_LOG_FILE``, ``ARB_LOG_FORMAT`` in a container).
Logging is never on the hot path: the engine logs nothing per message; what logs is the
storage writer, the feeds' connection handling, the roles' loops, the API. The handlers get the
:class:`cryptoarb.redact.RedactingFilter` of the process, so the secrets of the settings loaded
later (``hide_in_logs``) are scrubbed from every record, in every format.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

LEVELS = ("debug", "info", "warning", "error", "critical")
FORMATS = ("text", "json")

#: LogRecord attributes that are not ``extra=`` fields
_STD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}

_installed: list[logging.Handler] = []


class LogConfigError(ValueError):
    """A log option that cannot be used: the message names it (one line, exit 2)."""


def _iso(created: float) -> str:
    t = time.gmtime(created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(created % 1 * 1000):03d}Z"


class TextFormatter(logging.Formatter):
    """``2026-11-30T15:32:05.123Z WARNING cryptoarb.storage.writer: message``."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_iso(record.created)} {record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + record.exc_text
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg``, ``pid``, ``thread``,
    ``exc`` when there is one, and every ``extra=`` field (as a string when not JSON)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"ts": _iso(record.created), "level": record.levelname.lower(), "logger": record.name,
                               "msg": record.getMessage(), "pid": record.process, "thread": record.threadName}
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        for k, v in vars(record).items():
            if k not in _STD and not k.startswith("_"):
                out[k] = v if isinstance(v, str | int | float | bool) or v is None else str(v)
        return json.dumps(out, ensure_ascii=False, default=str)


def resolve(level: str | None, file: Path | None, fmt: str | None) -> tuple[int | None, Path | None, str | None]:
    """The options, else the ``ARB_LOG_*`` variables, checked: (level number or None when not
    asked, file, format). Raises :class:`LogConfigError` naming the bad option."""
    src_level = "--log-level" if level is not None else "ARB_LOG_LEVEL"
    level = level if level is not None else os.environ.get("ARB_LOG_LEVEL") or None
    src_fmt = "--log-format" if fmt is not None else "ARB_LOG_FORMAT"
    fmt = fmt if fmt is not None else os.environ.get("ARB_LOG_FORMAT") or None
    if file is None and os.environ.get("ARB_LOG_FILE"):
        file = Path(os.environ["ARB_LOG_FILE"])
    n = None
    if level is not None:
        if level.lower() not in LEVELS:
            raise LogConfigError(f"{src_level} {level!r}: use one of {', '.join(LEVELS)}")
        n = getattr(logging, level.upper())
    if fmt is not None and fmt.lower() not in FORMATS:
        raise LogConfigError(f"{src_fmt} {fmt!r}: use text or json")
    if file is not None:
        if file.is_dir():
            raise LogConfigError(f"--log-file {file}: is a directory; give a file name")
        try:
            with file.open("a"):
                pass
        except OSError as e:
            raise LogConfigError(f"--log-file {file}: cannot write: {e.strerror or e}") from None
    return n, file, fmt.lower() if fmt else None


def configure(level: int | None, file: Path | None, fmt: str | None) -> None:
    """Install the handlers (replacing those of an earlier call). Nothing asked: the default of
    every command stays as it was (warnings and errors, readable, on stderr; ``redact.py``)."""
    from cryptoarb.redact import install_log_redaction

    root = logging.getLogger()
    for h in _installed:
        root.removeHandler(h)
        h.close()
    _installed.clear()
    if level is None and file is None and fmt is None:
        return
    lvl = logging.WARNING if level is None else level
    formatter: logging.Formatter = JsonFormatter() if fmt == "json" else TextFormatter()
    if file is not None:  # the file gets every record at the level; the terminal keeps warnings
        fh = logging.FileHandler(file, encoding="utf-8")
        fh.setLevel(lvl)
        fh.setFormatter(formatter)
        _installed.append(fh)
    stderr = _Stderr()
    stderr.setLevel(max(lvl, logging.WARNING) if file is not None else lvl)
    stderr.setFormatter(formatter)
    _installed.append(stderr)
    for h in _installed:
        root.addHandler(h)
    root.setLevel(min(h.level for h in _installed))
    install_log_redaction()  # adds the process's redacting filter to every root handler


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (a test runner may swap it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass
