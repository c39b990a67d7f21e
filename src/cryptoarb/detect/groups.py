"""Equivalence groups: which instruments may be compared with which.

Two books are only compared when a group says they trade the same thing. Spot markets of one
base/quote on several venues form a plain group; a spot market with linear perpetuals of the
same pair is a *basis* group (the price difference there is a funding/basis spread, and it is
labelled so). Inverse contracts quote in USD and size in USD contracts: they join a group only
when the configuration declares their quote equivalent (e.g. USD ~ USDT), and the detector
converts their contracts to base units; otherwise they are refused with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptoarb.core.instruments import Instrument, Kind


class GroupError(ValueError):
    pass


@dataclass(frozen=True)
class Group:
    name: str
    label: str  # "spot", "basis", "dex", ...
    members: tuple[str, ...]  # instrument keys "<venue> <symbol>"


@dataclass
class GroupPlan:
    groups: list[Group] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # instrument key -> reason


def _same_quote(a: str, b: str, equivalents: list[set[str]]) -> bool:
    return a == b or any(a in eq and b in eq for eq in equivalents)


def check_member(inst: Instrument, base: str, quote: str, equivalents: list[set[str]]) -> str | None:
    """Why ``inst`` cannot join a group of ``base/quote``; None when it can."""
    if inst.base != base:
        return f"{inst.key}: base {inst.base} is not {base}"
    if not _same_quote(inst.quote, quote, equivalents):
        why = f"{inst.key}: quote {inst.quote} is not {quote}"
        if inst.kind is Kind.INVERSE:
            why += f" (an inverse contract; declare quote_equivalents [[\"{inst.quote}\", \"{quote}\"]] to convert it)"
        return why
    return None


def auto_groups(
    instruments: list[Instrument],
    basis: bool = True,
    equivalents: list[set[str]] | None = None,
    inverse: bool = True,
) -> GroupPlan:
    """Spot groups per base/quote; with ``basis``, one spot+perpetual group per base/quote.

    Inverse contracts join the basis group of their base when their quote is declared
    equivalent; otherwise they are listed in ``refused`` with the reason.
    """
    eq = equivalents or []
    plan = GroupPlan()
    spot: dict[tuple[str, str], list[Instrument]] = {}
    for inst in instruments:
        if inst.kind is Kind.SPOT:
            spot.setdefault((inst.base, inst.quote), []).append(inst)
    for (base, quote), members in sorted(spot.items()):
        if len({m.venue for m in members}) > 1:
            plan.groups.append(Group(f"{base}/{quote}", "spot", tuple(m.key for m in members)))
    if not basis:
        return plan
    for (base, quote), members in sorted(spot.items()):
        perps = []
        for inst in instruments:
            if inst.kind is Kind.SPOT or inst.base != base:
                continue
            if inst.kind is Kind.INVERSE and not inverse:
                continue
            why = check_member(inst, base, quote, eq)
            if why is None:
                perps.append(inst)
            elif inst.base == base:
                plan.refused[inst.key] = why
        if perps:
            keys = tuple(m.key for m in members) + tuple(p.key for p in perps)
            plan.groups.append(Group(f"{base}/{quote} basis", "basis", keys))
    for key in list(plan.refused):
        if any(key in g.members for g in plan.groups):
            del plan.refused[key]
    return plan


def explicit_groups(
    specs: list[dict[str, object]], by_key: dict[str, Instrument], equivalents: list[set[str]]
) -> GroupPlan:
    """Groups written in the configuration: ``{name, label, members: ["venue SYMBOL", ...]}``."""
    plan = GroupPlan()
    for spec in specs:
        name = str(spec.get("name", ""))
        members = spec.get("members")
        if not name or not isinstance(members, list) or len(members) < 2:
            raise GroupError(f"group {name or '?'}: needs a name and at least two members")
        insts = []
        for key in members:
            if key not in by_key:
                known = ", ".join(sorted(by_key)) or "none"
                raise GroupError(f"group {name}: unknown instrument {key!r} (known: {known})")
            insts.append(by_key[key])
        first = next((i for i in insts if i.kind is not Kind.INVERSE), insts[0])
        for inst in insts:
            why = check_member(inst, first.base, first.quote, equivalents)
            if why is not None:
                raise GroupError(f"group {name}: {why}")
        label = str(spec.get("label") or ("spot" if all(i.kind is Kind.SPOT for i in insts) else "basis"))
        plan.groups.append(Group(name, label, tuple(i.key for i in insts)))
    return plan
