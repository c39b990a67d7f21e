"""Which shard follows which markets, and what part of the money each holds (pure).

A *unit* is a set of instruments that must live in one process: the connected components of
the detection groups (a spot group and its basis group share the spot books, so they are one
unit). Markets in no group are units of their own (followed, never compared). Units are
assigned greedily, heaviest first, to the lightest shard (LPT: within 4/3 of the best balance),
by weight: a market's expected message rate when known, else 1 per book.

Money, option (a) of issue #15: each shard owns a fixed slice of every balance and of the
absolute risk limits, so execution needs no hop and the shards' slices add up to what is
configured. A balance is split in proportion to how many of a shard's books trade that currency
on that venue (a base currency followed by one shard goes whole to it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

from cryptoarb.core.instruments import Instrument
from cryptoarb.detect.groups import Group


class ShardError(ValueError):
    """A sharding request that cannot be met (one line for the user)."""


@dataclass
class Part:
    """One shard's share: its instruments (keys ``"<venue> <symbol>"``), its groups, its weight."""

    keys: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    weight: float = 0.0


def units(keys: Sequence[str], groups: Iterable[Group]) -> list[list[str]]:
    """The instrument keys that must stay together: connected components over the groups
    (union-find), in first-seen order; every key of ``keys`` is in exactly one unit."""
    parent: dict[str, str] = {k: k for k in keys}

    def find(k: str) -> str:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for g in groups:
        members = [m for m in g.members if m in parent]
        for m in members[1:]:
            a, b = find(members[0]), find(m)
            if a != b:
                parent[b] = a
    out: dict[str, list[str]] = {}
    for k in keys:
        out.setdefault(find(k), []).append(k)
    return list(out.values())


def partition(keys: Sequence[str], groups: Sequence[Group], n: int,
              weight: Mapping[str, float] | None = None) -> list[Part]:
    """``n`` parts of ``keys``: groups never split, parts balanced by weight (default 1 per
    book). Raises ShardError when ``n`` < 1 or there are fewer units that hold a group than
    ``n`` (a shard with no group to decide on would only cost a process)."""
    if n < 1:
        raise ShardError(f"--shards {n}: give 1 or more")
    us = units(keys, groups)
    grouped = {m for g in groups for m in g.members}
    deciding = [u for u in us if any(k in grouped for k in u)]
    if n > 1 and len(deciding) < n:
        raise ShardError(f"--shards {n}: the run has only {len(deciding)} independent cross-venue group(s) "
                         f"(a group is never split across shards); use --shards {max(1, len(deciding))} or fewer")
    w = weight or {}

    def wt(u: list[str]) -> float:
        return sum(w.get(k, 1.0) for k in u)

    parts = [Part() for _ in range(n)]
    # deciding units first (heaviest first), then the markets no group compares
    order = sorted(deciding, key=lambda u: (-wt(u), u[0])) + sorted(
        (u for u in us if not any(k in grouped for k in u)), key=lambda u: (-wt(u), u[0]))
    for u in order:
        p = min(parts, key=lambda p: (p.weight, len(p.keys)))
        p.keys.extend(u)
        p.weight += wt(u)
    unit_of = {k: i for i, p in enumerate(parts) for k in p.keys}
    for g in groups:
        first = next((m for m in g.members if m in unit_of), None)
        if first is not None:
            parts[unit_of[first]].groups.append(g.name)
    return parts


def slice_balances(balances: Mapping[str, Mapping[str, Decimal]], parts: Sequence[Sequence[Instrument]],
                   places: int = 8) -> list[dict[str, dict[str, Decimal]]]:
    """Each shard's slice of every (venue, currency) balance, proportional to how many of its
    books on that venue trade the currency (base or quote); a currency no shard trades there
    goes to shard 0. Slices are rounded down to ``places`` decimals and the last user gets the
    remainder: they add up to the balance exactly."""
    out: list[dict[str, dict[str, Decimal]]] = [{} for _ in parts]
    for venue, ccys in balances.items():
        for ccy, amount in ccys.items():
            amount = Decimal(amount)
            uses = [sum(1 for i in insts if i.venue == venue and ccy in (i.base, i.quote)) for insts in parts]
            total = sum(uses)
            if not total:
                uses, total = [1] + [0] * (len(parts) - 1), 1
            q = Decimal(1).scaleb(-places)
            users = [k for k, u in enumerate(uses) if u]
            given = Decimal(0)
            for k in users:
                share = amount - given if k == users[-1] else (amount * uses[k] / total).quantize(q, ROUND_DOWN)
                given += share
                out[k].setdefault(venue, {})[ccy] = share
    return out


#: absolute quote-money limits of ``[risk]``: each shard gets 1/n of them (their sum is the limit)
SPLIT_LIMITS = ("max_venue_notional", "max_asset_notional", "max_open_exposure", "max_daily_loss",
                "max_drawdown", "max_one_legged")


def slice_limits(risk: Mapping[str, object], n: int) -> dict[str, object]:
    """The ``[risk]`` values a shard runs with: money limits divided by ``n`` (0, off, stays
    off); per-intent limits (``max_trade_notional``), ages and counts unchanged."""
    out = dict(risk)
    for name in SPLIT_LIMITS:
        v = out.get(name)
        if isinstance(v, (Decimal, int, float)) and not isinstance(v, bool):
            out[name] = v / n
    return out
