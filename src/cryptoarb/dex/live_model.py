"""The state a live DEX run keeps: chains, followed pools, compared pairs, counters, recent results.

Split from :mod:`.live` so the runtime there reads as behaviour only; these are plain records
with no I/O, and :func:`build_pairs` is the pure rule for which (pool, book) and (pool, pool)
combinations a run compares. Everything is re-exported by :mod:`.live`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cryptoarb.config import DexChainSettings, DexPoolSettings
from cryptoarb.core.orders import ArbTrade
from cryptoarb.dex.arb import DexArbDetector, DexOpportunity
from cryptoarb.dex.chain import ChainClient
from cryptoarb.dex.errors import DexError
from cryptoarb.dex.execution import DexExecutor
from cryptoarb.dex.gas import NativePricer
from cryptoarb.dex.pools import Token, V2Pool, V3Pool
from cryptoarb.dex.settle import DexArbExecutor

Pool = V2Pool | V3Pool
GWEI = 10**9


class DexStartError(DexError):
    """A configuration that cannot run (bad endpoint, wrong chain, unknown pool): one line for the user."""


def one_line(msg: object) -> str:
    return " ".join(str(msg).split())


@dataclass
class VenueStats:
    """Per DEX venue; the first fields mirror ``FeedStats`` so the Feeds table shows DEX rows too."""

    path: str = "dex"
    connects: int = 0  # chain connections
    disconnects: int = 0  # failed event polls (pools unhealthy until the next good one)
    stale: int = 0  # evaluations skipped on stale or unhealthy pool state
    messages: int = 0  # pool updates (state changes seen)
    bad_messages: int = 0  # evaluation errors
    snapshots: int = 0  # pools loaded in full
    opportunities: int = 0
    trades: int = 0
    unpriced: int = 0  # evaluations refused: no price of the native coin in the pair's quote (gas)


@dataclass(eq=False)
class PoolEntry:
    venue: str
    pool: Pool
    base: Token
    quote: Token
    chain: Chain

    @property
    def label(self) -> str:
        return f"{self.venue} {self.base.symbol}/{self.quote.symbol}"

    def sig(self) -> tuple[Any, ...]:
        """What quoting depends on: a change means the pool was updated."""
        p = self.pool
        if isinstance(p, V2Pool):
            return p.healthy, p.reserve0, p.reserve1
        st = p.state
        return p.healthy, (st.sqrt_price_x96, st.liquidity, st.tick, st.block) if st else None


@dataclass(eq=False)
class Pair:
    a: PoolEntry
    book_key: str = ""  # CEX<->DEX
    b: PoolEntry | None = None  # DEX<->DEX
    last: tuple[Any, ...] | None = None  # inputs at the last evaluation

    @property
    def locks(self) -> tuple[str, ...]:
        return (self.a.pool.address, self.b.pool.address if self.b else self.book_key)


@dataclass(eq=False)
class Seen:
    """A recent opportunity and what became of it (for the live view)."""

    opp: DexOpportunity
    state: str  # recorded (detection only) | in flight | the trade's status
    trade: ArbTrade | None = None


@dataclass(eq=False)
class Chain:
    cfg: DexChainSettings
    client: ChainClient | None = None
    detector: DexArbDetector | None = None
    pricer: NativePricer | None = None  # gas: the native coin in each pair's quote currency
    executor: DexExecutor | None = None
    runner: DexArbExecutor | None = None
    gas_price_wei: int = 0
    approvals_gas_wei: int = 0
    poll_failures: int = 0
    last_error: str = ""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def wallet(self) -> str:
        return f"wallet@{self.cfg.chain_id}"


def build_pairs(
    entries: list[PoolEntry], cfgs: Iterable[DexPoolSettings], cex_keys: set[str]
) -> tuple[list[Pair], list[str]]:
    """Each pool against the CEX books its config names (if in this run), and every two pools of
    the same tokens on the same chain; plus a note for each configured book that is missing."""
    pairs: list[Pair] = []
    notes: list[str] = []
    for e, cfg in zip(entries, cfgs, strict=True):
        for key in cfg.compare_with:
            if key in cex_keys:
                pairs.append(Pair(e, book_key=key))
            else:
                notes.append(f"{e.label} not compared with {key}: that book is not in this run")
    for i, a in enumerate(entries):
        for b in entries[i + 1 :]:
            same = {a.base.address, a.quote.address} == {b.base.address, b.quote.address}
            if same and a.chain is b.chain and a.pool.address != b.pool.address:
                pairs.append(Pair(a, b=b))
    return pairs, notes
