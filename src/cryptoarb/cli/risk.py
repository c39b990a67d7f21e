"""``arb kill`` / ``arb resume``: the kill switch of a running engine, from another terminal.

They find the engine through ``[risk] kill_file`` of the same settings (``--config`` or
``ARB_RISK__KILL_FILE``): write the kill / resume file (what the engine polls, and what keeps a
restarted engine killed) and signal the pid in ``<kill_file>.pid`` so the engine acts at its
next message instead of its next once-a-second poll. ``engine_control`` is what the commands
running an engine wrap it in: those signals, the pid file, and alerts (``[alerts]``).
"""

from __future__ import annotations

import contextlib
import getpass
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.markup import escape

from cryptoarb.cli.common import ConfigOpt, app, console, err
from cryptoarb.cli.common import fail as _fail
from cryptoarb.config import Settings, load_settings

ReasonOpt = Annotated[str, typer.Option("--reason", "-r", help="Why (recorded in the audit log and the alert)")]
ActorOpt = Annotated[str | None, typer.Option("--actor", help="Who asks (default: the login name)")]


def fail(msg: str) -> NoReturn:
    _fail(escape(msg))  # plain text: "[risk]" is not markup


def _actor(actor: str | None) -> str:
    if actor is not None:
        if not actor.strip() or ":" in actor or "\n" in actor:
            fail("--actor must be a non-empty name without ':' or line breaks")
        return actor.strip()
    with contextlib.suppress(Exception):
        return getpass.getuser()
    return "operator"


def _target(config: Path | None) -> tuple[str, int]:
    """The kill file from the settings and the pid of the engine running with it."""
    from cryptoarb.engine.control import pid_path, running_pid

    if config is not None and not config.is_file():
        fail(f"--config {config}: no such file")
    path = load_settings(config).risk.kill_file
    if not path:
        where = f"in {config}" if config else "in the settings (--config FILE or ARB_RISK__KILL_FILE)"
        fail(f"[risk] kill_file is not set {where}: it is how arb kill / arb resume reach a running engine")
    pid = running_pid(path)
    if pid is None:
        fail(f"no engine is running with kill file {path} ({pid_path(path)} names no live arb process); "
             "nothing changed")
    return path, pid


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        fail(f"engine pid {pid} exited just now; the request file stays for the next start")
    except PermissionError:
        fail(f"not allowed to signal engine pid {pid} (another user's); the request file was written and is "
             "polled once per second")


@app.command()
def kill(
    reason: ReasonOpt = "kill requested by arb kill",
    config: ConfigOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Stop a running engine's trading now: no new order, open orders cancelled (docs/risk.md).

    Writes the kill file of [risk] kill_file and signals the engine (SIGUSR1), which refuses every
    new intent from its next message on. Only `arb resume` lifts it. Exit 2 when no engine runs
    with these settings.
    """
    from cryptoarb.engine import killswitch
    from cryptoarb.engine.control import KILL_SIGNAL

    if not reason.strip() or "\n" in reason:
        fail("--reason must be one non-empty line")
    who = _actor(actor)
    path, pid = _target(config)
    try:
        killswitch.request_kill(path, reason.strip(), who)
    except OSError as e:
        fail(f"cannot write kill file {path}: {e.strerror or e}")
    _signal(pid, KILL_SIGNAL)
    console.print(f"kill requested: engine pid {pid} stops new orders at its next message "
                  f"(kill file {escape(path)}; `arb resume` lifts it)", highlight=False)


@app.command()
def resume(
    config: ConfigOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Lift the kill switch of a running engine (the only way: nothing resumes by itself).

    Removes the kill file, writes <kill_file>.resume and signals the engine (SIGUSR2). Breakers
    keep their own state. Exit 2 when no engine runs with these settings.
    """
    from cryptoarb.engine import killswitch
    from cryptoarb.engine.control import RESUME_SIGNAL

    who = _actor(actor)
    path, pid = _target(config)
    try:
        killswitch.request_resume(path, who)
    except OSError as e:
        fail(f"cannot write resume file {killswitch.resume_path(path)}: {e.strerror or e}")
    _signal(pid, RESUME_SIGNAL)
    console.print(f"resume requested: engine pid {pid} trades again from its next message (if it was killed)",
                  highlight=False)


@contextlib.contextmanager
def engine_control(engine: Any, settings: Settings) -> Iterator[Any]:
    """Around a running engine: kill/resume signals, the pid file ``arb kill`` finds, and the
    alert sink of ``[alerts]`` (yielded; None without URLs), closed with a summary line."""
    from cryptoarb.alerts import AlertSink
    from cryptoarb.engine.control import operator_control

    sink = AlertSink.from_settings(settings, source=f"run {engine.run_id}")
    if sink is not None:
        sink.start()
    try:
        with operator_control(engine, sink):
            yield sink
    finally:
        if sink is not None:
            sink.close()
            err.print(f"[dim]{escape(sink.summary_line())}[/]", highlight=False, soft_wrap=True)
