"""What a ccxt error means for an order: refused (nothing happened), or outcome unknown.

The rule that keeps orders from being lost or doubled: only an error in which the venue itself
says it did not take the order (a definite refusal: bad parameters, insufficient balance, bad
keys, a timestamp outside its window) is final. Everything else — a timeout, a reset
connection, a 5xx, a rate limit, maintenance, a body we cannot parse — may hide an order that
was accepted: it is resolved by client id, never re-sent.

Messages are one line, with every key scrubbed (ccxt errors may quote the request).
"""

from __future__ import annotations

from enum import Enum

from cryptoarb.execution.keys import Credentials
from cryptoarb.redact import redact_text


class Outcome(Enum):
    REJECTED = "rejected"
    UNKNOWN = "unknown"


def classify(e: BaseException, creds: Credentials | None = None) -> tuple[Outcome, str]:
    import ccxt

    why = one_line(e, creds)
    if isinstance(e, ccxt.InvalidNonce) and not isinstance(e, ccxt.ChecksumError):  # Binance -1021: refused
        return Outcome.REJECTED, f"clock skew: the venue refused the request's timestamp ({why}); sync the clock"
    if isinstance(e, ccxt.NetworkError):  # timeouts, resets, 5xx, DDoSProtection (429/418), OnMaintenance
        return Outcome.UNKNOWN, why
    if isinstance(e, ccxt.AuthenticationError | ccxt.PermissionDenied | ccxt.AccountSuspended):
        return Outcome.REJECTED, f"the venue refused the API key ({why})"
    if isinstance(e, ccxt.InsufficientFunds):
        return Outcome.REJECTED, f"insufficient balance ({why})"
    if isinstance(e, ccxt.InvalidOrder | ccxt.BadSymbol | ccxt.BadRequest | ccxt.NotSupported):
        return Outcome.REJECTED, why
    return Outcome.UNKNOWN, why  # anything else: assume it may have happened


def one_line(e: BaseException, creds: Credentials | None = None) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    if creds is not None:
        text = creds.scrub(text)
    text = redact_text(text)
    if len(text) > 300:
        text = text[:300] + "..."
    return f"{type(e).__name__}: {text}"
