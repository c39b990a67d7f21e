"""The container's health probe: ``python -m cryptoarb.obs.health`` exits 0 when the role in
this container answers ``GET /health`` with 200, 1 otherwise (Dockerfile ``HEALTHCHECK``).

One image runs every role, each on its own port, so the probe reads the role's command line
(``/proc/1/cmdline``: the container's main process) for ``--metrics-port`` / ``--port``, else
the role's default port (``arb engine`` 9101, ``arb recorder`` 9102, ``arb analytics`` 9103,
``arb api`` 8000). ``HEALTH_URL`` overrides all of it.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path

DEFAULT_PORTS = {"engine": 9101, "recorder": 9102, "analytics": 9103, "api": 8000}


def health_url(argv: Sequence[str]) -> str | None:
    """The ``/health`` URL of the role started with ``argv`` (None: not a role that serves one)."""
    args = list(argv)
    role = next((a for a in args if a in DEFAULT_PORTS), None)
    if role is None:
        return None
    port = DEFAULT_PORTS[role]
    flag = "--port" if role == "api" else "--metrics-port"
    try:
        for i, a in enumerate(args):
            if a == flag and i + 1 < len(args):
                port = int(args[i + 1])
            elif a.startswith(flag + "="):
                port = int(a.split("=", 1)[1])
    except ValueError:
        return None  # the role itself refuses such a port; nothing to probe
    return f"http://127.0.0.1:{port}/health"


def probe(url: str, timeout: float = 3.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return bool(r.status == 200)
    except (OSError, ValueError):
        return False


def main(cmdline: Path = Path("/proc/1/cmdline")) -> int:
    url = os.environ.get("HEALTH_URL")
    if not url:
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            argv = []
        url = health_url([a.decode(errors="replace") for a in argv])
    if url is None:
        print("health: no role on this container's command line; set HEALTH_URL", file=sys.stderr)
        return 1
    ok = probe(url)
    if not ok:
        print(f"health: {url} did not answer 200", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
