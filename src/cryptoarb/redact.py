"""Keep secrets out of storage and logs.

A run's settings are stored with the run (``runs.config``) so that it can be reconstructed, and
they may hold credentials: a database URL with its password, ccxt options such as ``apiKey`` or
``secret``, an endpoint with a token in its query string. Everything that persists or logs a
configuration goes through :func:`redact_config` first; log records go through
:class:`RedactingFilter`, which also hides the exact secret values found in the settings
wherever they appear (an error message quoting a URL, say).

Credentials are recognised by their key, whatever the nesting: the ccxt credential names
(``apiKey``, ``secret``, ``password``, ``uid``, ``login``, ``twofa``, ``privateKey``,
``walletAddress``, ``token``, ``accountId``) and any key containing ``secret``, ``password``,
``passphrase``, ``apikey``, ``privatekey``, ``token`` or ``auth`` (case, ``_`` and ``-``
ignored, so ``api_key`` and ``X-MBX-APIKEY`` count). Their values become ``"***"``, so a stored
run still says *that* a credential was set.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

MASK = "***"

# ccxt's ``requiredCredentials`` names (Exchange.requiredCredentials), normalised
_CCXT_CREDENTIALS = frozenset(
    {"apikey", "secret", "uid", "accountid", "login", "password", "twofa", "privatekey", "walletaddress",
     "token"}
)
_SECRET_PARTS = ("secret", "password", "passwd", "passphrase", "apikey", "privatekey", "token", "auth",
                 "credential", "mnemonic", "signature", "cookie", "sessionid")
_PATH_KEYED = frozenset({"rpc_url"})  # URLs whose path itself is a credential
_MIN_SCRUB = 4  # shorter values are not scrubbed from free text (they would mangle it)

# scheme://user:PASSWORD@host  (also when the text around it is not a URL at all)
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*:)(?P<pw>[^\s@/]*)@")
# ?name=VALUE / &name=VALUE in a URL
_QUERY = re.compile(r"(?P<head>[?&;](?P<name>[^=&;#\s]+)=)(?P<value>[^&;#\s]*)")


def _norm(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "")


def is_secret_key(key: object) -> bool:
    """Whether a setting or option named ``key`` holds a credential."""
    if not isinstance(key, str):
        return False
    k = _norm(key)
    return k in _CCXT_CREDENTIALS or any(part in k for part in _SECRET_PARTS)


def redact_text(text: str) -> str:
    """``text`` with URL passwords and credential-named query values replaced by ``***``."""
    if "://" not in text and "=" not in text:
        return text
    out = _USERINFO.sub(lambda m: m["head"] + MASK + "@" if m["pw"] else m[0], text)
    return _QUERY.sub(lambda m: m["head"] + MASK if is_secret_key(m["name"]) and m["value"] else m[0], out)


def redact_config(obj: Any) -> Any:
    """A deep copy of ``obj`` (mappings, sequences, scalars) with every credential hidden: the
    value of every credential-named key (any type) and the secret parts of every string."""
    if isinstance(obj, Mapping):
        return {k: (_mask(v) if is_secret_key(k) else redact_config(v)) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [redact_config(v) for v in obj]
    if isinstance(obj, str):
        return redact_text(obj)
    return obj


def _mask(value: Any) -> Any:
    if value is None or value == "" or isinstance(value, bool):
        return value  # nothing set: say so
    if isinstance(value, Mapping):  # e.g. an "auth" section: keep its shape, hide every value
        return {k: _mask(v) for k, v in value.items()}
    return MASK


def secret_values(obj: Any) -> set[str]:
    """The secret strings inside ``obj`` (credential values, URL passwords, credential query
    values), for scrubbing them from free text such as log messages."""
    found: set[str] = set()

    def walk(o: Any, secret: bool) -> None:
        if isinstance(o, Mapping):
            for k, v in o.items():
                if k in _PATH_KEYED and isinstance(v, str):
                    found.update(_path_secret(v))
                walk(v, secret or is_secret_key(k))
        elif isinstance(o, list | tuple | set | frozenset):
            for v in o:
                walk(v, secret)
        elif isinstance(o, str | int) and not isinstance(o, bool):
            s = str(o)
            if secret:
                found.add(s)
            elif isinstance(o, str):
                found.update(_url_secrets(s))

    walk(obj, False)
    return {s for s in found if len(s) >= _MIN_SCRUB}


def _path_secret(url: str) -> set[str]:
    """An RPC endpoint's path and query (Infura, Alchemy: ``/v3/<API key>``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return set()
    rest = parts.path.strip("/") + (f"?{parts.query}" if parts.query else "")
    return {rest} if rest else set()


def _url_secrets(text: str) -> set[str]:
    out = {m["pw"] for m in _USERINFO.finditer(text) if m["pw"]}
    if "://" in text:
        try:
            query = urlsplit(text).query
        except ValueError:
            query = ""
        out.update(v for k, v in parse_qsl(query) if is_secret_key(k) and v)
    return out


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret, and of URL credentials, hidden."""
    for s in sorted(secrets, key=len, reverse=True):  # longest first: one may contain another
        if s in text:
            text = text.replace(s, MASK)
    return redact_text(text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with the known secrets and URL credentials hidden."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: set[str] = set(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler to report
            return True
        clean = scrub(msg, self.secrets)
        if clean != msg or record.args:
            record.msg, record.args = clean, ()
        if record.exc_info and record.exc_text is None and record.exc_info[1] is not None:
            # the formatter would print the exception's message verbatim: render it now, scrubbed
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info), self.secrets)
            record.exc_info = None
        return True


_FILTER = RedactingFilter()


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Like ``logging.lastResort``: writes to whatever ``sys.stderr`` is at the time."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.setLevel(level)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def install_log_redaction(secrets: Iterable[str] = ()) -> RedactingFilter:
    """Scrub ``secrets`` (added to those already known) and URL credentials from every log
    record. Without a configured root handler (the command line), warnings and errors go to
    stderr as before, through a filtered handler; configured handlers get the filter added."""
    _FILTER.secrets.update(s for s in secrets if len(s) >= _MIN_SCRUB)
    root = logging.getLogger()
    if not root.handlers:
        handler = _StderrHandler(logging.WARNING)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    for h in root.handlers:
        if _FILTER not in h.filters:
            h.addFilter(_FILTER)
    return _FILTER


def hide_in_logs(settings: Any) -> RedactingFilter:
    """:func:`install_log_redaction` with every secret of ``settings`` (a pydantic model, as
    loaded by ``load_settings``; its python dump, so DEX RPC URLs are seen unredacted). An alert
    URL is a credential as a whole (a bot token in its host or path), so each is hidden whole."""
    dump = settings.model_dump()
    alerts = dump.get("alerts") if isinstance(dump, dict) else None
    urls = {u for u in (alerts or {}).get("urls", []) if isinstance(u, str)}
    return install_log_redaction(secret_values(dump) | urls)
