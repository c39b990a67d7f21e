"""Model swaps as alerts (kind ``model_swap`` of ``[alerts]``): a registry swap listener that
hands each committed swap to an :class:`cryptoarb.alerts.AlertSink`. Never blocks the swap: the
sink only queues; delivery happens on its channel threads."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from cryptoarb.ml import registry as R


def swap_alert(sink: Any, ev: R.SwapEvent) -> bool:
    """One swap as an alert (a promotion, a roll back or forward)."""
    old = ev.old[:12] if ev.old else "none"
    return bool(sink.notify("model_swap", f"model_swap:{ev.new}", f"model {ev.new[:12]} is live (was {old})",
                       f"by {ev.actor}: {ev.reason}",
                       {"old": ev.old, "new": ev.new, "actor": ev.actor, "reason": ev.reason,
                        "at": ev.at.isoformat()}, "info"))


def start(settings: Any, source: str) -> Callable[[], None]:
    """Alert on every swap in this process from now on (``[alerts] urls``; nothing without
    them). Returns the function that stops alerting and lets the sink deliver what is queued."""
    from cryptoarb.alerts import AlertSink

    sink = AlertSink.from_settings(settings, source=source)
    if sink is None:
        return lambda: None
    sink.start()

    def listener(ev: R.SwapEvent) -> None:
        swap_alert(sink, ev)

    R.add_swap_listener(listener)

    def stop() -> None:
        if listener in R.swap_listeners:
            R.swap_listeners.remove(listener)
        sink.close()

    return stop


@contextmanager
def alerting(settings: Any, source: str) -> Iterator[None]:
    stop = start(settings, source)
    try:
        yield
    finally:
        stop()
