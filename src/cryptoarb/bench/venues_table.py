"""The table ``python -m cryptoarb.bench.venues`` prints from :func:`cryptoarb.bench.venues.run_all` rows."""

from __future__ import annotations

from typing import Any


def _us(x: Any) -> str:
    return "-" if x is None else f"{x:.1f}" if x < 100 else f"{x:.0f}"


def render(rows: list[dict[str, Any]]) -> tuple[Any, list[str]]:
    """A rich table of ``run_all`` rows, plus the notes (reasons, errors) to print under it."""
    from rich.table import Table

    t = Table(title="Per-venue parse+apply µs per message, native vs ccxt.pro (medians of runs)")
    t.add_column("venue")
    t.add_column("capture")
    for col in (
        "native msgs", "books", "bad", "crc ok/fail", "nat p50", "nat p99", "nat mean",
        "ccxt p50", "ccxt p99", "ccxt mean", "ccxt books", "ccxt err", "ccxt/nat", "snap mean nat/ccxt",
    ):
        t.add_column(col, justify="right")
    notes: list[str] = []
    for row in rows:
        nat, cc = row["native"], row["ccxt"]
        kind = row.get("kind", "DEPTH")
        tag = "" if kind == "DEPTH" else " (snap)"
        if "reason" in nat:
            nat_cells = ["[yellow]n/a[/]", "-", "-", "-", "-", "-", "-"]
            notes.append(f"{row['capture']} native: {nat['reason']}")
        else:
            d = nat[kind]
            crc = f"{nat['checksums_ok']}/{nat['checksum_failures']}"
            nat_cells = [
                f"{d['count']}{tag}",
                f"{nat['books_valid']}/{nat['books_total']}",
                str(nat["bad_messages"] + nat["errors"]),
                crc if crc != "0/0" else "-",
                _us(d["p50_us"]), _us(d["p99_us"]), _us(d["mean_us"]),
            ]
            if nat.get("first_error"):
                notes.append(f"{row['capture']} native first error: {nat['first_error']}")
        if "reason" in cc:
            cc_cells = ["[yellow]n/a[/]", "-", "-", "-", "-"]
            notes.append(f"{row['capture']} ccxt n/a: {cc['reason']}")
        else:
            d = cc[kind]
            cc_cells = [
                _us(d["p50_us"]), _us(d["p99_us"]), _us(d["mean_us"]),
                f"{cc['books_ok']}/{cc['books_total']}", str(cc["errors"]),
            ]
            if cc.get("first_errors"):
                notes.append(f"{row['capture']} ccxt errors: {'; '.join(cc['first_errors'])}")
            if cc.get("note"):
                notes.append(f"{row['capture']} ccxt: {cc['note']}")
        ratio = row.get("ratio")
        ns = nat.get("SNAPSHOT", {}).get("mean_us") if kind == "DEPTH" else None
        cs = cc.get("SNAPSHOT", {}).get("mean_us") if kind == "DEPTH" else None
        snap = f"{_us(ns) if ns else '-'}/{_us(cs) if cs else '-'}" if ns or cs else "-"
        t.add_row(row["venue"], row["capture"], *nat_cells, *cc_cells, f"{ratio:.1f}x" if ratio else "-", snap)
    return t, notes
