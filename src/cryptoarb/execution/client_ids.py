"""Client order ids: the handle that finds an order at its venue when its answer was lost.

Every live order gets an id of our own before anything is written or sent; the venue stores it
with the order (ccxt ``clientOrderId``; Binance ``newClientOrderId``) and answers a fetch by it
(Binance ``origClientOrderId``). It must therefore be unique forever per account (a reused id
would find an older order) and follow the venue's rules, which ccxt does not describe: the
known ones are below, anything else gets the most restrictive common form (letters and digits,
at most 32).

The id is ``<prefix><run><arb><leg>`` where ``run`` is the run id (random per run) and the rest is
the order's id within its run, so ids of two runs never collide; too long for the venue (or with
characters it refuses), it becomes a hash of the same: deterministic, and still unique.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class IdRule:
    max_len: int
    allowed: str  # a regex character class
    prefix: str = ""


# venue -> rule (from the venues' API documentation)
RULES: dict[str, IdRule] = {
    "binance": IdRule(36, "a-zA-Z0-9_-"),  # ^[a-zA-Z0-9-_]{1,36}$
    "binanceus": IdRule(36, "a-zA-Z0-9_-"),
    "bybit": IdRule(36, "a-zA-Z0-9_-"),
    "okx": IdRule(32, "a-zA-Z0-9"),
    "kucoin": IdRule(40, "a-zA-Z0-9_-"),
    "gate": IdRule(28, "a-zA-Z0-9_.-", prefix="t-"),  # "t-" then at most 28
    "bitget": IdRule(40, "a-zA-Z0-9_-"),
    "htx": IdRule(64, "a-zA-Z0-9_-"),
}
DEFAULT = IdRule(32, "a-zA-Z0-9")
PREFIX = "ca"  # cryptoarb: tells our orders from the account's other orders at the venue


def rule(venue: str) -> IdRule:
    return RULES.get(venue, DEFAULT)


def client_id(venue: str, run_id: str, arb_id: int | str, leg: str) -> str:
    """The client order id of leg ``leg`` of trade ``arb_id`` in run ``run_id`` at ``venue``."""
    r = rule(venue)
    room = r.max_len
    raw = f"{PREFIX}{run_id}{arb_id}{leg}"
    clean = re.sub(f"[^{r.allowed}]", "", raw)
    if clean == raw and len(raw) <= room:
        return r.prefix + raw
    digest = hashlib.sha256(raw.encode()).hexdigest()  # hex: allowed by every rule above
    return r.prefix + (PREFIX + digest)[:room]


def valid(venue: str, cid: str) -> bool:
    r = rule(venue)
    body = cid[len(r.prefix):] if r.prefix and cid.startswith(r.prefix) else cid
    return bool(re.fullmatch(f"[{r.allowed}]{{1,{r.max_len}}}", body)) and cid.startswith(r.prefix)
