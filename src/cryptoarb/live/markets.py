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


#: ccxt's precision modes (``ccxt.base.decimal_to_precision``): what a ``precision`` value means
DECIMAL_PLACES, SIGNIFICANT_DIGITS, TICK_SIZE = 2, 3, 4
_MODES = {DECIMAL_PLACES: "DECIMAL_PLACES", SIGNIFICANT_DIGITS: "SIGNIFICANT_DIGITS", TICK_SIZE: "TICK_SIZE"}
#: the finest price step when the venue counts significant digits (Bitfinex: "up to 8 decimals")
FINEST_PRICE = 1e-8


def step(value: Any, mode: int, what: str) -> float | None:
    """The step size a ccxt ``precision`` value stands for in ``mode``; None when the step
    depends on the magnitude (significant digits) or the venue gives no precision."""
    if value is None:
        return None
    if mode == TICK_SIZE:
        return float(value)
    if mode == DECIMAL_PLACES:
        if float(value) != int(float(value)):
            raise MarketError(f"{what}: {value!r} is not a number of decimal places")
        return float(10.0 ** -int(float(value)))
    if mode == SIGNIFICANT_DIGITS:
        return None
    raise MarketError(f"{what}: unknown ccxt precision mode {mode!r}")


def from_ccxt_market(venue: str, m: dict[str, Any], precision_mode: int = TICK_SIZE,
                     amount_mode: int | None = None) -> Instrument:
    """An Instrument from a ccxt market structure (precision, limits, fees, contract size).

    ``precision_mode`` is the exchange's ``precisionMode``; ``amount_mode`` the mode its
    ``amount_to_precision`` really uses when that differs (Bitfinex and Bithumb count price
    digits as significant digits but round amounts to decimal places). A significant-digits
    price has no fixed tick: the tick is the finest step the venue accepts (its price minimum,
    else 1e-8), which every price it quotes is a multiple of; orders are priced at book levels.
    """
    kind = Kind.SPOT
    if m.get("contract"):
        kind = Kind.INVERSE if m.get("inverse") else Kind.LINEAR
    prec = m.get("precision") or {}
    limits = m.get("limits") or {}
    what = f"{venue} {m.get('symbol')}"
    tick = step(prec.get("price"), precision_mode, f"{what} price precision")
    if tick is None:
        tick = float((limits.get("price") or {}).get("min") or FINEST_PRICE)
    amode = precision_mode if amount_mode is None else amount_mode
    lot = step(prec.get("amount"), amode, f"{what} amount precision")
    if lot is None:
        if amode == SIGNIFICANT_DIGITS:
            raise MarketError(f"{what}: amounts in significant digits have no fixed lot size; not supported")
        lot = 1e-8
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


def amount_mode(ex: Any, symbol: str) -> int:
    """The precision mode ``ex.amount_to_precision`` applies to ``symbol``: the exchange's
    ``precisionMode``, unless it rounds amounts to a fixed number of decimals whatever their
    magnitude (found by rounding two amounts of very different magnitudes)."""
    mode = int(ex.precisionMode)
    if mode != SIGNIFICANT_DIGITS:
        return mode
    small = ex.amount_to_precision(symbol, "0.00123456789123456789")
    large = ex.amount_to_precision(symbol, "1234.123456789123456789")
    decimals = {len(x.partition(".")[2]) for x in (small, large)}
    return DECIMAL_PLACES if len(decimals) == 1 else SIGNIFICANT_DIGITS


def instrument_of(ex: Any, venue: str, symbol: str) -> Instrument:
    """The Instrument of ``symbol`` from an exchange whose markets are loaded."""
    return from_ccxt_market(venue, ex.markets[symbol], int(ex.precisionMode), amount_mode(ex, symbol))


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
            inst = instrument_of(ex, venue, sym)
            catalog.add(inst)
            out.append(inst)
    finally:
        await ex.close()
    return out
