"""Errors to Sentry (sentry-sdk) when ``SENTRY_DSN`` is set, with every secret scrubbed.

What is reported: an exception nobody handled (the command's own crash, or one in a thread)
and every log record at ERROR (a storage writer that lost rows, an outbox event given up, a
role's batch that failed). A user error (exit 2) is not an error of the program and is not sent.

Secrets: sentry-sdk's own scrubber masks well-known key names (``password``, ``token``...);
``before_send`` then walks the whole event (messages, exception values, stack frame locals,
breadcrumbs, ``sys.argv``, tags) and hides what :mod:`cryptoarb.redact` knows: the value of any
credential-named key, URL passwords and credential query values in any string (a database URL
on the command line, an apprise URL), and the exact secret values of the loaded settings (JWT
secret, venue API keys, alert URLs: registered by ``hide_in_logs``), wherever they appear.

Off the hot path: nothing here runs per message. Only the integrations that cost nothing per
message are on (no automatic Redis/SQLAlchemy/HTTP-client instrumentation, no tracing).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import Any

from cryptoarb.redact import MASK, is_secret_key, scrub


class SentryConfigError(ValueError):
    """``SENTRY_DSN`` is not a DSN: the message says so (one line, exit 2)."""


# key: 'value' / key='value' / "key": "value" inside a repr or an SQL error's parameter list
_KEYED = re.compile(r"""(?P<head>(?P<q>['"]?)(?P<key>[A-Za-z_][\w-]*)(?P=q)\s*[:=]\s*(?P<vq>['"]))"""
                    r"""(?P<val>[^'"]*)(?P=vq)""")


# a password hash (argon2, bcrypt, PHC strings) held in a local variable under any name
_HASH = re.compile(r"\$(?:argon2(?:id|i|d)|2[aby]|scrypt|pbkdf2[\w-]*)\$[^\s'\"]+")


def _scrub_keyed(text: str) -> str:
    """Credential-named fields inside free text (a dict or model repr, an SQL error listing its
    parameters: ``'password_hash': '$argon2id$...'``) with their values masked, and password
    hashes wherever they are."""
    if "$" in text:
        text = _HASH.sub(MASK, text)
    if ":" not in text and "=" not in text:
        return text
    return _KEYED.sub(lambda m: m["head"] + MASK + m["vq"] if is_secret_key(m["key"]) and m["val"] else m[0], text)


def _known_secrets() -> set[str]:
    from cryptoarb.redact import _FILTER  # the process's filter: every secret hide_in_logs registered

    return set(_FILTER.secrets)


def scrub_event(event: Any, secrets: set[str] | None = None) -> Any:
    """``event`` (any JSON-like structure) with every credential hidden; a new structure."""
    known = _known_secrets() if secrets is None else secrets

    def walk(o: Any) -> Any:
        if isinstance(o, Mapping):
            return {k: (_mask(v) if is_secret_key(k) else walk(v)) for k, v in o.items()}
        if isinstance(o, list | tuple):
            return [walk(v) for v in o]
        if isinstance(o, str):
            return _scrub_keyed(scrub(o, known))
        return o

    return walk(event)


def _mask(value: Any) -> Any:
    if value is None or value == "" or isinstance(value, bool):
        return value
    if isinstance(value, Mapping):
        return {k: _mask(v) for k, v in value.items()}
    return MASK


def before_send(event: Any, hint: Any) -> Any:
    """sentry-sdk's last look at an event: scrubbed, or dropped (None) when scrubbing fails,
    rather than sent with a secret in it."""
    try:
        return scrub_event(event)
    except Exception:
        return None


def init_sentry(dsn: str | None = None, release: str | None = None) -> bool:
    """Start reporting to ``dsn`` (default ``SENTRY_DSN``); False when none is set.

    ``SENTRY_ENVIRONMENT`` names the deployment (sentry-sdk reads it). Raises
    :class:`SentryConfigError` for a DSN that cannot be parsed."""
    dsn = dsn if dsn is not None else os.environ.get("SENTRY_DSN", "")
    if not dsn.strip():
        return False
    import sentry_sdk
    from sentry_sdk.integrations.logging import LoggingIntegration
    from sentry_sdk.utils import BadDsn, Dsn

    from cryptoarb import __version__

    try:
        Dsn(dsn.strip())
    except BadDsn as e:
        raise SentryConfigError(f"SENTRY_DSN: not a Sentry DSN ({e}); expected https://KEY@HOST/PROJECT") from None
    sentry_sdk.init(
        dsn=dsn.strip(),
        release=release or f"cryptoarb@{__version__}",
        before_send=before_send,
        before_send_transaction=before_send,
        send_default_pii=False,
        auto_enabling_integrations=False,  # no per-call instrumentation of Redis, SQLAlchemy, HTTP clients
        integrations=[LoggingIntegration(level=None, event_level=logging.ERROR)],  # events only, no breadcrumbs
        traces_sample_rate=None,
        shutdown_timeout=2,
        max_request_body_size="never",
    )
    return True
