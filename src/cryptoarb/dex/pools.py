"""Tokens, DEX descriptions and pools as venues, with the health and freshness rules for quoting.

A pool is a venue (``uniswap_v2@1``, ``uniswap_v3-3000@1``) trading one symbol
(``WETH/USDC``). Its state is only as good as the last block it was confirmed at: every quote
goes through :meth:`PoolBase.check_fresh`, which refuses an unhealthy pool (RPC errors,
timeouts, a failed event poll) and state older than ``max_block_lag`` blocks behind the head or
``max_age_s`` seconds since the last confirmation. No trade is ever sized on stale state.

Pure data and math: the I/O that fills these objects lives in :mod:`cryptoarb.dex.chain`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal

from cryptoarb.dex import uniswap_v2 as v2
from cryptoarb.dex import uniswap_v3 as v3
from cryptoarb.dex.errors import StalePoolError, UnknownToken

V2 = "v2"
V3 = "v3"


@dataclass(frozen=True, slots=True)
class Token:
    address: str  # checksummed
    symbol: str
    decimals: int

    def human(self, raw: int) -> Decimal:
        """Exact decimal amount of ``raw`` base units."""
        return Decimal(raw).scaleb(-self.decimals)

    def raw(self, amount: Decimal | float | str) -> int:
        """Base units of a human amount, rounded down (never spend more than asked)."""
        d = amount if isinstance(amount, Decimal) else Decimal(repr(amount) if isinstance(amount, float) else amount)
        return int(d.scaleb(self.decimals))


@dataclass(frozen=True, slots=True)
class DexSpec:
    """One deployment of a DEX on one chain.

    V2 forks share the pair ABI and differ in factory, router, fee and chain; ``swap_gas`` is
    the gas one swap through the router costs (a cost in every opportunity, see ``arb.py``).
    """

    name: str  # uniswap_v2, sushiswap, pancakeswap_v2, uniswap_v3, ...
    kind: str  # V2 | V3
    chain_id: int
    factory: str
    router: str
    fee_bps: int = 30  # V2 family only; V3 fees are per pool
    quoter: str = ""  # V3 QuoterV2, for eth_call cross-checks
    swap_gas: int = 0  # 0: the kind's default below

    def __post_init__(self) -> None:
        if self.kind not in (V2, V3):
            raise ValueError(f"{self.name}: kind must be 'v2' or 'v3', got {self.kind!r}")

    @property
    def gas_per_swap(self) -> int:
        if self.swap_gas:
            return self.swap_gas
        return 150_000 if self.kind == V2 else 200_000


@dataclass(frozen=True, slots=True)
class Freshness:
    """How old pool state may be for a quote."""

    max_block_lag: int = 1  # blocks between the pool's confirmed block and the chain head
    max_age_s: float = 30.0  # seconds since the state was last confirmed at the head


@dataclass(slots=True)
class PoolBase:
    dex: DexSpec
    address: str
    token0: Token
    token1: Token
    block: int = 0  # the block the state is confirmed at (events applied up to and including it)
    head_block: int = 0  # the chain head seen at the last successful poll
    confirmed_at: float = 0.0  # time.monotonic() of that poll
    healthy: bool = False
    reason: str = "not loaded"
    freshness: Freshness = field(default_factory=Freshness)

    @property
    def chain_id(self) -> int:
        return self.dex.chain_id

    @property
    def venue(self) -> str:
        return f"{self.dex.name}@{self.dex.chain_id}"

    def symbol(self, base: Token) -> str:
        """``BASE/QUOTE`` with ``base`` one of the pool's tokens."""
        return f"{base.symbol}/{self.other(base).symbol}"

    def other(self, token: Token | str) -> Token:
        addr = token.address if isinstance(token, Token) else token
        if addr.lower() == self.token0.address.lower():
            return self.token1
        if addr.lower() == self.token1.address.lower():
            return self.token0
        raise UnknownToken(f"{self.venue} pool {self.address}: token {addr} is not in it")

    def zero_for_one(self, token_in: Token | str) -> bool:
        addr = token_in.address if isinstance(token_in, Token) else token_in
        if addr.lower() == self.token0.address.lower():
            return True
        if addr.lower() == self.token1.address.lower():
            return False
        raise UnknownToken(f"{self.venue} pool {self.address}: token {addr} is not in it")

    def mark_healthy(self, block: int, head_block: int, now: float | None = None) -> None:
        self.block = block
        self.head_block = head_block
        self.confirmed_at = time.monotonic() if now is None else now
        self.healthy = True
        self.reason = ""

    def mark_unhealthy(self, reason: str) -> None:
        self.healthy = False
        self.reason = reason

    def check_fresh(self, now: float | None = None) -> None:
        """Raise :class:`StalePoolError` unless the state may be quoted."""
        if not self.healthy:
            raise StalePoolError(f"{self.venue} pool {self.address} is unhealthy: {self.reason}")
        lag = self.head_block - self.block
        if lag > self.freshness.max_block_lag:
            raise StalePoolError(
                f"{self.venue} pool {self.address}: state at block {self.block}, head {self.head_block}"
            )
        age = (time.monotonic() if now is None else now) - self.confirmed_at
        if age > self.freshness.max_age_s:
            raise StalePoolError(
                f"{self.venue} pool {self.address}: state last confirmed {age:.1f}s ago"
                f" (max {self.freshness.max_age_s}s)"
            )


@dataclass(slots=True)
class V2Pool(PoolBase):
    reserve0: int = 0
    reserve1: int = 0

    @property
    def fee_bps(self) -> int:
        return self.dex.fee_bps

    def reserves(self, token_in: Token | str) -> tuple[int, int]:
        """(reserve of token_in, reserve of the other token)."""
        return (self.reserve0, self.reserve1) if self.zero_for_one(token_in) else (self.reserve1, self.reserve0)

    def quote_out(self, token_in: Token | str, amount_in: int) -> int:
        """Exact output for ``amount_in`` of ``token_in``; refuses stale state."""
        self.check_fresh()
        r_in, r_out = self.reserves(token_in)
        return v2.get_amount_out(amount_in, r_in, r_out, self.fee_bps)

    def quote_in(self, token_out: Token | str, amount_out: int) -> int:
        """Exact input needed to receive ``amount_out`` of ``token_out``; refuses stale state."""
        self.check_fresh()
        r_out, r_in = self.reserves(token_out)
        return v2.get_amount_in(amount_out, r_in, r_out, self.fee_bps)


@dataclass(slots=True)
class V3Pool(PoolBase):
    state: v3.V3PoolState | None = None

    @property
    def venue(self) -> str:
        fee = self.state.fee if self.state else 0
        return f"{self.dex.name}-{fee}@{self.dex.chain_id}"

    @property
    def fee(self) -> int:
        return self.state.fee if self.state else 0

    def _state(self) -> v3.V3PoolState:
        self.check_fresh()
        if self.state is None:
            raise StalePoolError(f"{self.venue} pool {self.address}: no state loaded")
        return self.state

    def quote_out(self, token_in: Token | str, amount_in: int) -> int:
        """Exact output for ``amount_in`` by local simulation across initialized ticks."""
        return v3.quote_exact_input(self._state(), self.zero_for_one(token_in), amount_in)

    def quote_in(self, token_out: Token | str, amount_out: int) -> int:
        """Exact input for ``amount_out`` (exact-output swap) by local simulation."""
        return v3.quote_exact_output(self._state(), not self.zero_for_one(token_out), amount_out)


Pool = V2Pool | V3Pool
