"""``arb run --live --trade``: the checks before real orders, and what the run did with them.

Nothing is opened, recorded or sent before these pass: keys for every CEX venue (environment or
a mode-600 secrets file), and storage enabled (the order journal lives there).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from cryptoarb.cli.common import console, err, fail

if TYPE_CHECKING:
    from cryptoarb.config import Settings
    from cryptoarb.engine.engine import Engine
    from cryptoarb.execution.keys import Credentials
    from cryptoarb.execution.service import LiveTrading


def check_trade(settings: Settings, venues: list[str], trade: bool) -> dict[str, Credentials] | None:
    """The keys when this run trades for real (``--trade`` or ``[trading] mode = "live"``), else None."""
    if not trade and settings.trading.mode != "live":
        return None
    from cryptoarb.execution.keys import KeysError, load_keys
    from cryptoarb.venues.registry import canonical

    if not settings.storage.enabled:
        fail("live trading needs the order journal in the database: drop --no-store (or enable [storage])")
    dex = {v.name for v in settings.dex.venues}
    cex = [canonical(v) for v in venues if v not in dex]
    try:
        return load_keys(cex, settings.trading.secrets_file)
    except KeysError as e:
        fail(escape(str(e)))


def live_trading(settings: Settings, keys: dict[str, Credentials], engine: Engine) -> LiveTrading:
    from cryptoarb.execution.service import LiveTrading
    from cryptoarb.storage.db import StorageError, connect

    try:
        db = connect(settings.storage.url)
    except StorageError as e:
        fail(escape(str(e)))
    trading = LiveTrading(engine, settings, keys, db)
    trading.on_surprise.append(lambda v, s: err.print(f"[bold yellow]reconciliation:[/] {escape(v)}: {escape(s)}",
                                                      highlight=False, soft_wrap=True))
    return trading


def print_trading(trading: LiveTrading) -> None:
    for rep in trading.reports:
        for line in rep.lines():
            err.print(f"[dim]{escape(line)}[/]", highlight=False, soft_wrap=True)
    t = Table(title="Live orders")
    cols = ("venue", "sent", "unknown", "rejected", "not_placed", "local_rejects", "lookups", "in_flight")
    for c in cols:
        t.add_column(c, justify="left" if c == "venue" else "right")
    for v, s in trading.summary().items():
        t.add_row(v, *(str(s[c]) for c in cols[1:]))
    console.print(t)
