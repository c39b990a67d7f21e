"""Operator control of a running engine: the signals it answers and the pid file ``arb kill`` finds.

A command that runs an engine (``arb demo``, ``arb replay``, ``arb run``) wraps it in
:func:`operator_control`:

* **SIGUSR1 kills, SIGUSR2 resumes.** The handler only queues the request on the engine
  (``Engine.request``); it is carried out at the start of the next message or tick, before that
  message can produce an order intent. With ``[risk] kill_file`` set, the handler also writes the
  kill file / the resume file (unless ``arb kill`` / ``arb resume`` already wrote it with its own
  actor and reason), so the switch has one state whoever set it: a restarted engine stays
  killed until ``arb resume``.
* **``<kill_file>.pid``** holds the engine's pid while it runs: ``arb kill`` reads it to know an
  engine is there and signals it, so the kill lands at once instead of at the next once-a-second
  poll of the kill file.
* **Alerts**: the engine's risk events and leg failures go to the alert sink, if any.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptoarb.engine import killswitch

log = logging.getLogger(__name__)

KILL_SIGNAL = signal.SIGUSR1
RESUME_SIGNAL = signal.SIGUSR2


def pid_path(kill_file: str | Path) -> Path:
    return Path(f"{kill_file}.pid")


def running_pid(kill_file: str | Path) -> int | None:
    """The pid of the engine running with ``kill_file``, if it is alive (a stale pid file --
    the engine was SIGKILLed -- or a pid now used by another program gives None)."""
    try:
        pid = int(pid_path(kill_file).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid  # alive, another user's: signalling will say so
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():  # Linux: make sure the pid was not reused by another program
        try:
            args = cmdline.read_bytes()
        except OSError:
            return pid
        names = [a.rsplit(b"/", 1)[-1] for a in args.split(b"\0")[:3]]
        if b"cryptoarb" not in args and b"arb" not in names:
            return None
    return pid


@contextlib.contextmanager
def operator_control(engine: Any, alerts: Any = None) -> Iterator[None]:
    """Signals, pid file and alerts for ``engine`` while the block runs (main thread; elsewhere
    no signal handler can be installed and only the kill file and alerts work)."""
    if alerts is not None:
        from cryptoarb.alerts import attach

        attach(engine, alerts)
    path = engine.risk.config.kill_file

    def on_kill(signum: int, _frame: Any) -> None:
        if path and not Path(path).exists():
            with contextlib.suppress(OSError):
                killswitch.request_kill(path, "SIGUSR1 received", "signal")
        engine.request("kill", "signal", f"{signal.Signals(signum).name} received")

    def on_resume(signum: int, _frame: Any) -> None:
        if path and not killswitch.resume_path(path).exists():
            with contextlib.suppress(OSError):
                killswitch.request_resume(path, "signal")
        engine.request("resume", "signal", f"{signal.Signals(signum).name} received")

    previous: dict[signal.Signals, Any] = {}
    try:
        for sig, fn in ((KILL_SIGNAL, on_kill), (RESUME_SIGNAL, on_resume)):
            previous[sig] = signal.signal(sig, fn)
    except ValueError:  # not the main thread
        pass
    pidfile = pid_path(path) if path and previous else None
    if pidfile is not None:
        try:
            pidfile.write_text(f"{os.getpid()}\n")
        except OSError as e:
            pidfile = None  # the kill file itself is still polled
            log.warning("cannot write %s (%s): arb kill / arb resume will not find this engine; "
                        "the kill file is still watched", pid_path(path), e.strerror or e)
    try:
        yield
    finally:
        if pidfile is not None:
            with contextlib.suppress(OSError, ValueError):
                if int(pidfile.read_text().split()[0]) == os.getpid():
                    pidfile.unlink()
        for sig, prev in previous.items():
            signal.signal(sig, prev)
