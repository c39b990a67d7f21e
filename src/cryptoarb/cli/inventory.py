"""``arb inventory``: where each asset sits, where the targets want it, which transfers would
restore them. Suggestions only: nothing is ever withdrawn or transferred (docs/risk.md)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.table import Table

from cryptoarb.cli.common import EXIT_NOTHING, ConfigOpt, DbOpt, _settings, app, console, fail, warn
from cryptoarb.core.inventory import holdings, suggest


def _stored(url: str, run: str) -> dict[str, dict[str, Decimal]]:
    """The latest balance snapshot of a stored run (``latest``: the most recent run)."""
    from sqlalchemy import func, select

    from cryptoarb.storage.db import connect
    from cryptoarb.storage.models import BalanceRow as Balance
    from cryptoarb.storage.models import Run

    eng = connect(url)
    try:
        with eng.connect() as conn:
            if run == "latest":
                found = conn.execute(select(Run.id).order_by(Run.started_ns.desc()).limit(1)).scalar()
                if found is None:
                    fail(f"--run latest: no run is stored in {url}")
                run = found
            last = conn.execute(select(func.max(Balance.ts_ns)).where(Balance.run_id == run)).scalar()
            if last is None:
                fail(f"--run {run}: no balances stored for this run (unknown run id?)")
            rows = conn.execute(select(Balance.venue, Balance.asset, Balance.amount)
                                .where(Balance.run_id == run, Balance.ts_ns == last)).all()
    finally:
        eng.dispose()
    out: dict[str, dict[str, Decimal]] = {}
    for venue, asset, amount in rows:
        if "/" not in asset:  # derivative positions are stored beside balances under their symbol
            out.setdefault(venue, {})[asset] = Decimal(amount)
    return out


@app.command()
def inventory(
    config: ConfigOpt = None,
    db: DbOpt = None,
    run: Annotated[str | None, typer.Option("--run", help="A stored run id (or 'latest'): its last balances "
                                            "instead of the configured paper balances")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables")] = False,
) -> None:
    """Inventory per venue and asset against [legrisk.inventory] targets, with rebalancing suggestions."""
    settings = _settings(config, db, False)
    cfg = settings.legrisk.inventory.build()
    if run is not None:
        balances = _stored(settings.storage.url, run)
    else:
        balances = {v: {a: Decimal(q) for a, q in ccys.items()} for v, ccys in settings.paper.balances.items()}
    rows = holdings(balances, cfg)
    moves = suggest(balances, cfg)
    if as_json:
        doc: dict[str, Any] = {
            "holdings": [{"venue": h.venue, "asset": h.asset, "qty": str(h.qty), "share": float(h.share),
                          "target": None if h.target is None else float(h.target)} for h in rows],
            "suggestions": [{"asset": m.asset, "from": m.src, "to": m.dst, "qty": str(m.qty), "reason": m.reason}
                            for m in moves],
        }
        console.print_json(json.dumps(doc))
    else:
        t = Table(title="Inventory", title_justify="left")
        for col in ("venue", "asset", "qty", "share", "target"):
            t.add_column(col, justify="left" if col in ("venue", "asset") else "right")
        for h in rows:
            t.add_row(h.venue, h.asset, f"{h.qty:f}", f"{h.share:.1%}", "-" if h.target is None else f"{h.target:.1%}")
        console.print(t)
        if moves:
            m = Table(title="Suggested transfers (never executed automatically)", title_justify="left")
            for col in ("asset", "from", "to", "qty", "why"):
                m.add_column(col, justify="right" if col == "qty" else "left")
            for mv in moves:
                m.add_row(mv.asset, mv.src, mv.dst, f"{mv.qty:f}", mv.reason)
            console.print(m)
        elif cfg.targets:
            console.print(f"every targeted asset is within {cfg.band:.0%} of its targets: no transfer suggested")
        else:
            console.print("no [legrisk.inventory] targets configured: nothing to suggest")
    if not rows:
        warn("no balances: nothing to show")
        raise typer.Exit(EXIT_NOTHING)
