"""Instruments for a live run: the catalog first, then the venue's own metadata through ccxt.

Unknown venues and symbols are refused with the list of what is available, before anything
connects.
"""

from __future__ import annotations

from typing import Any

from cryptoarb.core.instruments import Fees, Instrument, Kind
from cryptoarb.venues.catalog import Catalog


class MarketError(ValueError):
    pass


def from_ccxt_market(venue: str, m: dict[str, Any]) -> Instrument:
    """An Instrument from a ccxt market structure (precision, limits, fees, contract size)."""
    kind = Kind.SPOT
    if m.get("contract"):
        kind = Kind.INVERSE if m.get("inverse") else Kind.LINEAR
    prec = m.get("precision") or {}
    limits = m.get("limits") or {}
    tick = float(prec.get("price") or 1e-8)
    lot = float(prec.get("amount") or 1e-8)
    if tick >= 1 and float(tick).is_integer() and m.get("precisionMode") == "digits":  # pragma: no cover
        tick = 10 ** -tick
    min_cost = (limits.get("cost") or {}).get("min") or 0.0
    return Instrument(
        venue=venue,
        symbol=m["symbol"],
        base=m["base"],
        quote=m["quote"],
        kind=kind,
        tick_size=tick,
        lot_size=lot,
        min_notional=float(min_cost),
        contract_size=float(m.get("contractSize") or 1.0),
        fees=Fees(taker=float(m.get("taker") or 0.001), maker=float(m.get("maker") or 0.001)),
        exchange_symbol=m["id"],
    )


async def resolve(catalog: Catalog, venue: str, symbols: list[str], ccxt_config: dict[str, Any] | None = None
                  ) -> list[Instrument]:
    """The instruments of ``symbols`` on ``venue``; loads ccxt markets only for what the
    catalog lacks, and adds them to it."""
    out: list[Instrument] = []
    missing: list[str] = []
    for sym in symbols:
        inst = next((i for i in catalog.all() if i.venue == venue and i.symbol == sym), None)
        if inst is None:
            missing.append(sym)
        else:
            out.append(inst)
    if not missing:
        return out
    import ccxt.async_support as ccxt_async

    cls = getattr(ccxt_async, venue, None)
    if cls is None:
        raise MarketError(f"unknown venue {venue!r} for ccxt")
    ex = cls({"enableRateLimit": True, **(ccxt_config or {})})
    try:
        try:
            markets = await ex.load_markets()
        except Exception as e:
            raise MarketError(f"{venue}: cannot load markets through ccxt ({type(e).__name__}: {e}); "
                              f"known offline: {', '.join(catalog.symbols(venue)) or 'none'}") from None
        for sym in missing:
            m = markets.get(sym)
            if m is None:
                sample = ", ".join(sorted(markets)[:20])
                raise MarketError(f"unknown symbol {sym!r} on {venue} ({len(markets)} markets, e.g. {sample})")
            inst = from_ccxt_market(venue, m)
            catalog.add(inst)
            out.append(inst)
    finally:
        await ex.close()
    return out
