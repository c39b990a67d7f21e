"""The kill switch across processes: a file the running engine watches.

``arb kill`` / ``arb resume`` (and anything else: a signal handler, the API, an operator with
``touch``) talk to a running engine through two files next to each other:

* ``<path>`` existing means *kill*: the engine refuses every new intent and reports the open
  orders to cancel. Its content (optional) is the reason.
* ``<path>.resume`` existing means *resume*: the engine lifts the kill switch and deletes this
  file. Removing the kill file alone never resumes trading (resume only by explicit command).

The engine polls at most once per second of event time (``Engine._risk_poll``); a stat call,
off the per-message path.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def resume_path(path: str | Path) -> Path:
    return Path(f"{path}.resume")


def request_kill(path: str | Path, reason: str = "kill requested", actor: str = "operator") -> None:
    """Ask a running engine to kill (what ``arb kill`` calls); clears a pending resume."""
    p = Path(path)
    resume_path(p).unlink(missing_ok=True)
    p.write_text(f"{actor}: {reason}\n")


def request_resume(path: str | Path, actor: str = "operator") -> None:
    """Ask a running engine to resume (what ``arb resume`` calls): the kill file goes away and
    the resume file tells the engine it was an explicit command."""
    p = Path(path)
    p.unlink(missing_ok=True)
    resume_path(p).write_text(f"{actor}\n")


def read_kill(path: str) -> tuple[str, str] | None:
    """(actor, reason) when the kill file exists, else None."""
    try:
        text = Path(path).read_text(errors="replace").strip()
    except FileNotFoundError:
        return None
    except OSError as e:
        return "file", f"kill file {path} unreadable ({e.strerror}): treated as kill"
    actor, sep, reason = text.partition(": ")
    if not sep:
        return "file", text or f"kill file {path} exists"
    return actor or "file", reason


def take_resume(path: str) -> str | None:
    """The actor of a pending resume request (the request is consumed), else None."""
    p = resume_path(path)
    try:
        actor = p.read_text(errors="replace").strip() or "file"
    except FileNotFoundError:
        return None
    except OSError:
        actor = "file"
    with contextlib.suppress(OSError):
        os.unlink(p)
    return actor
