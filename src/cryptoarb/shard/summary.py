"""One run summary from the shards' summaries: what a single-process run over the same markets
would have reported (the same keys; ``shards`` added).

Counts and money add up (money as decimals: ``pnl_exact``, ``expected_pnl``, ``realized_pnl``);
books are disjoint and simply united; the latency percentiles come from the shards' histogram
buckets merged (not from averaging percentiles). Two figures cannot be rebuilt exactly from
parts and say so in their name: ``max_unhedged_quote`` and the leg-risk maxima are the sum of
the shards' maxima (an upper bound of the run's maximum).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from cryptoarb.engine.latency import LatencyRecorder

_STATE_ORDER = {"closed": 0, "half_open": 1, "half-open": 1, "open": 2}


def merge_latency(parts: Sequence[dict[str, Any]]) -> LatencyRecorder:
    """A recorder holding every shard's samples (bucket counts added)."""
    total = LatencyRecorder()
    for p in parts:
        h = p.get("latency_hist")
        if not h:
            continue
        one = LatencyRecorder()
        for i, c in h["buckets"]:
            one._counts[i] += c
        one._n, one._total = h["n"], h["total"]
        total.merge(one)
    return total


def _dec_sum(values: Sequence[Any]) -> str:
    return str(sum((Decimal(str(v)) for v in values), Decimal(0)))


def _merge(values: list[Any]) -> Any:
    """Generic: dicts key by key, counts and floats added, flags or-ed, equal strings kept,
    breaker states the worst, lists concatenated."""
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    if all(isinstance(v, dict) for v in vals):
        keys = list(dict.fromkeys(k for v in vals for k in v))
        return {k: _merge([v.get(k) for v in vals]) for k in keys}
    if all(isinstance(v, bool) for v in vals):
        return any(vals)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
        return sum(vals)
    if all(isinstance(v, str) for v in vals):
        if all(v in _STATE_ORDER for v in vals):
            return max(vals, key=lambda v: _STATE_ORDER[v])
        if len(set(vals)) == 1:
            return vals[0]
        return vals[0]
    if all(isinstance(v, list) for v in vals):
        if all(v == vals[0] for v in vals):
            return vals[0]
        return [x for v in vals for x in v]
    return vals[0]


def _inventory(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    qty: dict[tuple[str, str], Decimal] = {}
    target: dict[tuple[str, str], Any] = {}
    for p in parts:
        for h in p.get("inventory", {}).get("holdings", []):
            k = (h["venue"], h["asset"])
            qty[k] = qty.get(k, Decimal(0)) + Decimal(h["qty"])
            target.setdefault(k, h.get("target"))
    by_asset: dict[str, Decimal] = {}
    for (_, asset), q in qty.items():
        by_asset[asset] = by_asset.get(asset, Decimal(0)) + q
    holdings = [{"venue": v, "asset": a, "qty": str(q), "share": float(q / by_asset[a]) if by_asset[a] else 0.0,
                 "target": target[(v, a)]} for (v, a), q in sorted(qty.items())]
    inv = [p.get("inventory", {}) for p in parts]
    return {"holdings": holdings, "suggestions": [s for i in inv for s in i.get("suggestions", [])],
            "drift": [d for i in inv for d in i.get("drift", [])],
            "balance_checks": sum(i.get("balance_checks", 0) for i in inv)}


def merge(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The run's summary from the shards' (each as the shard worker sends it)."""
    lat = merge_latency(parts)
    exact = [Decimal(0)] * 3
    for p in parts:
        for i, x in enumerate(p.get("pnl_exact", ("0", "0", "0"))):
            exact[i] += Decimal(x)
    books: dict[str, Any] = {}
    for p in parts:
        books.update(p.get("books", {}))
    out: dict[str, Any] = {
        "messages": sum(p.get("messages", 0) for p in parts),
        "books": dict(sorted(books.items())),
        "opportunities": sum(p.get("opportunities", 0) for p in parts),
        "trades": sum(p.get("trades", 0) for p in parts),
        "pnl_quote": float(exact[0]),
        "pnl": {"realised": float(exact[0]), "unrealised": float(exact[1]), "total": float(exact[2])},
        "max_unhedged_quote": sum(p.get("max_unhedged_quote") or 0.0 for p in parts),
        "latency_us": lat.summary_us() if len(lat) else dict.fromkeys(("p50", "p99", "p999")),
        "risk": _merge([p.get("risk") for p in parts]),
        "legrisk": _merge([p.get("legrisk") for p in parts]),
        "inventory": _inventory(parts),
        "cycles": sum(p.get("cycles", 0) for p in parts),
        "simulated": False,
        "trades_by_status": _merge([p.get("trades_by_status", {}) for p in parts]) or {},
        "expected_pnl": _dec_sum([p.get("expected_pnl", "0") for p in parts]),
        "realized_pnl": _dec_sum([p.get("realized_pnl", "0") for p in parts]),
    }
    feeds: dict[str, list[dict[str, Any]]] = {}
    for p in parts:
        for venue, f in p.get("feeds", {}).items():
            feeds.setdefault(venue, []).append(f)
    out["feeds"] = {v: {**_merge(fs), "failures": {k: x for f in fs for k, x in f.get("failures", {}).items()},
                        "last_error": next((f["last_error"] for f in fs if f.get("last_error")), "")}
                    for v, fs in feeds.items()}
    return out
