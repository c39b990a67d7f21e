"""Inventory per venue and asset: target allocations, rebalancing suggestions, balance drift.

Arbitrage moves inventory: every trade buys on one venue and sells on another, so the asset
piles up where it is cheap and the quote where it is dear, until a venue cannot trade one
direction any more. This module says where each asset is, where the configuration wants it
(a share of the asset's total per venue), and which transfers would restore that -- as
*suggestions*: nothing here (or anywhere in cryptoarb) withdraws or transfers by itself.

It also compares what a venue reports (a fetched balance) with what the internal ledger says
it should hold: a difference beyond the tolerance is a :class:`Drift`, an event others alert on.

Pure and exact (decimals); balances come in as plain mappings ``venue -> asset -> amount``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

ZERO = Decimal(0)
Balances = Mapping[str, Mapping[str, Decimal]]


@dataclass(frozen=True, slots=True)
class InventoryConfig:
    targets: dict[str, dict[str, Decimal]] = field(default_factory=dict)  # venue -> asset -> share
    band: Decimal = Decimal("0.1")  # tolerated distance of a venue's share from its target
    min_move: dict[str, Decimal] = field(default_factory=dict)  # asset -> smallest transfer suggested
    drift_tolerance: Decimal = Decimal("0.00000001")  # absolute, per venue and asset


@dataclass(frozen=True, slots=True)
class Holding:
    venue: str
    asset: str
    qty: Decimal
    share: Decimal  # of the asset's total over the venues that hold or target it
    target: Decimal | None  # None: no target configured for this venue and asset


@dataclass(frozen=True, slots=True)
class Move:
    """Transfer ``qty`` of ``asset`` from ``src`` to ``dst``: a suggestion, never executed."""

    asset: str
    src: str
    dst: str
    qty: Decimal
    reason: str


@dataclass(frozen=True, slots=True)
class Drift:
    """A venue reports ``reported`` where the ledger holds ``ledger``."""

    venue: str
    asset: str
    ledger: Decimal
    reported: Decimal

    @property
    def diff(self) -> Decimal:
        return self.reported - self.ledger


def _targets_by_asset(cfg: InventoryConfig) -> dict[str, dict[str, Decimal]]:
    out: dict[str, dict[str, Decimal]] = {}
    for venue, assets in cfg.targets.items():
        for asset, share in assets.items():
            out.setdefault(asset, {})[venue] = share
    return out


def holdings(balances: Balances, cfg: InventoryConfig) -> list[Holding]:
    """Every (venue, asset) held or targeted, with its share of the asset's total."""
    targets = _targets_by_asset(cfg)
    assets = sorted({a for ccys in balances.values() for a, q in ccys.items() if q} | set(targets))
    rows: list[Holding] = []
    for asset in assets:
        tv = targets.get(asset, {})
        venues = sorted({v for v, ccys in balances.items() if ccys.get(asset, ZERO)} | set(tv))
        total = sum((balances.get(v, {}).get(asset, ZERO) for v in venues), ZERO)
        for v in venues:
            q = balances.get(v, {}).get(asset, ZERO)
            rows.append(Holding(v, asset, q, q / total if total else ZERO, tv.get(v)))
    return rows


def suggest(balances: Balances, cfg: InventoryConfig) -> list[Move]:
    """Transfers that bring every targeted asset back within ``band`` of its targets.

    Per asset with targets: each target venue should hold ``share x total`` (total over the
    target venues). Venues above ``target + band`` give, venues below ``target - band`` get; the
    largest surplus feeds the largest deficit first, each move as large as both allow (so the
    list is short), moves under the asset's ``min_move`` are dropped."""
    moves: list[Move] = []
    for asset, tv in sorted(_targets_by_asset(cfg).items()):
        held = {v: balances.get(v, {}).get(asset, ZERO) for v in tv}
        total = sum(held.values(), ZERO)
        if total <= 0:
            continue
        band = cfg.band * total
        over = {v: held[v] - tv[v] * total for v in tv if held[v] - tv[v] * total > band}
        under = {v: tv[v] * total - held[v] for v in tv if tv[v] * total - held[v] > band}
        if not over or not under:
            continue
        floor = cfg.min_move.get(asset, ZERO)
        while over and under:
            src = max(over, key=lambda v: (over[v], v))
            dst = max(under, key=lambda v: (under[v], v))
            qty = min(over[src], under[dst])
            if qty > floor:
                moves.append(Move(asset, src, dst, qty, f"{src} holds {held[src] / total:.1%} of {asset} "
                                  f"(target {tv[src]:.1%}), {dst} {held[dst] / total:.1%} (target {tv[dst]:.1%})"))
            over[src] -= qty
            under[dst] -= qty
            if over[src] <= 0:
                del over[src]
            if under[dst] <= 0:
                del under[dst]
    return moves


def drift(ledger: Balances, reported: Balances, tolerance: Decimal) -> list[Drift]:
    """(venue, asset) pairs where the venue's reported balance differs from the ledger by more
    than ``tolerance``. Only the venues in ``reported`` are compared (those just fetched); an
    asset missing on either side counts as 0 (venues leave empty balances out)."""
    out: list[Drift] = []
    for venue in sorted(reported):
        rep = reported[venue]
        led = ledger.get(venue, {})
        for asset in sorted(set(rep) | set(led)):
            a, b = led.get(asset, ZERO), rep.get(asset, ZERO)
            if abs(b - a) > tolerance:
                out.append(Drift(venue, asset, a, b))
    return out
