"""The demo's live screen: what the engine sees and does, readable in 100 columns.

Rendering reads engine state from the main loop between two messages (never from a
background thread), so it can never observe a half-applied update.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from typing import TYPE_CHECKING

from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from cryptoarb.core.book import STATE_NAMES, VALID
from cryptoarb.core.opportunity import Opportunity
from cryptoarb.core.orders import ArbStatus, ArbTrade

if TYPE_CHECKING:
    from cryptoarb.demo.market import SimulatedMarket
    from cryptoarb.engine.engine import Engine

BANNER = "SIMULATED MARKET — not real prices"
_STATUS_STYLE = {
    ArbStatus.PENDING: "cyan",
    ArbStatus.COMPLETE: "green",
    ArbStatus.PARTIAL: "yellow",
    ArbStatus.FAILED_LEG: "red",
    ArbStatus.FAILED: "red",
}


def _money(x: Decimal | float, places: int = 2) -> Text:
    v = Decimal(str(x)) if isinstance(x, float) else x
    return Text(f"{v:,.{places}f}", style="green" if v > 0 else "red" if v < 0 else "")


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
        self.start_ns = start_ns  # simulated start; None: the first message seen
        self.recent: deque[tuple[Opportunity, ArbTrade | None]] = deque(maxlen=keep)

    def on_opportunity(self, opp: Opportunity) -> None:
        """Engine listener: runs right after the executor saw ``opp`` (traded or skipped)."""
        trades = self.engine.executor.trades
        trade = trades[-1] if trades and trades[-1].opportunity_id == opp.id else None
        self.recent.append((opp, trade))

    # -- rendering -----------------------------------------------------------------------
    def render(self) -> RenderableType:
        return Group(
            Panel(Text(self.banner, justify="center", style="bold white"), style=self.banner_style,
                  box=box.HEAVY),
            self._header(),
            self._books(),
            self._counters(),
            self._opportunities(),
            self._money(),
        )

    def _header(self) -> Text:
        e = self.engine
        if self.start_ns is None and e.clock_ns:
            self.start_ns = e.clock_ns
        t = (e.clock_ns - self.start_ns) / 1e9 if self.start_ns is not None else 0.0
        of = f" / {self.duration:g}s" if self.duration else ""
        pace = f"{self.speed:g}x" if self.speed else "max"
        out = Text(f"sim time {t:6.1f}s{of}   speed {pace}" if self.market is not None else f"time {t:6.1f}s{of}")
        if self.market is not None:
            fair = "  ".join(f"{a} {self.market.fair(a):,.2f}" for a in sorted(self.market.assets)
                             if a in {i.base for i in self.market.instruments})
            out.append(f"   fair (hidden from venues): {fair}", style="dim")
        return out

    def _books(self) -> Table:
        e = self.engine
        t = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        for name, just in (("group", "left"), ("venue", "left"), ("bid", "right"), ("ask", "right"),
                           ("spr bps", "right"), ("age ms", "right"), ("fee", "right"),
                           ("state", "left"), ("gaps", "right")):
            t.add_column(name, justify=just)  # type: ignore[arg-type]
        for g in e.plan.groups:
            for key in g.members:
                book = e.books.get(key)
                venue = key.split(" ", 1)[0]
                if book is None:
                    t.add_row(g.name, venue, "-", "-", "-", "-", "-", "empty", "-")
                    continue
                sync = e.handlers[venue].syncs[book.instrument.symbol]
                mid = book.mid()
                spr = f"{(book.ask - book.bid) / mid * 1e4:.2f}" if mid else "-"
                age = f"{(e.clock_ns - book.local_ns) / 1e6:.0f}" if book.local_ns else "-"
                state = Text(STATE_NAMES[book.state], style="green" if book.state == VALID else "bold red")
                t.add_row(g.name, venue, f"{book.bid:,.2f}", f"{book.ask:,.2f}", spr, age,
                          f"{book.instrument.fees.taker * 100:.2f}%", state, str(sync.gaps))
        return t

    def _counters(self) -> Text:
        e = self.engine
        st = e.executor.stats
        settled = sum(st.by_status.values())
        out = Text(f"msgs {e.messages:,}  opps {e.opportunities:,}  trades {st.submitted:,}:", style="bold")
        for status in (ArbStatus.COMPLETE, ArbStatus.PARTIAL, ArbStatus.FAILED_LEG, ArbStatus.FAILED):
            out.append(f" {status.value} {st.by_status.get(status.value, 0)}", style=_STATUS_STYLE[status])
        out.append(f" in-flight {st.submitted - settled}", style="cyan")
        skipped = st.skipped_in_flight + st.skipped_limit
        out.append(f"  skipped {skipped:,}", style="dim")
        return out

    def _opportunities(self) -> Table:
        t = Table(title="last opportunities", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  show_edge=False)
        for name, just in (("#", "right"), ("group", "left"), ("buy", "left"), ("sell", "left"),
                           ("qty", "right"), ("net bps", "right"), ("exp USDT", "right"),
                           ("trade", "left"), ("real USDT", "right")):
            t.add_column(name, justify=just)  # type: ignore[arg-type]
        for opp, trade in reversed(self.recent):
            if trade is None:
                status, real = Text("skipped", style="dim"), Text("-")
            else:
                status = Text(trade.status.value, style=_STATUS_STYLE[trade.status])
                real = _money(trade.realized_pnl) if trade.closed_ns else Text("…")
            t.add_row(str(opp.id), opp.group, opp.buy.venue, opp.sell.venue, f"{opp.qty_base:.5f}",
                      f"{opp.profit_bps:.1f}", _money(opp.profit_quote), status, real)
        return t

    def _money(self) -> Table:
        """Balances (with the cross-venue total, which only unhedged legs move) beside PnL."""
        e = self.engine
        bal = Table(title="paper balances", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                    show_edge=False)
        ccys = sorted({c for cs in e.portfolio.balances.values() for c in cs})
        bal.add_column("venue")
        for c in ccys:
            bal.add_column(c, justify="right")
        total: dict[str, Decimal] = {}
        places = {"USDT": 2}
        for venue in e.venues:
            cs = e.portfolio.balances.get(venue, {})
            for c in ccys:
                total[c] = total.get(c, Decimal(0)) + cs.get(c, Decimal(0))
            bal.add_row(venue, *(f"{cs.get(c, Decimal(0)):,.{places.get(c, 5)}f}" for c in ccys))
        bal.add_row("total", *(f"{total.get(c, Decimal(0)):,.{places.get(c, 5)}f}" for c in ccys), style="bold")
        st = e.executor.stats
        lat = e.latency.summary_us()
        pnl = Table.grid(padding=(0, 1))
        pnl.add_column()
        pnl.add_column(justify="right")
        pnl.add_row(Text("PnL, settled trades (USDT)", style="bold"), "")
        pnl.add_row("expected", _money(st.expected_pnl))
        pnl.add_row("realised", _money(st.realized_pnl))
        pnl.add_row("", "")
        pnl.add_row(Text("latency raw → decision", style="bold"), "")
        pnl.add_row("p50", f"{lat['p50']:.1f} µs")
        pnl.add_row("p99", f"{lat['p99']:.1f} µs")
        pnl.add_row("p99.9", f"{lat['p999']:.1f} µs")
        row = Table.grid(padding=(0, 4))
        row.add_row(bal, pnl)
        return row
