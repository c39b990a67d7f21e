"""Async web3 adapter: connect, check the chain, discover pools, read and follow their state.

Everything goes through web3.py's ``AsyncWeb3`` and the contracts' ABIs (:mod:`.abi`); there is
no hand-written JSON-RPC. Every call has a timeout; any failure becomes an :class:`RpcError`
naming the call, and a failure while reading or following a pool marks that pool unhealthy, so
:meth:`PoolBase.check_fresh` refuses to quote it until a poll succeeds again (after which the
state is re-read in full, not patched, since events may have been missed).

State is kept current from logs: ``Sync`` for V2 pairs (it carries both reserves), ``Swap``
(price, tick, liquidity after the swap), ``Mint`` and ``Burn`` (tick liquidity) for V3 pools.
What events do not carry is read with batched calls: reserves, ``slot0``, ``liquidity``, the tick
bitmap words around the current tick and every initialized tick in them. Batches use the
provider's JSON-RPC batching when it has it, concurrent calls otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

from web3 import AsyncWeb3
from web3.providers.async_base import AsyncBaseProvider, AsyncJSONBaseProvider

from cryptoarb.dex import abi
from cryptoarb.dex.errors import ChainIdMismatch, DexError, RpcError, UnknownPool, UnknownToken
from cryptoarb.dex.pools import V2, V3, DexSpec, Freshness, PoolBase, Token, V2Pool, V3Pool
from cryptoarb.dex.uniswap_v3 import TickInfo, V3PoolState

log = logging.getLogger(__name__)
T = TypeVar("T")
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


def redact_url(url: str) -> str:
    """``scheme://host[:port]`` only: RPC URLs often carry an API key in the path or query."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        return "<endpoint>"
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return f"{parts.scheme}://{host}" + ("/..." if parts.path.strip("/") or parts.query else "")


def make_provider(endpoint: str) -> AsyncBaseProvider:
    """An async provider for an ``http(s)://`` or ``ws(s)://`` URL."""
    from web3 import AsyncHTTPProvider, WebSocketProvider

    if endpoint.startswith(("http://", "https://")):
        return AsyncHTTPProvider(endpoint)
    if endpoint.startswith(("ws://", "wss://")):
        return WebSocketProvider(endpoint)
    raise ValueError(f"unsupported RPC endpoint {redact_url(endpoint)}: use http(s):// or ws(s)://")


class ChainClient:
    """One chain: its tokens, pools and the event poller that keeps them current."""

    def __init__(
        self,
        w3: AsyncWeb3[Any],
        chain_id: int,
        endpoint: str = "",
        timeout_s: float = 10.0,
        freshness: Freshness | None = None,
        word_radius: int = 2,
    ) -> None:
        self.w3 = w3
        self.chain_id = chain_id
        self.endpoint = endpoint or type(w3.provider).__name__
        self._raw_endpoint = ""  # the full URL (may hold an API key): scrubbed from error messages
        self.timeout_s = timeout_s
        self.freshness = freshness or Freshness()
        self.word_radius = word_radius  # bitmap words read on each side of the current tick's word
        self.tokens: dict[str, Token] = {}
        self.pools: dict[str, V2Pool | V3Pool] = {}
        self.head_block = 0
        self.last_block = 0  # events are applied up to and including this block
        self.rpc_errors = 0
        self.polls = 0
        self._pair = w3.eth.contract(abi=abi.V2_PAIR)
        self._v3pool = w3.eth.contract(abi=abi.V3_POOL)
        self._topics: dict[str, str] = {
            self._pair.events.Sync().topic: "Sync",
            self._v3pool.events.Swap().topic: "Swap",
            self._v3pool.events.Mint().topic: "Mint",
            self._v3pool.events.Burn().topic: "Burn",
        }

    # -- connection -------------------------------------------------------------------------
    @classmethod
    async def connect(
        cls,
        endpoint: str | AsyncBaseProvider,
        expected_chain_id: int,
        timeout_s: float = 10.0,
        freshness: Freshness | None = None,
    ) -> ChainClient:
        """Connect and check the chain id; a mismatch is a configuration error, raised at once."""
        provider = make_provider(endpoint) if isinstance(endpoint, str) else endpoint
        name = redact_url(endpoint) if isinstance(endpoint, str) else type(endpoint).__name__
        w3 = AsyncWeb3(provider)
        client = cls(w3, expected_chain_id, name, timeout_s, freshness)
        client._raw_endpoint = endpoint if isinstance(endpoint, str) else ""
        if getattr(provider, "has_persistent_connection", False):
            await client._rpc("connect", provider.connect())
        got = await client._rpc("eth_chainId", w3.eth.chain_id)
        if got != expected_chain_id:
            raise ChainIdMismatch(f"RPC {name} serves chain id {got}, the configuration expects {expected_chain_id}")
        client.head_block = await client._rpc("eth_blockNumber", w3.eth.block_number)
        client.last_block = client.head_block
        return client

    async def _rpc(self, what: str, aw: Awaitable[T]) -> T:
        """Await one RPC with the timeout; every failure becomes an RpcError naming ``what``."""
        try:
            return await asyncio.wait_for(aw, self.timeout_s)
        except TimeoutError as e:
            self.rpc_errors += 1
            raise RpcError(f"{what} on {self.endpoint}: timed out after {self.timeout_s}s") from e
        except DexError:
            raise
        except Exception as e:  # web3 raises many unrelated types (ContractLogicError, OSError, ...)
            self.rpc_errors += 1
            msg = str(e)
            if self._raw_endpoint and self._raw_endpoint != self.endpoint:
                msg = msg.replace(self._raw_endpoint, self.endpoint)
            raise RpcError(f"{what} on {self.endpoint}: {type(e).__name__}: {msg}") from None

    async def batch(self, what: str, calls: Sequence[Callable[[], Awaitable[Any]]]) -> list[Any]:
        """Run contract calls together: one JSON-RPC batch when the provider supports it.

        ``calls`` are thunks (``lambda: fn.call(block_identifier=b)``): under web3's batching
        context a call must be created inside the context to be queued instead of sent.
        """
        if not calls:
            return []
        provider = self.w3.provider
        if isinstance(provider, AsyncJSONBaseProvider):  # HTTP and websocket providers batch

            async def run_batch() -> list[Any]:
                async with self.w3.batch_requests() as b:
                    for c in calls:
                        b.add(c())
                    return list(await b.async_execute())

            return await self._rpc(f"{what} (batch of {len(calls)})", run_batch())

        async def run_all() -> list[Any]:
            return list(await asyncio.gather(*(c() for c in calls)))

        return await self._rpc(f"{what} ({len(calls)} calls)", run_all())

    # -- tokens -----------------------------------------------------------------------------
    async def token(self, address: str) -> Token:
        """Token metadata (decimals, symbol), cached; a non-token address is an UnknownToken."""
        if not AsyncWeb3.is_address(address):
            raise UnknownToken(f"{address!r} is not an address")
        addr = AsyncWeb3.to_checksum_address(address)
        if addr in self.tokens:
            return self.tokens[addr]
        code = await self._rpc(f"eth_getCode({addr})", self.w3.eth.get_code(addr))
        if not code:
            raise UnknownToken(f"no contract at {addr} on chain {self.chain_id}: not a token")
        c = self.w3.eth.contract(address=addr, abi=abi.ERC20)
        try:
            decimals = await self._rpc(f"{addr}.decimals()", c.functions.decimals().call())
        except RpcError as e:
            raise UnknownToken(
                f"{addr} on chain {self.chain_id} is not an ERC-20 token (decimals() failed: {e})"
            ) from e
        try:
            symbol = await self._rpc(f"{addr}.symbol()", c.functions.symbol().call())
        except RpcError:
            b32 = self.w3.eth.contract(address=addr, abi=abi.ERC20_BYTES32_SYMBOL)
            raw = await self._rpc(f"{addr}.symbol() as bytes32", b32.functions.symbol().call())
            symbol = bytes(raw).rstrip(b"\0").decode("utf-8", "replace")
        if not 0 <= int(decimals) <= 77:
            raise UnknownToken(f"{addr}: implausible decimals {decimals}")
        tok = self.tokens[addr] = Token(addr, str(symbol), int(decimals))
        return tok

    # -- discovery ---------------------------------------------------------------------------
    def _check_dex(self, dex: DexSpec, kind: str) -> None:
        if dex.chain_id != self.chain_id:
            raise ChainIdMismatch(
                f"{dex.name} is configured for chain {dex.chain_id}, this client is chain {self.chain_id}"
            )
        if dex.kind != kind:
            raise ValueError(f"{dex.name} is a {dex.kind} DEX, not {kind}")

    async def v2_pair(self, dex: DexSpec, token_a: str, token_b: str) -> V2Pool:
        """Find the pair of two tokens with the factory's ``getPair`` and load its reserves."""
        self._check_dex(dex, V2)
        ta, tb = await self.token(token_a), await self.token(token_b)
        factory = self.w3.eth.contract(address=AsyncWeb3.to_checksum_address(dex.factory), abi=abi.V2_FACTORY)
        addr = await self._rpc(f"{dex.name}.getPair", factory.functions.getPair(ta.address, tb.address).call())
        if addr == ZERO_ADDRESS:
            raise UnknownPool(
                f"{dex.name}@{self.chain_id}: no pair for {ta.symbol}/{tb.symbol} on factory {dex.factory}"
            )
        t0, t1 = (ta, tb) if ta.address.lower() < tb.address.lower() else (tb, ta)
        pool = V2Pool(dex, addr, t0, t1, freshness=self.freshness)
        self.pools[addr] = pool
        await self.refresh(pool)
        return pool

    async def v3_pool(self, dex: DexSpec, token_a: str, token_b: str, fee: int) -> V3Pool:
        """Find the pool of two tokens and a fee tier with ``getPool`` and load its state."""
        self._check_dex(dex, V3)
        ta, tb = await self.token(token_a), await self.token(token_b)
        factory = self.w3.eth.contract(address=AsyncWeb3.to_checksum_address(dex.factory), abi=abi.V3_FACTORY)
        addr = await self._rpc(f"{dex.name}.getPool", factory.functions.getPool(ta.address, tb.address, fee).call())
        if addr == ZERO_ADDRESS:
            raise UnknownPool(
                f"{dex.name}@{self.chain_id}: no pool for {ta.symbol}/{tb.symbol} fee {fee} on factory {dex.factory}"
            )
        t0, t1 = (ta, tb) if ta.address.lower() < tb.address.lower() else (tb, ta)
        pool = V3Pool(dex, addr, t0, t1, freshness=self.freshness)
        self.pools[addr] = pool
        await self.refresh(pool)
        return pool

    # -- state -------------------------------------------------------------------------------
    async def refresh(self, pool: V2Pool | V3Pool, block: int | None = None) -> None:
        """Re-read a pool's whole state at one block (the head by default).

        Events up to and including that block are then already in the state and skipped by
        :meth:`poll`. On failure the pool is marked unhealthy and the error re-raised.
        """
        try:
            if block is None:
                block = await self._rpc("eth_blockNumber", self.w3.eth.block_number)
            if isinstance(pool, V2Pool):
                await self._load_v2(pool, block)
            else:
                await self._load_v3(pool, block)
        except DexError as e:
            pool.mark_unhealthy(str(e))
            raise
        self.head_block = max(self.head_block, block)
        pool.mark_healthy(block, self.head_block)

    async def _load_v2(self, pool: V2Pool, block: int) -> None:
        c = self.w3.eth.contract(address=AsyncWeb3.to_checksum_address(pool.address), abi=abi.V2_PAIR)
        r0, r1, _ts = await self._rpc(
            f"{pool.address}.getReserves", c.functions.getReserves().call(block_identifier=block)
        )
        pool.reserve0, pool.reserve1 = int(r0), int(r1)

    async def _load_v3(self, pool: V3Pool, block: int) -> None:
        c = self.w3.eth.contract(address=AsyncWeb3.to_checksum_address(pool.address), abi=abi.V3_POOL)
        slot0, liquidity, fee, spacing = await self.batch(
            f"{pool.address} state",
            [
                lambda: c.functions.slot0().call(block_identifier=block),
                lambda: c.functions.liquidity().call(block_identifier=block),
                lambda: c.functions.fee().call(block_identifier=block),
                lambda: c.functions.tickSpacing().call(block_identifier=block),
            ],
        )
        sqrt_p, tick = int(slot0[0]), int(slot0[1])
        spacing = int(spacing)
        center = (tick // spacing) >> 8
        lo, hi = center - self.word_radius, center + self.word_radius
        words = await self.batch(
            f"{pool.address}.tickBitmap",
            [partial(c.functions.tickBitmap(w).call, block_identifier=block) for w in range(lo, hi + 1)],
        )
        bitmap = {w: int(word) for w, word in zip(range(lo, hi + 1), words, strict=True) if int(word)}
        ticks_idx = [((w << 8) + b) * spacing for w, word in bitmap.items() for b in range(256) if word >> b & 1]
        infos = await self.batch(
            f"{pool.address}.ticks", [partial(c.functions.ticks(t).call, block_identifier=block) for t in ticks_idx]
        )
        state = V3PoolState(int(fee), spacing, sqrt_p, tick, int(liquidity), loaded_words=(lo, hi), block=block)
        state.words = bitmap
        for t, info in zip(ticks_idx, infos, strict=True):
            state.ticks[t] = TickInfo(int(info[0]), int(info[1]))
        pool.state = state

    # -- following events ----------------------------------------------------------------------
    async def poll(self) -> int:
        """Apply every pool event since the last poll, up to the head; returns the events applied.

        On any failure every pool is marked unhealthy (quotes refused) and the error re-raised;
        a pool that was unhealthy is re-read in full at the head before it is healthy again,
        since the events it missed cannot be trusted to have been seen.
        """
        self.polls += 1
        try:
            head = await self._rpc("eth_blockNumber", self.w3.eth.block_number)
            applied = 0
            if head > self.last_block and self.pools:
                logs = await self._rpc(
                    "eth_getLogs",
                    self.w3.eth.get_logs(
                        {
                            "fromBlock": self.last_block + 1,
                            "toBlock": head,
                            "address": [AsyncWeb3.to_checksum_address(a) for a in self.pools],
                            "topics": [list(self._topics)],
                        }
                    ),
                )
                for entry in logs:
                    applied += self._apply(entry)
            for p in self.pools.values():
                if not p.healthy:
                    await self.refresh(p, head)
        except DexError as e:
            for p in self.pools.values():
                p.mark_unhealthy(f"event poll failed: {e}")
            raise
        self.last_block = max(self.last_block, head)
        self.head_block = head
        now = time.monotonic()
        for p in self.pools.values():
            p.mark_healthy(max(p.block, head), head, now)
        return applied

    def _apply(self, entry: Any) -> int:
        pool = self.pools.get(AsyncWeb3.to_checksum_address(entry["address"]))
        if pool is None or not entry["topics"] or int(entry["blockNumber"]) <= pool.block:
            return 0  # unknown pool, or an event already in the state read at pool.block
        topic = "0x" + bytes(entry["topics"][0]).hex()
        name = self._topics.get(topic)
        if name is None:
            return 0
        if isinstance(pool, V2Pool):
            if name != "Sync":
                return 0
            ev = self._pair.events.Sync().process_log(entry)["args"]
            pool.reserve0, pool.reserve1 = int(ev["reserve0"]), int(ev["reserve1"])
            return 1
        st = pool.state
        if st is None or name == "Sync":
            return 0
        ev = getattr(self._v3pool.events, name)().process_log(entry)["args"]
        if name == "Swap":
            st.apply_swap_event(int(ev["sqrtPriceX96"]), int(ev["liquidity"]), int(ev["tick"]))
        elif name == "Mint":
            st.apply_liquidity_event(int(ev["tickLower"]), int(ev["tickUpper"]), int(ev["amount"]))
        else:
            st.apply_liquidity_event(int(ev["tickLower"]), int(ev["tickUpper"]), -int(ev["amount"]))
        st.block = int(entry["blockNumber"])
        return 1

    async def follow(self, interval_s: float, stop: asyncio.Event, max_backoff_s: float = 30.0) -> None:
        """Poll until ``stop`` is set; errors back off (pools stay unhealthy meanwhile)."""
        delay = interval_s
        while not stop.is_set():
            try:
                await self.poll()
                delay = interval_s
            except DexError as e:
                log.warning("chain %s: %s", self.chain_id, e)
                delay = min(max_backoff_s, delay * 2)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)

    # -- on-chain quotes (cross-checks and benchmarks) -------------------------------------------
    async def quoter_v2_exact_input(self, pool: V3Pool, token_in: str, amount_in: int) -> int:
        """QuoterV2.quoteExactInputSingle through eth_call (the pool's own swap, reverted)."""
        if not pool.dex.quoter:
            raise ValueError(f"{pool.dex.name}: no QuoterV2 address configured")
        q = self.w3.eth.contract(address=AsyncWeb3.to_checksum_address(pool.dex.quoter), abi=abi.V3_QUOTER_V2)
        tin = pool.token0 if pool.zero_for_one(token_in) else pool.token1
        params = (tin.address, pool.other(tin).address, amount_in, pool.fee, 0)
        res = await self._rpc("QuoterV2.quoteExactInputSingle", q.functions.quoteExactInputSingle(params).call())
        return int(res[0])

    async def router_amounts_out(self, pool: V2Pool, token_in: str, amount_in: int) -> int:
        """Router02.getAmountsOut through eth_call, for one hop through ``pool``."""
        r = self.w3.eth.contract(address=AsyncWeb3.to_checksum_address(pool.dex.router), abi=abi.V2_ROUTER)
        tin = pool.token0 if pool.zero_for_one(token_in) else pool.token1
        path = [tin.address, pool.other(tin).address]
        res = await self._rpc("Router02.getAmountsOut", r.functions.getAmountsOut(amount_in, path).call())
        return int(res[-1])

    def pool_for(self, address: str) -> PoolBase:
        try:
            return self.pools[AsyncWeb3.to_checksum_address(address)]
        except (KeyError, ValueError) as e:
            raise UnknownPool(f"pool {address} is not followed on chain {self.chain_id}") from e
