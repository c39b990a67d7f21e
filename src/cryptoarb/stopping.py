"""Ctrl-C and SIGTERM as a flag, not an exception.

A KeyboardInterrupt can land anywhere: half-way through a book update, inside the storage
writer's hand-off, or (for ``arb``) inside Typer, which turns it into exit code 130 before our
code can close the run. Long-running loops (replay, bench, the demo) instead run inside
:func:`stop_on_signals` and check ``flag.signum`` between messages: the loop ends at a message
boundary and the caller still flushes storage, closes the run and reports what was done. A
second signal means the user insists: it raises KeyboardInterrupt at once.

The asyncio live runs do the same with ``loop.add_signal_handler`` (``live/runner.py``).
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopFlag:
    """``signum`` is 0 until SIGINT/SIGTERM arrives, then the signal's number."""

    __slots__ = ("signum",)

    def __init__(self) -> None:
        self.signum = 0

    def __bool__(self) -> bool:
        return self.signum != 0

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""


@contextlib.contextmanager
def stop_on_signals(flag: StopFlag | None = None) -> Iterator[StopFlag]:
    """Install SIGINT/SIGTERM handlers that set ``flag`` (restored on exit).

    Outside the main thread no handler can be installed; the flag then never sets and Ctrl-C
    stays a KeyboardInterrupt for the caller to catch.
    """
    flag = flag if flag is not None else StopFlag()

    def handler(signum: int, _frame: Any) -> None:
        if flag.signum:
            raise KeyboardInterrupt  # the second signal: stop now
        flag.signum = signum

    previous: dict[signal.Signals, Any] = {}
    try:
        for sig in STOP_SIGNALS:
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread
        pass
    try:
        yield flag
    finally:
        for sig, prev in previous.items():
            signal.signal(sig, prev)
