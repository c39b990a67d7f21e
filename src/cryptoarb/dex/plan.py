"""What the DEX detector hands on: cost models, limits, and the exact plan of each opportunity.

These types sit apart from the sizing code because the executor (:mod:`.settle`) and the live
runtime (:mod:`.live`) need them without the search machinery: a :class:`DexLeg` carries the
exact raw amounts and the protective bound that go into the transaction, so execution never
re-derives them. All are re-exported by :mod:`.arb`, their historical home.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptoarb.core.opportunity import Opportunity, OrderIntent
from cryptoarb.dex.pools import Token
from cryptoarb.dex.quote import Pool

CEX_DEX = "cex_dex"
DEX_DEX = "dex_dex"


@dataclass(frozen=True, slots=True)
class GasModel:
    """Gas price and the native coin's price in the pair's quote currency (:mod:`.gas`): ETH's
    USDC price for a WETH/USDC pair, 1 for a WBTC/WETH pair."""

    gas_price_wei: int
    native_price_quote: float
    native_symbol: str = "ETH"
    quote_symbol: str = ""  # the currency native_price_quote and cost_quote are in

    def cost_quote(self, gas_units: int) -> float:
        return gas_units * self.gas_price_wei / 1e18 * self.native_price_quote


@dataclass(frozen=True, slots=True)
class DexLimits:
    min_profit_quote: float = 0.0  # net of pool fee, CEX fee and gas
    min_profit_bps: float = 1.0
    max_notional_quote: float = 10_000.0  # buy-leg cost cap
    slippage_bps: float = 10.0  # protective bound on each swap (amountOutMin / amountInMax)


@dataclass(slots=True)
class DexLeg:
    """One planned swap, in raw token units."""

    pool: Pool
    side: str  # BUY or SELL of the base token
    token_in: Token
    token_out: Token
    exact_out: bool
    amount_in: int  # exact (exact input) or expected (exact output)
    amount_out: int  # expected (exact input) or exact (exact output)
    bound: int  # amountOutMin for exact input, amountInMax for exact output

    @property
    def amount(self) -> int:
        """The amount the transaction fixes."""
        return self.amount_out if self.exact_out else self.amount_in


@dataclass(slots=True)
class DexOpportunity:
    opportunity: Opportunity
    kind: str  # CEX_DEX | DEX_DEX
    base: Token
    quote: Token
    legs: list[DexLeg]  # on-chain legs, in execution order
    cex: OrderIntent | None
    gas: GasModel
    gas_units: int
    gas_quote: float
    pool_fee_quote: float
    cex_fee_quote: float
    blocks: dict[str, int] = field(default_factory=dict)  # pool address -> state block used
