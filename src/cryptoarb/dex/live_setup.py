"""Start-up I/O of a live DEX run: connect a chain, discover a configured pool, read the wallet.

These run once, before any feed starts, and turn every failure into a one-line
:class:`DexStartError` so a configuration mistake stops the run with a readable message (RPC
URLs redacted: they often embed an API key). Kept apart from :mod:`.live` so the runtime there
holds only the steady-state loop; :class:`~cryptoarb.dex.live.DexRuntime` calls these from ``start``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from decimal import Decimal

from web3 import AsyncWeb3

from cryptoarb.config import DexPoolSettings, DexVenueSettings
from cryptoarb.core.accounting import Portfolio
from cryptoarb.dex import abi
from cryptoarb.dex.chain import ChainClient, make_provider, redact_url
from cryptoarb.dex.errors import DexError
from cryptoarb.dex.live_model import Chain, DexStartError, Pool, PoolEntry, one_line
from cryptoarb.dex.pools import DexSpec, Freshness


async def connect_chain(ch: Chain) -> ChainClient:
    """Connect to the chain's RPC and check its chain id; the client's later errors name the URL scrubbed."""
    c = ch.cfg
    url = redact_url(c.rpc_url)
    # our own provider, so that it is closed when the connection check fails (no leaked session)
    provider = make_provider(c.rpc_url)
    try:
        client = await ChainClient.connect(provider, c.chain_id, c.timeout_s, Freshness(c.max_block_lag, c.max_age_s))
    except (DexError, ValueError, OSError) as e:
        with contextlib.suppress(Exception):
            await provider.disconnect()
        msg = str(e).replace(c.rpc_url, url).replace(type(provider).__name__, url)  # no API key shown
        raise DexStartError(f"dex chain {c.chain_id} ({url}): {one_line(msg)}") from None
    client.endpoint, client._raw_endpoint = url, c.rpc_url  # later errors name the URL, scrubbed
    return client


async def discover_pool(ch: Chain, v: DexVenueSettings, i: int, p: DexPoolSettings) -> PoolEntry:
    """Find the ``i``-th configured pool on its venue's factory and load its tokens and state."""
    assert ch.client is not None
    spec = DexSpec(v.name, v.kind, v.chain_id, v.factory, v.router, v.fee_bps, v.quoter, v.swap_gas)
    try:
        if v.kind == "v2":
            pool: Pool = await ch.client.v2_pair(spec, p.base, p.quote)
        else:
            pool = await ch.client.v3_pool(spec, p.base, p.quote, p.fee)
        base, quote = await ch.client.token(p.base), await ch.client.token(p.quote)
    except (DexError, ValueError) as e:
        raise DexStartError(f"dex.pools.{i} ({p.venue}): {one_line(e)}") from None
    return PoolEntry(p.venue, pool, base, quote, ch)


async def deposit_wallet(ch: Chain, address: str, pools: Iterable[Pool], portfolio: Portfolio) -> None:
    """The wallet's real token and native balances on this chain, into the portfolio (for sizing caps)."""
    assert ch.client is not None
    w3 = ch.client.w3
    tokens = {t.address: t for p in pools for t in (p.token0, p.token1)}
    for t in tokens.values():
        erc20 = w3.eth.contract(address=AsyncWeb3.to_checksum_address(t.address), abi=abi.ERC20)
        raw = await ch.client._rpc(f"{t.symbol}.balanceOf", erc20.functions.balanceOf(address).call())
        portfolio.deposit(ch.wallet, t.symbol, t.human(int(raw)))
    wei = await ch.client._rpc("eth_getBalance", w3.eth.get_balance(AsyncWeb3.to_checksum_address(address)))
    portfolio.deposit(ch.wallet, ch.cfg.native_symbol, Decimal(int(wei)) / Decimal(10**18))
