"""On-chain swaps through the V2 router and the V3 SwapRouter, with our own key and nonces.

Every swap carries a protective bound (``amountOutMin`` for exact input, ``amountInMax`` for
exact output, from the planned amount and a slippage bound) and a deadline, so a moved pool
makes the transaction revert instead of trading at a worse price. Transactions are signed
locally (EIP-1559) and sent raw: the node never holds the key. Nonces come from a local counter
(one pending transaction per nonce, no round trip per swap) that is re-read from the chain after
any send error or dropped transaction.

A swap's outcome is a :class:`SwapOutcome`: ``mined`` with the exact amounts moved (from the
tokens' ``Transfer`` logs, not from the quote), or a failed leg: ``reverted`` (mined with status
0: gas paid, nothing swapped), ``rejected`` (the pre-flight simulation reverted or the node
refused it: nothing paid) or ``dropped`` (no receipt within the timeout). Gas paid is always
``gasUsed * effectiveGasPrice`` from the receipt.

The private key is read from the environment (``ARB_DEX_PRIVATE_KEY``) or a secrets file
(``ARB_DEX_PRIVATE_KEY_FILE``, not readable by group/others); it is never logged, never part of
an error message, and :class:`Signer`'s repr redacts it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import AsyncWeb3
from web3.logs import DISCARD

from cryptoarb.dex import abi
from cryptoarb.dex.chain import ChainClient
from cryptoarb.dex.errors import DexError, ExecutionError, SecretError
from cryptoarb.dex.pools import V2Pool, V3Pool

log = logging.getLogger(__name__)
KEY_ENV = "ARB_DEX_PRIVATE_KEY"
KEY_FILE_ENV = "ARB_DEX_PRIVATE_KEY_FILE"
MAX_UINT256 = 2**256 - 1

MINED = "mined"
REVERTED = "reverted"
REJECTED = "rejected"
DROPPED = "dropped"


class Signer:
    """A local private key. Its repr, str and errors show the address only."""

    __slots__ = ("_account", "address")

    def __init__(self, private_key: str) -> None:
        key = private_key.strip()
        body = key[2:] if key.startswith(("0x", "0X")) else key
        if len(body) != 64 or any(ch not in "0123456789abcdefABCDEF" for ch in body):
            raise SecretError("private key must be 32 bytes of hex (64 hex digits, optional 0x); value not shown")
        try:
            self._account = Account.from_key("0x" + body)
        except Exception:  # the library's message could echo the key: replace it, drop the chain
            raise SecretError("private key is not a valid secp256k1 key; value not shown") from None
        self.address: str = self._account.address

    @classmethod
    def from_env(
        cls, env: str = KEY_ENV, file_env: str = KEY_FILE_ENV, secrets_file: str | Path | None = None
    ) -> Signer:
        """Key from ``$ARB_DEX_PRIVATE_KEY``, else from the file named by ``secrets_file`` or
        ``$ARB_DEX_PRIVATE_KEY_FILE`` (which must not be readable by group or others)."""
        value = os.environ.get(env)
        if value:
            return cls(value)
        path = secrets_file or os.environ.get(file_env)
        if not path:
            raise SecretError(f"no private key: set {env} or point {file_env} at a secrets file")
        p = Path(path)
        try:
            mode = p.stat().st_mode
        except OSError as e:
            raise SecretError(f"secrets file {p} cannot be read: {e.strerror}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SecretError(
                f"secrets file {p} is accessible by group/others (mode {oct(mode & 0o777)}); chmod 600 it"
            )
        return cls(p.read_text())

    def sign(self, tx: dict[str, Any]) -> bytes:
        return bytes(self._account.sign_transaction(tx).raw_transaction)

    def __repr__(self) -> str:
        return f"Signer({self.address}, key=<redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # never pickle the key into a task queue or a cache
        raise TypeError("Signer cannot be pickled")


class NonceManager:
    """Local nonce counter for one address; ``resync`` after anything that may have desynced it."""

    def __init__(self, w3: AsyncWeb3[Any], address: str) -> None:
        self.w3 = w3
        self.address = address
        self._next: int | None = None
        self._lock = asyncio.Lock()
        self.resyncs = 0

    async def take(self) -> int:
        async with self._lock:
            if self._next is None:
                addr = AsyncWeb3.to_checksum_address(self.address)
                self._next = int(await self.w3.eth.get_transaction_count(addr, "pending"))
            n = self._next
            self._next += 1
            return n

    def resync(self) -> None:
        self._next = None
        self.resyncs += 1


@dataclass(slots=True)
class SwapOutcome:
    status: str  # MINED | REVERTED | REJECTED | DROPPED
    venue: str
    token_in: str
    token_out: str
    amount_in: int = 0  # raw units actually paid (Transfer logs)
    amount_out: int = 0  # raw units actually received
    tx_hash: str = ""
    block: int = 0
    gas_used: int = 0
    effective_gas_price: int = 0
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status == MINED

    @property
    def gas_cost_wei(self) -> int:
        return self.gas_used * self.effective_gas_price


class DexExecutor:
    """Sends swaps for one signer on one chain and reports exact outcomes."""

    def __init__(
        self,
        client: ChainClient,
        signer: Signer,
        receipt_timeout_s: float = 120.0,
        priority_fee_wei: int = 1_000_000_000,
        deadline_s: int = 120,
        preflight: bool = True,
    ) -> None:
        self.client = client
        self.w3 = client.w3
        self.signer = signer
        self.nonces = NonceManager(self.w3, signer.address)
        self.receipt_timeout_s = receipt_timeout_s
        self.priority_fee_wei = priority_fee_wei
        self.deadline_s = deadline_s
        self.preflight = preflight
        self._erc20 = self.w3.eth.contract(abi=abi.ERC20)
        self.approval_gas_wei = 0

    @property
    def address(self) -> str:
        return self.signer.address

    def __repr__(self) -> str:
        return f"DexExecutor({self.signer!r} chain={self.client.chain_id})"

    async def gas_price(self) -> tuple[int, int]:
        """(maxFeePerGas, maxPriorityFeePerGas): twice the latest base fee plus our tip."""
        block = await self.client._rpc("eth_getBlockByNumber", self.w3.eth.get_block("latest"))
        base = int(block.get("baseFeePerGas", 0) or 0)
        return 2 * base + self.priority_fee_wei, self.priority_fee_wei

    async def expected_gas_price(self) -> int:
        """What a transaction sent now is expected to pay per gas (base fee + tip)."""
        max_fee, tip = await self.gas_price()
        return (max_fee - tip) // 2 + tip

    def deadline(self) -> int:
        return int(time.time()) + self.deadline_s

    # -- approvals ---------------------------------------------------------------------------
    async def approve_routers(self, pools: list[V2Pool | V3Pool]) -> int:
        """Start-up: approve each pool's router for both tokens (once), so that no trade pays for
        an approval. Returns the gas (wei) the approvals cost."""
        spent = 0
        for p in pools:
            for tok in (p.token0, p.token1):
                out = await self.ensure_allowance(tok.address, p.dex.router, 2**255)
                spent += out.gas_cost_wei if out else 0
        self.approval_gas_wei += spent
        return spent

    async def ensure_allowance(self, token: str, spender: str, amount: int) -> SwapOutcome | None:
        """Approve ``spender`` for MAX when the allowance is below ``amount``; None if it was enough."""
        t = self.w3.eth.contract(address=AsyncWeb3.to_checksum_address(token), abi=abi.ERC20)
        spender = AsyncWeb3.to_checksum_address(spender)
        have = await self.client._rpc("allowance", t.functions.allowance(self.address, spender).call())
        if int(have) >= amount:
            return None
        out = await self._send(t.functions.approve(spender, MAX_UINT256), "approve", token, token, 100_000)
        if not out.ok:
            raise ExecutionError(f"approve {token} for {spender} failed: {out.status} {out.reason}")
        return out

    # -- swaps -------------------------------------------------------------------------------
    async def swap_v2(
        self, pool: V2Pool, token_in: str, amount: int, bound: int, exact_out: bool = False, gas_limit: int = 0
    ) -> SwapOutcome:
        """One hop through the pool's Router02.

        Exact input: ``amount`` in, at least ``bound`` out (``swapExactTokensForTokens``).
        Exact output: ``amount`` out, at most ``bound`` in (``swapTokensForExactTokens``).
        """
        tin = pool.token0 if pool.zero_for_one(token_in) else pool.token1
        tout = pool.other(tin)
        router = self.w3.eth.contract(address=AsyncWeb3.to_checksum_address(pool.dex.router), abi=abi.V2_ROUTER)
        await self.ensure_allowance(tin.address, router.address, bound if exact_out else amount)
        path = [tin.address, tout.address]
        if exact_out:
            fn = router.functions.swapTokensForExactTokens(amount, bound, path, self.address, self.deadline())
        else:
            fn = router.functions.swapExactTokensForTokens(amount, bound, path, self.address, self.deadline())
        return await self._send(fn, pool.venue, tin.address, tout.address, gas_limit or 2 * pool.dex.gas_per_swap)

    async def swap_v3(
        self, pool: V3Pool, token_in: str, amount: int, bound: int, exact_out: bool = False, gas_limit: int = 0
    ) -> SwapOutcome:
        """One pool through SwapRouter: ``exactInputSingle`` / ``exactOutputSingle``."""
        tin = pool.token0 if pool.zero_for_one(token_in) else pool.token1
        tout = pool.other(tin)
        router = self.w3.eth.contract(address=AsyncWeb3.to_checksum_address(pool.dex.router), abi=abi.V3_SWAP_ROUTER)
        await self.ensure_allowance(tin.address, router.address, bound if exact_out else amount)
        if exact_out:
            params = (tin.address, tout.address, pool.fee, self.address, self.deadline(), amount, bound, 0)
            fn = router.functions.exactOutputSingle(params)
        else:
            params = (tin.address, tout.address, pool.fee, self.address, self.deadline(), amount, bound, 0)
            fn = router.functions.exactInputSingle(params)
        return await self._send(fn, pool.venue, tin.address, tout.address, gas_limit or 3 * pool.dex.gas_per_swap)

    async def swap(
        self, pool: V2Pool | V3Pool, token_in: str, amount: int, bound: int, exact_out: bool = False
    ) -> SwapOutcome:
        if isinstance(pool, V2Pool):
            return await self.swap_v2(pool, token_in, amount, bound, exact_out)
        return await self.swap_v3(pool, token_in, amount, bound, exact_out)

    # -- sending -----------------------------------------------------------------------------
    async def _send(self, fn: Any, venue: str, token_in: str, token_out: str, gas_limit: int) -> SwapOutcome:
        out = SwapOutcome(REJECTED, venue, token_in, token_out)
        try:
            max_fee, tip = await self.gas_price()
            tx: dict[str, Any] = {
                "from": self.address,
                "chainId": self.client.chain_id,
                "gas": gas_limit,
                "maxFeePerGas": max_fee,
                "maxPriorityFeePerGas": tip,
            }
            if self.preflight:
                try:
                    est = await self.client._rpc("eth_estimateGas", fn.estimate_gas({"from": self.address}))
                except DexError as e:
                    out.reason = f"pre-flight simulation reverted: {e}"
                    return out
                tx["gas"] = max(gas_limit, int(est) * 5 // 4)
            tx["nonce"] = await self.nonces.take()
            built = await fn.build_transaction(tx)
            raw = self.signer.sign(built)
            h = await self.client._rpc("eth_sendRawTransaction", self.w3.eth.send_raw_transaction(raw))
        except DexError as e:
            self.nonces.resync()
            out.reason = str(e)
            return out
        except Exception as e:  # building/signing errors: no secret in web3/eth-account messages
            self.nonces.resync()
            out.reason = f"{type(e).__name__}: {e}"
            return out
        out.tx_hash = "0x" + bytes(h).hex()
        try:
            rc = await asyncio.wait_for(
                self.w3.eth.wait_for_transaction_receipt(h, self.receipt_timeout_s), self.receipt_timeout_s + 1.0
            )
        except Exception as e:
            self.nonces.resync()
            out.status = DROPPED
            out.reason = f"no receipt within {self.receipt_timeout_s}s ({type(e).__name__})"
            return out
        out.block = int(rc["blockNumber"])
        out.gas_used = int(rc["gasUsed"])
        out.effective_gas_price = int(rc.get("effectiveGasPrice", 0) or 0)
        if rc["status"] != 1:
            out.status = REVERTED
            out.reason = "transaction reverted on chain (amount bound, deadline or pool state)"
            return out
        out.status = MINED
        out.amount_in, out.amount_out = self._transfers(rc, token_in, token_out)
        return out

    def _transfers(self, receipt: Any, token_in: str, token_out: str) -> tuple[int, int]:
        """Exact amounts moved for us, from the tokens' Transfer events in the receipt."""
        me = self.address.lower()
        paid = got = 0
        for ev in self._erc20.events.Transfer().process_receipt(receipt, errors=DISCARD):
            addr = ev["address"].lower()
            args = ev["args"]
            if addr == token_in.lower() and args["from"].lower() == me:
                paid += int(args["value"])
            if addr == token_out.lower() and args["to"].lower() == me:
                got += int(args["value"])
        return paid, got
