"""``AlertSink``: the one object the rest of cryptoarb tells about things a person must know.

``notify(kind, key, title, body, detail)`` is safe to call from the engine's thread at any
time: it filters (disabled kinds), de-duplicates and rate-limits (:mod:`.throttle`), then hands
the alert to each channel's queue without blocking (:mod:`.channel`). Nothing it does waits for
a network, so a dead or hanging channel costs trading nothing; what could not be delivered is
counted (``stats()``), and the end-of-run line says so.

Every text that leaves goes through :func:`cryptoarb.redact.scrub` with the secrets of the
configured URLs, so an alert never carries a credential (an error message quoting a URL, say).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from cryptoarb.alerts.channel import Channel, detail_text
from cryptoarb.alerts.throttle import Alert, Throttle
from cryptoarb.redact import install_log_redaction, scrub

TITLE_PREFIX = "cryptoarb"


class AlertSink:
    """Alerts to every configured channel, off the caller's thread.

    ``channels``: ``(url, send)`` pairs; ``send`` None means apprise delivers to ``url`` (tests
    and embedders may pass their own callable ``send(title, body, level) -> bool``)."""

    def __init__(
        self,
        channels: Iterable[tuple[str, Callable[[str, str, str], bool] | None]],
        *,
        dedupe_window_s: float = 300.0,
        rate_per_min: int = 20,
        burst: int = 10,
        queue_size: int = 256,
        close_timeout_s: float = 5.0,
        disabled: Iterable[str] = (),
        source: str = "",
        clock: Callable[[], float] = time.monotonic,
        poll_s: float = 1.0,
    ) -> None:
        from cryptoarb.config_alerts import private_url, url_secrets

        chans = list(channels)
        self.secrets: set[str] = set()
        for url, _ in chans:
            self.secrets |= url_secrets(url)
        install_log_redaction(self.secrets)  # apprise logs through `logging`: scrub its records too
        self.source = source  # e.g. "run 3f2a…": says which engine an alert comes from
        self.channels = [Channel(url, private_url(url), queue_size, self._render, send) for url, send in chans]
        self.throttle = Throttle(dedupe_window_s, rate_per_min, burst, clock)
        self.disabled = frozenset(disabled)
        self.close_timeout_s = close_timeout_s
        self.poll_s = poll_s
        self.raised = 0  # notify() calls
        self.filtered = 0  # kinds switched off
        self._closed = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="alerts:ticker", daemon=True)
        self._started = False

    @classmethod
    def from_settings(cls, settings: Any, source: str = "") -> AlertSink | None:
        """From ``Settings.alerts`` (an ``AlertsSettings``); None when no URL is configured."""
        a = settings.alerts if hasattr(settings, "alerts") else settings
        if not a.urls:
            return None
        return cls([(u, None) for u in a.urls], dedupe_window_s=a.dedupe_window_s, rate_per_min=a.rate_per_min,
                   burst=a.burst, queue_size=a.queue_size, close_timeout_s=a.close_timeout_s,
                   disabled=a.disabled, source=source)

    # -- the API ---------------------------------------------------------------------------
    def start(self) -> AlertSink:
        if not self._started:
            self._started = True
            for ch in self.channels:
                ch.start()
            self._ticker.start()
        return self

    def notify(self, kind: str, key: str, title: str, body: str = "",
               detail: Mapping[str, Any] | None = None, level: str = "warning", urgent: bool = False) -> bool:
        """Queue an alert; True when it was handed to the channels now, False when it was
        folded into a count (same ``key`` within the de-dupe window), rate-limited, of a
        disabled kind, or every queue was full. Never blocks, never raises for a channel.
        ``urgent`` alerts (kill, resume) are not subject to the rate limit."""
        self.raised += 1
        if kind in self.disabled or self._closed.is_set():
            self.filtered += 1
            return False
        alert = self.throttle.admit(Alert(kind, key, title, body, dict(detail or {}), level), urgent)
        if alert is None:
            return False
        return self._fan_out(alert)

    def close(self, timeout_s: float | None = None) -> dict[str, Any]:
        """Send the counts still pending, let the channels deliver what is queued for at most
        ``timeout_s`` (default ``close_timeout_s``), and return :meth:`stats`. A channel still
        stuck then is abandoned (its thread is a daemon) and its alerts counted as dropped."""
        if self._closed.is_set():
            return self.stats()
        self._closed.set()
        for alert in self.throttle.pending():
            self._fan_out(alert)
        deadline = time.monotonic() + (self.close_timeout_s if timeout_s is None else timeout_s)
        if self._started:
            for ch in self.channels:
                ch.stop(deadline)
        return self.stats()

    def __enter__(self) -> AlertSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> dict[str, Any]:
        per = {ch.label: ch.stats() for ch in self.channels}
        total = {k: sum(s[k] for s in per.values()) for k in ("sent", "failed", "dropped")}
        return {**total, "raised": self.raised, "suppressed": self.throttle.suppressed,
                "rate_limited": self.throttle.rate_limited, "filtered": self.filtered, "channels": per}

    def summary_line(self) -> str:
        s = self.stats()
        return (f"alerts: {s['raised']} raised, {s['sent']} delivered, {s['suppressed']} folded into counts, "
                f"{s['rate_limited']} rate-limited, {s['failed']} failed, {s['dropped']} dropped "
                f"({len(self.channels)} channel(s))")

    # -- internals -------------------------------------------------------------------------
    def _fan_out(self, alert: Alert) -> bool:
        handed = [ch.offer(alert) for ch in self.channels]
        return any(handed)

    def _tick(self) -> None:
        while not self._closed.wait(self.poll_s):
            for alert in self.throttle.due():
                self._fan_out(alert)

    def _render(self, a: Alert) -> tuple[str, str]:
        """Title and body as sent (in the channel's thread, not the caller's)."""
        title = f"{TITLE_PREFIX}: {a.title}"
        lines = [a.body] if a.body else []
        if a.repeats:
            since = datetime.fromtimestamp(time.time() - (self.throttle.clock() - a.first_ts), UTC)
            lines.append(f"(+{a.repeats} more alert(s) of this kind since {since:%H:%M:%S} UTC, not sent one by one)")
        if a.dropped:
            lines.append(f"({a.dropped} other alert(s) dropped by the rate limit before this one)")
        if a.detail:
            lines.append(f"detail: {detail_text(a.detail)}")
        lines.append(f"kind: {a.kind} · key: {a.key}" + (f" · {self.source}" if self.source else ""))
        return scrub(title, self.secrets), scrub("\n".join(lines), self.secrets)
