"""The ``[alerts]`` settings section (its own module: config.py stays one screenful per concern).

Channels are apprise URLs (``tgram://``, ``slack://``, ``mailto://``, ``json://`` ... see
docs/alerts.md). Such a URL is a credential: a Telegram bot token, a Slack webhook's tokens and
an SMTP password all live inside it. So a URL is never echoed back raw: a bad one is reported by
its position and scheme, a stored run's config holds apprise's own privacy rendering of it
(``tgram://1...r/...``), and :meth:`AlertsSettings.secrets` hands the secret parts to the log
filter (:mod:`cryptoarb.redact`).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from cryptoarb.redact import MASK, is_secret_key

#: the kinds of alert the engine sends; ``AlertSink.notify`` takes any kind, these are the ones
#: ``disabled`` may name (reconciliation / balance_drift / model_swap come from other parts)
ALERT_KINDS = (
    "breaker",  # a circuit breaker tripped, went half-open or was reset
    "venue_down",  # a venue quarantined after consecutive order errors
    "kill",  # the kill switch was set
    "resume",  # the kill switch was lifted
    "leg_failure",  # a trade whose legs did not both fill (failed leg, unhedged partial, failed)
    "reconciliation",  # the venue knows orders/fills the journal did not
    "balance_drift",  # venue balances differ from the internal ledger
    "model_swap",  # a new model was promoted
)

_SPLIT = re.compile(r"[/:@?&=,#+\s]+")


def _plugin(url: str) -> Any:
    """apprise's plugin for ``url`` (None when apprise does not accept it). No network."""
    import apprise

    return apprise.Apprise.instantiate(url, suppress_exceptions=True)


def scheme_of(url: str) -> str:
    head, sep, _ = url.partition("://")
    return f"{head}://" if sep and head.isascii() and head.replace("+", "").isalnum() else "(no scheme)"


def private_url(url: str) -> str:
    """``url`` as it may be shown or stored: apprise's privacy rendering (tokens and passwords
    elided), keeping only the query parameters the URL itself gave, with every HTTP header
    (``+Name=value``) and credential-named parameter masked (apprise shows those)."""
    plugin = _plugin(url)
    if plugin is None:
        return f"{scheme_of(url)}***"
    sp = urlsplit(str(plugin.url(privacy=True)))
    given = {k.lstrip(" +-:").lower() for k, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)}
    query = [
        (k, MASK if v and (k[:1] in " +-:" or is_secret_key(k)) else v)
        for k, v in parse_qsl(sp.query, keep_blank_values=True)
        if k.lstrip(" +-:").lower() in given
    ]
    return urlunsplit((sp.scheme, sp.netloc, sp.path, urlencode(query, safe="*@"), ""))


def url_secrets(url: str) -> set[str]:
    """The parts of ``url`` apprise treats as secret: whatever its privacy rendering
    (:func:`private_url`) elides -- bot tokens, webhook tokens, passwords, header values.
    A URL apprise does not accept is secret as a whole."""
    plugin = _plugin(url)
    if plugin is None:
        return {s for s in (url, url.partition("://")[2]) if s}
    out: set[str] = set()
    shown = set(_SPLIT.split(unquote(private_url(url))))
    parts: list[str] = []
    for raw in (url, str(plugin.url(privacy=False))):
        sp = urlsplit(raw)
        parts += _SPLIT.split(unquote(sp.netloc)) + _SPLIT.split(unquote(sp.path)) + _SPLIT.split(sp.fragment)
    for _, value in parse_qsl(urlsplit(url).query):  # only what the user gave, not apprise's defaults
        parts += [value, *_SPLIT.split(value)]
    out.update(p for p in parts if p and p not in shown)
    return out


class AlertsSettings(BaseModel):
    """``[alerts]``: where alerts go and how often (docs/alerts.md)."""

    model_config = ConfigDict(extra="forbid")  # a typo must not be ignored

    urls: list[str] = Field(default_factory=list)  # apprise URLs; empty: alerts off
    dedupe_window_s: float = Field(300.0, ge=0)  # the same key again within this: counted, not sent
    rate_per_min: int = Field(20, ge=0)  # at most this many alerts a minute (all keys); 0: no limit
    burst: int = Field(10, ge=1)  # ... of which this many back to back
    queue_size: int = Field(256, ge=1)  # alerts waiting per channel; beyond: dropped and counted
    close_timeout_s: float = Field(5.0, ge=0)  # at the end of a run, wait this long for pending alerts
    disabled: list[str] = Field(default_factory=list)  # kinds never sent

    @field_validator("urls")
    @classmethod
    def _apprise_urls(cls, v: list[str]) -> list[str]:
        for i, url in enumerate(v):
            if not isinstance(url, str) or not url.strip():
                raise ValueError(f"urls[{i}] is empty")
            if _plugin(url.strip()) is None:
                # never quote the URL itself: it carries the channel's token or password
                raise ValueError(
                    f"urls[{i}] ({scheme_of(url)}...) is not a URL apprise accepts "
                    "(scheme and required parts: see https://github.com/caronc/apprise/wiki)"
                )
        return [u.strip() for u in v]

    @field_validator("disabled")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        for kind in v:
            if kind not in ALERT_KINDS:
                raise ValueError(f"unknown alert kind {kind!r} (kinds: {', '.join(ALERT_KINDS)})")
        return v

    @field_serializer("urls", when_used="json")
    def _hide(self, v: list[str]) -> list[str]:
        return [private_url(u) for u in v]  # what a stored run's config holds

    def secrets(self) -> set[str]:
        """Secret parts of every URL, for :func:`cryptoarb.redact.install_log_redaction`."""
        out: set[str] = set()
        for url in self.urls:
            out |= url_secrets(url)
        return out
