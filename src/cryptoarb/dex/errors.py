"""Errors of the DEX venues.

Each failure a caller must react to differently has its own type: a configuration mistake
(wrong chain, unknown token or pool) stops start-up; an RPC failure or stale pool state makes
the venue unhealthy and refuses quotes until it recovers; a failed transaction is a failed leg.
All derive from :class:`DexError`, so one ``except`` can catch "anything DEX".
"""

from __future__ import annotations


class DexError(Exception):
    """Base class of every DEX venue error."""


class InsufficientLiquidity(DexError, ValueError):
    """A swap the pool cannot serve (empty reserves, output >= reserve, out of ticks)."""


class InsufficientInput(DexError, ValueError):
    """A zero or negative amount where the contract requires a positive one."""


class ChainIdMismatch(DexError):
    """The RPC endpoint serves another chain than the configuration expects."""


class UnknownToken(DexError):
    """The address is not an ERC-20 token (no code, or decimals()/symbol() fail)."""


class UnknownPool(DexError):
    """The factory has no pool/pair for these tokens (and fee tier)."""


class RpcError(DexError):
    """An RPC call failed or timed out; the message names the call and the endpoint."""


class StalePoolError(DexError):
    """Pool state is too old, incomplete or the pool is unhealthy: no quote may be given."""


class IncompleteTickData(StalePoolError):
    """A V3 swap would walk into a tick-bitmap word that was never loaded."""


class ExecutionError(DexError):
    """A transaction could not be built or sent (not: it reverted; that is a failed leg)."""


class SecretError(DexError):
    """The private key is missing or malformed; the message never contains the key."""
