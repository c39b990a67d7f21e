"""The event loop of a live run (``[live] loop``): uvloop or the standard library's.

uvloop (libuv, pinned) schedules callbacks and reads sockets with less Python between them;
the live runner's loop is created here, and only here, so replay and tests keep asyncio's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

LOOPS: tuple[str, ...] = ("uvloop", "asyncio")


def run_in_loop(loop: str, main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion in a new loop of the named kind (``LOOPS``)."""
    if loop == "uvloop":
        import uvloop

        return uvloop.run(main)
    if loop == "asyncio":
        return asyncio.run(main)
    main.close()
    raise ValueError(f"unknown event loop {loop!r}: expected one of {', '.join(LOOPS)}")


__all__ = ["LOOPS", "run_in_loop"]
