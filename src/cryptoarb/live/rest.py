"""REST through ccxt (async): order-book snapshots and market metadata.

Snapshots are fetched with ccxt's implicit API method that returns the venue's *native* JSON
(named by the handler), so that the handler parses exactly what it would read from a capture.
ccxt's own throttler keeps us inside each venue's rate limits (``enableRateLimit``), except for
venues with a documented weight budget: their snapshots are paced by ``live/snapshots.py``.
"""

from __future__ import annotations

from typing import Any

import orjson


class RestError(Exception):
    pass


class CcxtRest:
    """One async ccxt exchange per venue, created lazily and closed with :meth:`close`."""

    def __init__(self, venue: str, config: dict[str, Any] | None = None) -> None:
        self.venue = venue
        self.config = {"enableRateLimit": True, "timeout": 10_000, **(config or {})}
        self._exchange: Any = None

    @property
    def exchange(self) -> Any:
        if self._exchange is None:
            import ccxt.async_support as ccxt_async

            cls = getattr(ccxt_async, self.venue, None)
            if cls is None:
                raise RestError(f"ccxt has no exchange {self.venue!r}")
            self._exchange = cls(self.config)
        return self._exchange

    async def native(self, method: str, params: dict[str, Any]) -> bytes:
        """Call an implicit-API method; the venue's JSON body, re-serialised."""
        fn = getattr(self.exchange, method, None)
        if fn is None:
            raise RestError(f"ccxt {self.venue} has no method {method!r}")
        try:
            result = await fn(params)
        except Exception as e:  # ccxt raises its own hierarchy; all mean "no snapshot now"
            raise RestError(f"{self.venue} {method}: {type(e).__name__}: {e}") from None
        return orjson.dumps(result)

    async def close(self) -> None:
        if self._exchange is not None:
            await self._exchange.close()
            self._exchange = None
