"""The live screen of ``arb demo`` and ``arb run --live``: what the engine sees and does.

Two layouts, chosen at each refresh from the terminal's size: the full one (100+ columns and
tall enough to show it whole), and a compact one for anything smaller, down to 80x24, which
never cuts a number: PnL first, then every book, then balances, then the last opportunities
while lines remain (a line says how many books or venues did not fit rather than cropping one).
Prices are shown at each instrument's tick precision.

Rendering reads engine state from the main loop between two messages (never from a
background thread), so it can never observe a half-applied update.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from cryptoarb.core.book import STATE_NAMES, VALID, OrderBook
from cryptoarb.core.instruments import Instrument
from cryptoarb.core.opportunity import Opportunity
from cryptoarb.core.orders import ArbStatus, ArbTrade
from cryptoarb.fmt import num

if TYPE_CHECKING:
    from cryptoarb.demo.market import SimulatedMarket
    from cryptoarb.engine.engine import Engine

BANNER = "SIMULATED MARKET — not real prices"
FULL_WIDTH = 100  # the full layout needs this many columns (and its whole height)
_STATUS_STYLE = {
    ArbStatus.PENDING: "cyan",
    ArbStatus.COMPLETE: "green",
    ArbStatus.PARTIAL: "yellow",
    ArbStatus.FAILED_LEG: "red",
    ArbStatus.FAILED: "red",
}
_CASH = frozenset({"USD", "USDT", "USDC", "BUSD", "FDUSD", "DAI", "EUR", "TUSD", "USDE"})


def _money(x: Decimal | float, places: int = 2) -> Text:
    v = Decimal(str(x)) if isinstance(x, float) else x
    return Text(f"{v:,.{places}f}", style="green" if v > 0 else "red" if v < 0 else "")


def _amount(ccy: str, v: Decimal) -> str:
    return f"{v:,.{2 if ccy in _CASH else 5}f}"


class DemoView:
    """Keeps the last opportunities (with the trade each became) and renders the screen."""

    def __init__(
        self,
        engine: Engine,
        market: SimulatedMarket | None = None,
        speed: float | None = 1.0,
        duration: float | None = None,
        keep: int = 6,
        start_ns: int | None = None,
        banner: str = BANNER,
        banner_style: str = "bold red",
    ) -> None:
        self.banner = banner
        self.banner_style = banner_style
        self.engine = engine
        self.market = market
        self.speed = speed
        self.duration = duration
        # simulated start; None: the first message seen (demo), the view's creation (live)
        self.start_ns = start_ns if start_ns is not None or market is not None else time.time_ns()
        self.recent: deque[tuple[Opportunity, ArbTrade | None]] = deque(maxlen=keep)
        self._lat_n = 0
        self._lat: dict[str, float] = {}

    def on_opportunity(self, opp: Opportunity) -> None:
        """Engine listener: runs right after the executor saw ``opp`` (traded or skipped)."""
        trades = self.engine.executor.trades
        trade = trades[-1] if trades and trades[-1].opportunity_id == opp.id else None
        self.recent.append((opp, trade))

    # -- rendering -----------------------------------------------------------------------
    def render(self, below: RenderableType | None = None) -> RenderableType:
        """The screen; its layout is picked when rich renders it, from the space it gets.
        ``below`` (the DEX panel of a live run) is shown under it, its lines kept free."""
        return _Screen(self, below)

    def full(self) -> RenderableType:
        return Group(
            Panel(Text(self.banner, justify="center", style="bold white"), style=self.banner_style,
                  box=box.HEAVY),
            self._header(),
            self._pnl_row(),
            self._books(compact=False),
            self._opportunities(compact=False),
            *([self._cycles()] if self.engine.cycles is not None else []),
            self._balances(compact=False),
        )

    def compact(self, height: int) -> RenderableType:
        """At most ``height`` lines: title, PnL beside the counters, books, balances, and the
        last opportunities if room is left."""
        title = Text(f" {self.banner} ", style=f"{self.banner_style} reverse")
        title.append("  ")
        title.append_text(self._header(compact=True))
        parts: list[RenderableType] = [title, self._pnl_row(compact=True)]
        left = height - 1 - 4
        books = self._book_rows()
        venues = self._balance_venues()
        # balances: header, venues, total; books: header, rows; a "more" line when cut
        bal_need = len(venues) + 2 if venues else 0
        fit_books = min(len(books), max(0, left - bal_need - 1))
        if fit_books < len(books):
            fit_books = max(0, fit_books - 1)
        parts.append(self._books(compact=True, rows=books[:fit_books], hidden=len(books) - fit_books))
        left -= 1 + fit_books + (fit_books < len(books))
        if venues:
            fit_venues = min(len(venues), max(0, left - 2))
            if fit_venues < len(venues):
                fit_venues = max(0, fit_venues - 1)
            parts.append(self._balances(compact=True, venues=venues[:fit_venues],
                                        hidden=len(venues) - fit_venues))
            left -= 2 + fit_venues + (fit_venues < len(venues))
        if left >= 3 and self.recent:
            parts.append(self._opportunities(compact=True, limit=left - 2))
        return Group(*parts)

    def _header(self, compact: bool = False) -> Text:
        e = self.engine
        if self.start_ns is None and e.clock_ns:
            self.start_ns = e.clock_ns
        if self.market is None and self.start_ns is not None:  # live: wall-clock run time
            t = (time.time_ns() - self.start_ns) / 1e9
        else:
            t = (e.clock_ns - self.start_ns) / 1e9 if self.start_ns is not None else 0.0
        of = f" / {self.duration:g}s" if self.duration else ""
        pace = f"{self.speed:g}x" if self.speed else "max"
        if self.market is None:
            return Text(f"run time {t:.1f}s{of}")
        out = Text(f"sim time {t:.1f}s{of}   speed {pace}")
        if not compact:
            fair = "  ".join(f"{a} {self.market.fair(a):,.2f}" for a in sorted(self.market.assets)
                             if a in {i.base for i in self.market.instruments})
            out.append(f"   fair (hidden from venues): {fair}", style="dim")
        return out

    # -- PnL and counters ----------------------------------------------------------------
    def _pnl(self) -> Table:
        """The four PnL rows (``Engine.pnl_snapshot()``), in the quote currency."""
        snap = self.engine.pnl_snapshot()
        g = Table.grid(padding=(0, 1))
        g.add_column(no_wrap=True)
        g.add_column(justify="right", no_wrap=True)
        g.add_row(Text("realised PnL", style="bold"), _money(snap.realised))
        g.add_row("unrealised PnL", _money(snap.unrealised))
        g.add_row(Text("total PnL", style="bold"), _money(snap.total))
        g.add_row("max unhedged", Text(f"{snap.max_unhedged_quote:,.2f}",
                                       style="yellow" if snap.max_unhedged_quote else ""))
        return g

    def _stats(self) -> Table:
        e = self.engine
        st = e.executor.stats
        settled = sum(st.by_status.values())
        lat = self._latency()
        g = Table.grid(padding=(0, 1))
        g.add_column(no_wrap=True)
        by = st.by_status
        head = f"msgs {e.messages:,}  opps {e.opportunities:,}  trades {st.submitted:,}"
        if e.cycles is not None:
            head += f"  cycles {len(e.cycles.settled()):,}"
        g.add_row(Text(head, style="bold"))
        done = Text()
        for status in (ArbStatus.COMPLETE, ArbStatus.PARTIAL):
            done.append(f"{status.value} {by.get(status.value, 0)}  ", style=_STATUS_STYLE[status])
        done.append(f"in-flight {st.submitted - settled}", style="cyan")
        bad = Text()
        for status in (ArbStatus.FAILED_LEG, ArbStatus.FAILED):
            bad.append(f"{status.value} {by.get(status.value, 0)}  ", style=_STATUS_STYLE[status])
        bad.append(f"skipped {st.skipped_in_flight + st.skipped_limit:,}  ", style="dim")
        # one-legged exposure now: failed legs the leg-risk policy is still closing (docs/risk.md)
        lr = e.legrisk
        legs, _ = lr.exposure.value(lr.price)
        bad.append(f"1-leg {legs:,.0f}" + (f" ({len(lr.open)} open)" if lr.open else ""),
                   style="red" if lr.open else "")
        g.add_row(done)
        g.add_row(bad)
        g.add_row(f"latency µs p50 {lat['p50']:.1f} p99 {lat['p99']:.1f} p99.9 {lat['p999']:.1f}"
                  if lat else "latency µs -")
        return g

    def _cycles(self, limit: int = 4) -> Table:
        """The last cycles (triangular arbitrage within a venue): expected vs realised PnL."""
        c = self.engine.cycles
        assert c is not None
        t = Table(title=f"Cycles ({c.detector.cycle_count} watched, {c.found} found, last Bellman-Ford: "
                        f"{len(c.last_scan)} profitable)", box=box.SIMPLE, title_justify="left", expand=False)
        for col in ("#", "venue", "cycle", "in", "expected", "realised", "status"):
            t.add_column(col, justify="right" if col in ("#", "in", "expected", "realised") else "left",
                         no_wrap=True)
        for tr in c.executor.trades[-limit:]:
            t.add_row(str(tr.id), tr.venue, tr.name, f"{tr.expected_in:,.2f} {tr.start}", _money(tr.expected_pnl, 4),
                      _money(tr.realized_pnl, 4) if tr.closed_ns else Text("-"),
                      Text(tr.status + (f" ({tr.reason})" if tr.reason else ""),
                           style="green" if tr.status == "complete" else "yellow"))
        return t

    def _latency(self) -> dict[str, float]:
        """Percentiles, recomputed only when samples were added (a sort of all of them)."""
        n = len(self.engine.latency)
        if n != self._lat_n:
            self._lat_n, self._lat = n, self.engine.latency.summary_us()
        return self._lat

    def _pnl_row(self, compact: bool = False) -> Table:
        row = Table.grid(padding=(0, 2 if compact else 4))
        row.add_row(self._pnl(), self._stats())
        return row

    # -- books ---------------------------------------------------------------------------
    def _book_rows(self) -> list[tuple[str, Instrument, OrderBook | None]]:
        """Every book the run follows: by group first, then books in no group (a one-venue
        run has no group at all, and must still show its books)."""
        e = self.engine
        out: list[tuple[str, Instrument, OrderBook | None]] = []
        seen: set[str] = set()
        by_key = {i.key: i for i in e.instruments}
        for book in e.books.values():
            by_key.setdefault(book.key, book.instrument)
        for g in e.plan.groups:
            for key in g.members:
                if key in seen or key not in by_key:
                    continue
                seen.add(key)
                out.append((g.name, by_key[key], e.books.get(key)))
        for key, inst in by_key.items():
            if key not in seen:
                seen.add(key)
                out.append(("-", inst, e.books.get(key)))
        return out

    def _books(self, compact: bool, rows: Iterable[tuple[str, Instrument, OrderBook | None]] | None = None,
               hidden: int = 0) -> RenderableType:
        e = self.engine
        rows = self._book_rows() if rows is None else rows
        cells: list[list[str | Text]] = []
        t = Table(box=None if compact else box.SIMPLE_HEAD, pad_edge=False, show_edge=False,
                  header_style="bold underline" if compact else "bold", collapse_padding=compact)
        cols: list[tuple[str, str]] = [("venue", "left"), ("market", "left")]
        if not compact:
            cols.insert(0, ("group", "left"))
        cols += [("bid", "right"), ("ask", "right"), ("spr bps", "right"), ("age ms", "right")]
        cols += [("state", "left"), ("gaps", "right")] if compact else [
            ("fee", "right"), ("state", "left"), ("gaps", "right")]
        lead_n = 2 if compact else 3
        for n, (name, just) in enumerate(cols):  # names may be shortened when space runs out
            t.add_column(name, justify=just, no_wrap=n >= lead_n, overflow="ellipsis")  # type: ignore[arg-type]
        for group, inst, book in rows:
            lead = [inst.venue, inst.symbol] if compact else [group, inst.venue, inst.symbol]
            fee = [] if compact else [f"{inst.fees.taker * 100:.2f}%"]
            if book is None or not (book.bid or book.ask):
                waiting = STATE_NAMES[book.state] if book is not None else "waiting"
                cells.append([*lead, "-", "-", "-", "-", *fee, Text(waiting, style="dim"), "-"])
                continue
            h = e.handlers.get(inst.venue)
            sync = h.syncs.get(inst.symbol) if h is not None else None
            mid = book.mid()
            spr = f"{(book.ask - book.bid) / mid * 1e4:.2f}" if mid else "-"
            # a REST snapshot can be stamped after the engine's last message: age 0, not negative
            age = f"{max(0, e.clock_ns - book.local_ns) / 1e6:,.0f}" if book.local_ns else "-"
            state = Text(STATE_NAMES[book.state], style="green" if book.state == VALID else "bold red")
            cells.append([*lead, num(book.bid, inst.tick_size), num(book.ask, inst.tick_size), spr, age, *fee,
                          state, str(sync.gaps) if sync is not None else "-"])
        _whole(t, cells, range(lead_n, len(cols)))
        if hidden:
            return Group(t, Text(f"… {hidden} more book(s): enlarge the terminal", style="dim"))
        return t

    # -- opportunities ------------------------------------------------------------------
    def _opportunities(self, compact: bool, limit: int | None = None) -> Table:
        t = Table(title=None if compact else "last opportunities", title_justify="left",
                  box=None if compact else box.SIMPLE_HEAD, pad_edge=False, show_edge=False,
                  header_style="bold underline" if compact else "bold", collapse_padding=compact)
        cols = [("#", "right"), ("group", "left"), ("buy", "left"), ("sell", "left"), ("qty", "right"),
                ("net bps", "right"), ("exp", "right"), ("trade", "left"), ("real", "right")]
        for name, just in cols:
            t.add_column(name, justify=just, no_wrap=name not in ("group", "buy", "sell"), overflow="ellipsis")  # type: ignore[arg-type]
        cells: list[list[str | Text]] = []
        for opp, trade in list(reversed(self.recent))[:limit]:
            if trade is None:
                status, real = Text("skipped", style="dim"), Text("-")
            else:
                status = Text(trade.status.value, style=_STATUS_STYLE[trade.status])
                real = _money(trade.realized_pnl) if trade.closed_ns else Text("…")
            cells.append([str(opp.id), opp.group, opp.buy.venue, opp.sell.venue, f"{opp.qty_base:.5f}",
                          f"{opp.profit_bps:.1f}", _money(opp.profit_quote), status, real])
        _whole(t, cells, (0, 4, 5, 6, 7, 8))
        return t

    # -- balances ------------------------------------------------------------------------
    def _balance_venues(self) -> list[str]:
        e = self.engine
        held = [v for v in e.portfolio.balances if v not in e.venues]  # DEX wallets
        return [v for v in e.venues if v in e.portfolio.balances] + held

    def _balances(self, compact: bool, venues: list[str] | None = None, hidden: int = 0) -> RenderableType:
        """Balances per venue, and the cross-venue total, which only unhedged legs move."""
        e = self.engine
        bal = Table(title=None if compact else "paper balances", title_justify="left",
                    box=None if compact else box.SIMPLE_HEAD, pad_edge=False, show_edge=False,
                    header_style="bold underline" if compact else "bold", collapse_padding=compact)
        ccys = sorted({c for cs in e.portfolio.balances.values() for c in cs})
        bal.add_column("balances" if compact else "venue", overflow="ellipsis")
        for c in ccys:
            bal.add_column(c, justify="right", no_wrap=True)
        total: dict[str, Decimal] = {}
        for cs in e.portfolio.balances.values():
            for c in ccys:
                total[c] = total.get(c, Decimal(0)) + cs.get(c, Decimal(0))
        cells: list[list[str | Text]] = []
        for venue in self._balance_venues() if venues is None else venues:
            cs = e.portfolio.balances.get(venue, {})
            cells.append([venue, *(_amount(c, cs.get(c, Decimal(0))) for c in ccys)])
        tot: list[str | Text] = ["total", *(_amount(c, total.get(c, Decimal(0))) for c in ccys)]
        _whole(bal, [*cells, tot], range(1, len(ccys) + 1), last_style="bold")
        if hidden:
            return Group(bal, Text(f"… {hidden} more venue(s) not shown, counted in the total", style="dim"))
        return bal


def _whole(t: Table, rows: list[list[str | Text]], keep: Iterable[int], last_style: str = "") -> None:
    """Add ``rows`` to ``t``; the ``keep`` columns (numbers, states) get their widest cell as
    minimum width, so when space runs short rich narrows the name columns, never these."""
    for i in keep:
        col = t.columns[i]
        widths = [cell_len(c.plain if isinstance(c, Text) else c) for r in rows for c in r[i:i + 1]]
        col.min_width = max([cell_len(str(col.header)), *widths])
    for n, r in enumerate(rows):
        t.add_row(*r, style=last_style if n == len(rows) - 1 and last_style else None)


class _Screen:
    """Renders the full layout when it fits the space rich offers, the compact one otherwise."""

    def __init__(self, view: DemoView, below: RenderableType | None = None) -> None:
        self.view = view
        self.below = below

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        free = options.update(height=None)
        below = console.render_lines(self.below, free, pad=False) if self.below is not None else []
        height = (options.height or options.size.height) - len(below)
        if options.max_width >= FULL_WIDTH:
            lines = console.render_lines(self.view.full(), free, pad=False)
            if len(lines) <= height:
                yield from _lines(lines)
                yield from _lines(below)
                return
        yield self.view.compact(max(height, 12))
        yield from _lines(below)


def _lines(lines: list[list[Any]]) -> Iterator[Any]:
    from rich.segment import Segment

    for line in lines:
        yield from line
        yield Segment.line()
