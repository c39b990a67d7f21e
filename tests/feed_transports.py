"""Every feed test runs on both WebSocket transports (``[live] transport``, live/transport.py).

A test module opts in with ``pytestmark = pytest.mark.usefixtures("feed_transport")`` after
importing this fixture: the feeds it builds without naming a transport use the parametrized one,
and so does ``arb`` started as a subprocess (through ``ARB_LIVE__TRANSPORT``).
"""

from __future__ import annotations

import pytest

from cryptoarb.live import feed as feed_module
from cryptoarb.live.transport import TRANSPORTS


@pytest.fixture(params=TRANSPORTS)
def feed_transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    name: str = request.param
    monkeypatch.setattr(feed_module, "DEFAULT_TRANSPORT", name)
    monkeypatch.setenv("ARB_LIVE__TRANSPORT", name)
    return name
