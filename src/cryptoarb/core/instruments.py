"""Instruments and their trading rules, named the ccxt way.

Venue ids are ccxt exchange ids (``binance``, ``binanceusdm``) and symbols are ccxt unified
symbols (``BTC/USDT``, ``BTC/USDT:USDT``, ``BTC/USD:BTC``) so that metadata, orders and
users' configuration all speak one language.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import StrEnum
from math import lcm

FEE_SIDES = ("", "get", "give", "quote", "base")


class Kind(StrEnum):
    SPOT = "spot"
    LINEAR = "linear"  # perpetual/future margined and settled in the quote currency
    INVERSE = "inverse"  # margined and settled in the base currency (coin-margined)


#: Venues whose coin-margined (inverse) contracts are sized in the base coin rather than in
#: quote-valued contracts. Bitget's COIN-FUTURES (BTC/USD:BTC): orders, positions and book sizes are
#: BTC; ccxt still says ``inverse`` with ``contractSize`` 1, and its own ``bitget.parse_position``
#: reads the size as the base amount (``contracts = total / contractSize``, notional = total x price).
BASE_SIZED_INVERSE = frozenset({"bitget"})


@dataclass(frozen=True, slots=True)
class Fees:
    """Fee rates as fractions (0.001 == 10 bps). Negative maker rates are rebates."""

    taker: float
    maker: float = 0.0

    def __post_init__(self) -> None:
        if not -0.01 <= self.maker <= 0.05 or not 0.0 <= self.taker <= 0.05:
            raise ValueError(f"implausible fee rates taker={self.taker} maker={self.maker}")


@dataclass(frozen=True, slots=True)
class Instrument:
    """One tradable market on one venue.

    ``lot_size`` is in the instrument's own quantity unit: base currency for spot and linear
    contracts, contracts for inverse ones (each worth ``contract_size`` units of quote).

    ``base_sized`` (inverse only): the contract is sized in the base coin (``contract_size`` base
    units per unit of quantity, like a linear one) but margined and settled in the base coin, its
    PnL the linear PnL in quote converted at the exit price (Bitget: "(exit - entry) x size /
    price of the margin coin"). ``None`` = the venue's rule (:data:`BASE_SIZED_INVERSE`).
    """

    venue: str
    symbol: str
    base: str
    quote: str
    kind: Kind = Kind.SPOT
    tick_size: float = 0.01
    lot_size: float = 0.00001
    min_notional: float = 0.0
    contract_size: float = 1.0
    fees: Fees = field(default_factory=lambda: Fees(taker=0.001, maker=0.001))
    exchange_symbol: str = ""  # the venue's own id, e.g. BTCUSDT or BTCUSD_PERP
    # which asset a spot fee is taken in, named the ccxt way ("get": the asset received, "give":
    # the asset paid, "quote", "base"); "" = the venue's rule (core.accounting.VENUE_FEE_SIDE)
    fee_side: str = ""
    base_sized: bool | None = None

    def __post_init__(self) -> None:
        for name in ("tick_size", "lot_size", "contract_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{self.key}: {name} must be positive")
        if self.min_notional < 0:
            raise ValueError(f"{self.key}: min_notional must not be negative")
        if self.fee_side not in FEE_SIDES:
            raise ValueError(f"{self.key}: fee_side must be one of {', '.join(repr(x) for x in FEE_SIDES)}")
        expected_settle = {Kind.SPOT: None, Kind.LINEAR: self.quote, Kind.INVERSE: self.base}[self.kind]
        if expected_settle is not None and ":" not in self.symbol:
            raise ValueError(f"{self.key}: a {self.kind.value} contract needs a ccxt symbol with ':SETTLE'")
        if self.base_sized is None:  # frozen: set once, here
            object.__setattr__(self, "base_sized", self.kind is Kind.INVERSE and self.venue in BASE_SIZED_INVERSE)
        elif self.base_sized and self.kind is not Kind.INVERSE:
            raise ValueError(f"{self.key}: only an inverse contract can be base_sized (spot and linear are by nature)")

    @property
    def key(self) -> str:
        """The identity used everywhere outside the hot path: ``"<venue> <symbol>"``."""
        return f"{self.venue} {self.symbol}"

    @property
    def settle(self) -> str:
        return self.symbol.split(":", 1)[1] if ":" in self.symbol else self.quote

    @property
    def inverse(self) -> bool:
        return self.kind is Kind.INVERSE

    @property
    def quote_contracts(self) -> bool:
        """Sized in contracts worth a fixed quote amount (a classic inverse contract): its base
        quantity depends on the price. False for spot, linear and base-sized inverse contracts."""
        return self.kind is Kind.INVERSE and not self.base_sized

    def base_qty(self, qty: float, price: float) -> float:
        """Book quantity at ``price`` expressed in base currency."""
        if self.quote_contracts:
            return qty * self.contract_size / price
        return qty * self.contract_size

    def native_qty(self, base_qty: float, price: float) -> float:
        """Inverse of :meth:`base_qty`."""
        if self.quote_contracts:
            return base_qty * price / self.contract_size
        return base_qty / self.contract_size

    def round_qty(self, qty: float) -> float:
        """Round a native quantity down to the lot size (never up: we must not over-trade).

        The result is an exact multiple of the lot as the venue reads it (its decimal string):
        ``float`` arithmetic would send 22900.100000000002 for 229001 lots of 0.1.
        """
        return float(floor_step(qty, self.lot_size))

    def round_price(self, price: float, up: bool) -> float:
        """A price on the tick grid: up for a buy limit (never tighter), down for a sell limit."""
        return float(floor_step(price, self.tick_size) if not up else ceil_step(price, self.tick_size))

    def base_step(self) -> Decimal:
        """One lot in base units (linear/spot): the grid both legs of a trade must share."""
        return dec(self.lot_size) * dec(self.contract_size)


# counts of lots within this fraction of a lot of the next whole count are float noise
_LOT_EPS = Decimal("1e-9")


def floor_step(value: float, step: float) -> Decimal:
    """The largest multiple of ``step`` not above ``value``, exactly, from the shortest reprs."""
    s = dec(step)
    n = (dec(value) / s + _LOT_EPS).to_integral_value(ROUND_FLOOR)
    return n * s


def ceil_step(value: float, step: float) -> Decimal:
    """The smallest multiple of ``step`` not below ``value``, exactly."""
    s = dec(step)
    n = (dec(value) / s - _LOT_EPS).to_integral_value(ROUND_CEILING)
    return n * s


def common_step(*steps: Decimal) -> Decimal:
    """The least common multiple of decimal steps (lots 20 and 30 -> 60; 0.001 and 0.0001 -> 0.001)."""
    places = 0
    for s in steps:
        exp = s.normalize().as_tuple().exponent
        if not isinstance(exp, int):
            raise ValueError(f"not a finite step: {s}")
        places = max(places, -exp)
    scale = Decimal(10) ** places
    ints = [int((s * scale).to_integral_value()) for s in steps]
    return Decimal(lcm(*ints)) / scale


def dec(x: float | int | str | Decimal) -> Decimal:
    """Exact decimal of a float as it prints (the shortest repr), the way money enters accounting."""
    if isinstance(x, Decimal):
        return x
    return Decimal(repr(x)) if isinstance(x, float) else Decimal(x)
