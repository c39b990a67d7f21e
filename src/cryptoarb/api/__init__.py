"""The operator surface: a FastAPI app (REST under ``/api``, a WebSocket stream, ``/health``,
``/metrics``, the built dashboard at ``/``), served by ``arb api`` or inside ``arb run``/``arb demo``.

Modules: :mod:`.app` (the factory), :mod:`.auth` (secret, JWTs, revocation), :mod:`.users`
(argon2 passwords, roles), :mod:`.ratelimit`, :mod:`.hub` (the stream fan-out, fed by
``publish(kind, payload)`` from any thread), :mod:`.link` (a running engine seen from the API),
:mod:`.routes` (one module per resource), :mod:`.server` (uvicorn on its own thread). The engine
never waits for any of it: see docs/api.md.
"""

from cryptoarb.api.hub import StreamHub

__all__ = ["StreamHub"]
