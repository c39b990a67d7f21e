"""``--symbols all`` on the command line: the discovery options, the counts shown before anything
connects, and ``--dry-run`` (``arb run --live``; ``arb engine --live`` and ``arb record`` use the
defaults). The discovery itself is ``live/discovery.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from cryptoarb.cli.common import _settings, console, err, fail

if TYPE_CHECKING:
    from rich.console import RenderableType

    from cryptoarb.config import Settings
    from cryptoarb.live.discovery import Discovery, DiscoveryRequest
    from cryptoarb.live.runner import LivePlan


def _csv(value: str, what: str) -> list[str]:
    items = [x.strip() for x in value.split(",") if x.strip()]
    if not items:
        fail(f"{what}: give a comma-separated list")
    return items


DEFAULT_QUOTE = "USDT,USDC,USD"
QuoteOpt = Annotated[str, typer.Option("--quote", help="With --symbols all: quote (and settle) currencies kept, "
                                                       "comma-separated")]
KindsOpt = Annotated[str, typer.Option("--kinds", help="With --symbols all: spot, swap (perpetuals), or both")]
MinVenuesOpt = Annotated[int, typer.Option("--min-venues", help="With --symbols all: keep groups listed on at "
                                                                "least this many venues")]
MaxBooksOpt = Annotated[int | None, typer.Option("--max-books", help="With --symbols all: at most N books, groups "
                                                                     "on most venues first")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="With --symbols all: show what was found and stop")]


def discovery_request(symbols: str, quote: str, kinds: str, min_venues: int, max_books: int | None,
                       dry_run: bool) -> DiscoveryRequest | None:
    """The discovery asked for by ``--symbols all``; None for named symbols (the discovery
    options then have no meaning: refused when given)."""
    from cryptoarb.live.discovery import KINDS, DiscoveryRequest, parse_list
    from cryptoarb.live.markets import MarketError

    if symbols.strip().lower() != "all":
        if dry_run:
            fail("--dry-run goes with --symbols all (it shows what discovery found)")
        if max_books is not None:
            fail("--max-books goes with --symbols all")
        return None
    if max_books is not None and max_books < 1:
        fail(f"--max-books must be at least 1, not {max_books}")
    try:
        return DiscoveryRequest(tuple(q.upper() for q in parse_list(quote, "--quote")),
                                tuple(parse_list(kinds.lower(), "--kinds", KINDS)), min_venues, max_books,
                                strict_quotes=quote != DEFAULT_QUOTE)
    except MarketError as e:
        fail(str(e))


def discover_markets(settings: Settings, catalog: Any, venues: str, req: DiscoveryRequest) -> LivePlan:
    """Discovery with a spinner (one ``load_markets`` per venue, in parallel), then the counts."""
    import asyncio

    from cryptoarb.live.runner import plan_all

    with Progress(SpinnerColumn(), TextColumn("[bold]loading markets[/] {task.fields[v]}"), TimeElapsedColumn(),
                  console=err, transient=True) as progress:
        progress.add_task("load", total=None, v=venues)
        lp = asyncio.run(plan_all(settings, catalog, _csv(venues, "--venues"), req))
    assert lp.discovery is not None
    console.print(discovery_table(lp.discovery, req))
    return lp


def discovery_table(d: Discovery, req: DiscoveryRequest) -> RenderableType:
    from rich.console import Group

    t = Table(title="Markets found", caption=f"quotes {', '.join(req.quotes)}; {', '.join(req.kinds)}; "
                                             f"groups on >= {req.min_venues} venues")
    for col in ("venue", "listed", "candidates", "kept"):
        t.add_column(col, justify="left" if col == "venue" else "right")
    for v in d.venues:
        t.add_row(v, f"{d.listed[v]:,}", f"{d.candidates[v]:,}", f"{len(d.kept[v]):,}")
    t.add_row("[bold]total books[/]", "", "", f"[bold]{d.books:,}[/]")
    g = Table(title="Groups")
    g.add_column("venues", justify="right")
    g.add_column("groups", justify="right")
    for size, n in d.group_sizes().items():
        g.add_row(str(size), f"{n:,}")
    parts: list[Any] = [t, g]
    if d.capped:
        parts.append(f"--max-books {req.max_books}: {d.capped:,} book(s) of smaller groups left out")
    return Group(*parts)


def dry_run(config: Path | None, db: str | None, no_store: bool, venues: str, req: DiscoveryRequest) -> None:
    """``--symbols all --dry-run``: discovery and its counts, nothing connects or is stored."""
    from cryptoarb.engine.engine import build_catalog
    from cryptoarb.live.markets import MarketError
    from cryptoarb.venues.registry import UnknownVenue

    settings = _settings(config, db, True)
    try:
        discover_markets(settings, build_catalog(settings), venues, req)
    except (UnknownVenue, MarketError) as e:
        fail(str(e))
