"""DEX venues: Uniswap V2 (and forks: SushiSwap, PancakeSwap) and Uniswap V3 pools as venues.

- :mod:`.uniswap_v2` — exact pair math (``get_amount_out``/``get_amount_in``) and closed-form
  optimal sizes (pool vs pool, pool vs a CEX book).
- :mod:`.v3math`, :mod:`.uniswap_v3` — exact V3 swap simulation across initialized ticks, and a
  numeric optimum.
- :mod:`.depth` — :class:`AmmDepth`, a V2 pool seen as an order book for book-walking detectors.
- :mod:`.pools` — tokens, DEX specs, pools with health and freshness rules.
- :mod:`.chain` — async web3: chain-id check, pool discovery, state reads, event following.
- :mod:`.execution` — signed swaps through the routers, nonces, receipts, failed legs.
- :mod:`.arb`, :mod:`.settle` — CEX<->DEX / DEX<->DEX detection and sizing with pool fee and gas,
  execution and exact realised PnL.

The math modules are pure and import no web3; the I/O modules need ``web3``.
"""

from cryptoarb.dex.errors import (
    ChainIdMismatch,
    DexError,
    IncompleteTickData,
    InsufficientInput,
    InsufficientLiquidity,
    RpcError,
    StalePoolError,
    UnknownPool,
    UnknownToken,
)
from cryptoarb.dex.uniswap_v2 import get_amount_in, get_amount_out

__all__ = [
    "ChainIdMismatch",
    "DexError",
    "IncompleteTickData",
    "InsufficientInput",
    "InsufficientLiquidity",
    "RpcError",
    "StalePoolError",
    "UnknownPool",
    "UnknownToken",
    "get_amount_in",
    "get_amount_out",
]
