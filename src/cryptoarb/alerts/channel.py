"""One delivery channel: an apprise URL, its own bounded queue and its own worker thread.

One thread per channel, so a hanging Slack never delays the e-mail, and neither ever delays
trading: the engine's thread only ever does a non-blocking ``put_nowait`` (a full queue drops
the alert and counts it). Sending is apprise's job (``plugin.notify``), bounded by its socket
timeouts (``cto`` / ``rto`` URL parameters); an exception from a plugin is counted as a failure
and the worker carries on.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from cryptoarb.alerts.throttle import Alert

log = logging.getLogger(__name__)

_STOP = object()  # the sentinel that ends a worker once the alerts before it are sent


class Channel:
    """``send`` is called in the worker thread; the default is apprise's plugin for ``url``."""

    def __init__(self, url: str, label: str, queue_size: int,
                 render: Callable[[Alert], tuple[str, str]],
                 send: Callable[[str, str, str], bool] | None = None) -> None:
        self.label = label  # the URL as apprise shows it (secrets elided): logs and stats
        self.render = render
        self._send = send or _apprise_sender(url)
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self.sent = 0
        self.failed = 0
        self.dropped = 0  # queue full, or still queued when the run ended
        self.busy_since = 0.0  # monotonic start of the send in progress (0: idle)
        self._thread = threading.Thread(target=self._run, name=f"alerts:{label[:40]}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def offer(self, alert: Alert) -> bool:
        """Never blocks: False (and counted) when the queue is full."""
        try:
            self.queue.put_nowait(alert)
        except queue.Full:
            self.dropped += 1
            return False
        return True

    def stop(self, deadline: float) -> None:
        """Let the worker send what is queued until ``deadline`` (monotonic); what is left then is
        counted as dropped. A worker stuck in a send is abandoned (daemon thread)."""
        while True:
            try:
                self.queue.put(_STOP, timeout=max(0.0, min(0.05, deadline - time.monotonic())))
                break
            except queue.Full:
                if time.monotonic() >= deadline:
                    break
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            left = sum(1 for x in list(self.queue.queue) if x is not _STOP)
            self.dropped += left + (1 if self.busy_since else 0)

    def stats(self) -> dict[str, Any]:
        return {"sent": self.sent, "failed": self.failed, "dropped": self.dropped, "queued": self.queue.qsize()}

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is _STOP:
                return
            title, body = self.render(item)
            self.busy_since = time.monotonic()
            try:
                ok = self._send(title, body, item.level)
            except Exception as e:  # a plugin bug must not end the worker
                log.warning("alert channel %s raised %s", self.label, type(e).__name__)
                ok = False
            self.busy_since = 0.0
            if ok:
                self.sent += 1
            else:
                self.failed += 1
                log.warning("alert channel %s: delivery failed (%s)", self.label, item.kind)


def _apprise_sender(url: str) -> Callable[[str, str, str], bool]:
    import apprise

    plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if plugin is None:
        raise ValueError("not a URL apprise accepts")  # settings validation catches this earlier
    types = {"info": apprise.NotifyType.INFO, "success": apprise.NotifyType.SUCCESS,
             "warning": apprise.NotifyType.WARNING, "failure": apprise.NotifyType.FAILURE}

    def send(title: str, body: str, level: str) -> bool:
        return bool(plugin.notify(body=body, title=title, notify_type=types.get(level, apprise.NotifyType.WARNING)))

    return send


def detail_text(detail: dict[str, Any]) -> str:
    return json.dumps(detail, default=str, sort_keys=True, separators=(", ", ": "))
