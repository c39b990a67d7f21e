"""API keys for live trading: from the environment or a secrets file, never from the settings.

Per venue (``VENUE`` = the ccxt id upper-cased): ``CRYPTOARB_<VENUE>_API_KEY``,
``CRYPTOARB_<VENUE>_API_SECRET`` and, for venues that need one, ``CRYPTOARB_<VENUE>_API_PASSWORD``.
Or a TOML secrets file (``CRYPTOARB_SECRETS_FILE`` or ``[trading] secrets_file``), one table per
venue::

    [binance]
    apiKey = "..."
    secret = "..."

The file must be readable by its owner only (mode 600 or stricter): a key file other users can
read is refused, as ssh refuses such a private key. The environment wins over the file.

:class:`Credentials` never shows its values: its ``repr``/``str`` mask them, and
:meth:`Credentials.scrub` removes them from any text (a ccxt error message may quote a request).
Nothing here logs or stores a key; ``ccxt_config()`` is the only way the values leave.
"""

from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from cryptoarb.redact import MASK

ENV_FILE = "CRYPTOARB_SECRETS_FILE"
_FIELDS = {"apiKey": "API_KEY", "secret": "API_SECRET", "password": "API_PASSWORD"}


class KeysError(Exception):
    """Keys missing or unusable; the message names the venue and the variable or file (never a value)."""


@dataclass(frozen=True)
class Credentials:
    venue: str
    values: dict[str, str] = field(repr=False)
    source: str = ""  # "environment" or the file's path: where to look when the venue refuses them

    def __repr__(self) -> str:
        return f"Credentials(venue={self.venue!r}, {', '.join(f'{k}={MASK}' for k in self.values)}, from {self.source})"

    __str__ = __repr__

    def ccxt_config(self) -> dict[str, str]:
        return dict(self.values)

    def scrub(self, text: str) -> str:
        for v in self.values.values():
            if len(v) >= 4:
                text = text.replace(v, MASK)
        return text


def env_name(venue: str, what: str) -> str:
    return f"CRYPTOARB_{venue.upper().replace('-', '_')}_{what}"


def load_keys(venues: list[str], secrets_file: str = "") -> dict[str, Credentials]:
    """Credentials for every venue in ``venues``, or :class:`KeysError` naming what is missing."""
    path = os.environ.get(ENV_FILE) or secrets_file
    from_file = _read_file(Path(path)) if path else {}
    out: dict[str, Credentials] = {}
    missing: list[str] = []
    for v in venues:
        env = {k: os.environ[env_name(v, e)] for k, e in _FIELDS.items() if os.environ.get(env_name(v, e))}
        if "apiKey" in env or "secret" in env:
            if not ("apiKey" in env and "secret" in env):
                raise KeysError(f"{v}: set both {env_name(v, 'API_KEY')} and {env_name(v, 'API_SECRET')}")
            out[v] = Credentials(v, env, "environment")
            continue
        table = from_file.get(v)
        if table is not None:
            if not (table.get("apiKey") and table.get("secret")):
                raise KeysError(f"{path}: [{v}] needs both apiKey and secret")
            out[v] = Credentials(v, table, path)
            continue
        missing.append(v)
    if missing:
        where = f"{env_name(missing[0], 'API_KEY')} / {env_name(missing[0], 'API_SECRET')}"
        more = f", or a [{missing[0]}] table in {path}" if path else f", or a secrets file ({ENV_FILE})"
        raise KeysError(f"--trade needs API keys for {', '.join(missing)}: set {where}{more}")
    return out


def _read_file(p: Path) -> dict[str, dict[str, str]]:
    try:
        st = p.stat()
    except FileNotFoundError:
        raise KeysError(f"secrets file not found: {p}") from None
    except OSError as e:
        raise KeysError(f"secrets file {p}: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise KeysError(f"secrets file {p} is not a regular file")
    if st.st_mode & 0o077:
        raise KeysError(f"secrets file {p} is readable by others (mode {stat.S_IMODE(st.st_mode):o}): "
                        f"chmod 600 {p}")
    try:
        data = tomllib.loads(p.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        # the decoder's message quotes no value, only a position
        raise KeysError(f"secrets file {p}: not valid TOML ({type(e).__name__} at {str(e).split('(')[-1].rstrip(')')})"
                        ) from None
    except OSError as e:
        raise KeysError(f"secrets file {p}: {e.strerror}") from None
    out: dict[str, dict[str, str]] = {}
    for venue, table in data.items():
        if not isinstance(table, dict) or not all(isinstance(x, str) for x in table.values()):
            raise KeysError(f"secrets file {p}: [{venue}] must be a table of strings (apiKey, secret, password)")
        unknown = set(table) - set(_FIELDS)
        if unknown:
            raise KeysError(f"secrets file {p}: [{venue}] unknown key(s) {', '.join(sorted(unknown))} "
                            f"(expected apiKey, secret, password)")
        out[venue] = dict(table)
    return out
