"""Run the engine on the SIMULATED market: the offline demo behind ``arb demo``.

The engine is driven exactly as live: raw frames through ``engine.on_message`` with their
local receive time. Only the source differs (a seeded simulation instead of websockets), so
what the demo shows -- books, opportunities, paper trades, PnL, latency -- is the engine's
real behaviour on made-up prices.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from cryptoarb.config import PaperSettings, Settings
from cryptoarb.core.orders import Fill
from cryptoarb.demo.market import SimulatedMarket
from cryptoarb.demo.view import DemoView
from cryptoarb.engine.engine import Engine, Sink
from cryptoarb.stopping import StopFlag, stop_on_signals
from cryptoarb.venues.base import MessageError
from cryptoarb.venues.simulated import SIM_SYMBOLS, SIM_VENUES, demo_catalog, make_handler_factory

DEMO_BALANCES = {"USDT": Decimal(50_000), "BTC": Decimal(1), "ETH": Decimal(15)}
# one-way order latency to each venue's matching engine (paper fills meet the book then)
DEMO_LATENCY_MS = {"binance": 8.0, "okx": 12.0, "bybit": 12.0, "coinbase": 25.0, "kraken": 30.0}
REFRESH_S = 0.25  # the live view's refresh period (~4/s)


def demo_settings(settings: Settings, venues: list[str]) -> Settings:
    """Settings for the demo venues. The stock balances are Binance's spot/futures accounts,
    useless here: they are replaced; demo venues missing from custom balances get demo
    balances. Per-venue order latency is filled in only when none is configured."""
    paper = settings.paper
    balances = {v: dict(c) for v, c in paper.balances.items()}
    if paper.balances == PaperSettings().balances:
        balances = {}
    for v in venues:
        balances.setdefault(v, dict(DEMO_BALANCES))
    update: dict[str, Any] = {"balances": balances}
    if not paper.latency_ms:
        update["latency_ms"] = {v: DEMO_LATENCY_MS.get(v, paper.default_latency_ms) for v in venues}
    return settings.model_copy(update={"paper": paper.model_copy(update=update)})


@dataclass
class Demo:
    """An engine wired to a simulated market, ready to :meth:`run` once (tests inspect its parts)."""

    engine: Engine
    market: SimulatedMarket
    seed: int

    def run(
        self,
        duration: float | None,
        live: bool = True,
        speed: float | None = 1.0,
        console: Console | None = None,
        start_ns: int | None = None,
        stop: StopFlag | None = None,
        tick: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        """Feed the market to the engine for ``duration`` simulated seconds (None: until
        Ctrl-C or SIGTERM, or until ``stop`` is set), settle what is in flight, and return the
        summary. ``tick`` is called between messages every ``REFRESH_S`` (the API's pump)."""
        engine, market = self.engine, self.market
        start = time.time_ns() if start_ns is None else start_ns
        view = DemoView(engine, market, speed=speed, duration=duration, start_ns=start)
        engine.on_opportunity.append(view.on_opportunity)
        handlers = {v: engine.handler(v) for v in engine.venues}
        until = None if duration is None else start + int(duration * 1e9)
        rate = speed if speed and speed > 0 else 0.0
        bad = 0
        last = start
        interrupted = False
        con = console or Console()
        live_ctx: contextlib.AbstractContextManager[Any] = (
            Live(view.render(), console=con, auto_refresh=False)
            if live
            else contextlib.nullcontext()
        )
        wall0 = next_draw = next_tick = time.perf_counter()
        try:
            with stop_on_signals(stop) as stop, live_ctx as lv:
                for local_ns, venue, raw in market.events(start, until):
                    if rate:
                        wait = wall0 + (local_ns - start) / 1e9 / rate - time.perf_counter()
                        if wait > 0:
                            time.sleep(wait)
                    if stop.signum:  # Ctrl-C / SIGTERM, checked between messages
                        interrupted = True
                        break
                    try:
                        engine.on_message(handlers[venue], raw, local_ns)
                    except MessageError:
                        bad += 1
                    last = local_ns
                    if tick is not None and time.perf_counter() >= next_tick:
                        next_tick = time.perf_counter() + REFRESH_S
                        tick()
                    if lv is not None and time.perf_counter() >= next_draw:
                        next_draw = time.perf_counter() + REFRESH_S
                        lv.update(view.render(), refresh=True)
                engine.finish()
                if lv is not None:
                    lv.update(view.render(), refresh=True)
        except KeyboardInterrupt:  # Ctrl-C when not in the main thread (no signal handler)
            interrupted = True
            engine.finish()
        if live and not con.is_terminal:
            con.line()  # rich ends a live display's last frame without a newline when not on a tty
        return _summary(engine, market, start, last, interrupted, bad, self.seed)


def build_demo(
    settings: Settings,
    sink: Sink | None = None,
    seed: int = 7,
    venues: tuple[str, ...] | list[str] = SIM_VENUES,
    symbols: tuple[str, ...] | list[str] = SIM_SYMBOLS,
    drop_rate: float = 0.0003,
) -> Demo:
    """Catalog, engine and market for the demo venues; our fills take the market's liquidity."""
    venues = list(venues)
    market = SimulatedMarket(seed, venues, symbols, drop_rate=drop_rate)
    engine = Engine(
        demo_settings(settings, venues),
        venues,
        catalog=demo_catalog(venues, symbols),
        sink=sink,
        handler_factory=make_handler_factory(market.on_snapshot_request),
    )

    def consume(f: Fill) -> None:
        market.consume(f.venue, f.symbol, f.side, float(f.price), float(f.qty))

    engine.executor.on_fill.append(consume)
    return Demo(engine, market, seed)


def run_demo(
    settings: Settings,
    duration: float | None,
    sink: Sink | None = None,
    live: bool = True,
    speed: float | None = 1.0,
    seed: int = 7,
    console: Console | None = None,
    start_ns: int | None = None,
    stop: StopFlag | None = None,
) -> dict[str, Any]:
    """Run the demo for ``duration`` simulated seconds (None: until Ctrl-C); the summary.

    ``speed`` 1 follows the wall clock, 2 runs twice as fast, 0/None as fast as possible;
    ``live`` shows the rich view (~4 refreshes/s). Results depend only on ``seed``: pacing
    only sleeps between messages.
    """
    demo = build_demo(settings, sink=sink, seed=seed)
    return demo.run(duration, live=live, speed=speed, console=console, start_ns=start_ns, stop=stop)


def _summary(
    engine: Engine, market: SimulatedMarket, start: int, last: int, interrupted: bool, bad: int, seed: int
) -> dict[str, Any]:
    ex = engine.executor
    out = engine.summary()
    out.update(
        simulated=True,
        seed=seed,
        duration_s=round((last - start) / 1e9, 3),
        interrupted=interrupted,
        bad_messages=bad,
        trades_by_status=dict(sorted(ex.stats.by_status.items())),
        skipped_in_flight=ex.stats.skipped_in_flight,
        skipped_limit=ex.stats.skipped_limit,
        expected_pnl=str(ex.stats.expected_pnl),
        realized_pnl=str(ex.stats.realized_pnl),
        balances={v: {c: str(a) for c, a in sorted(cs.items())} for v, cs in engine.portfolio.balances.items()},
        market={"messages": market.messages, "dropped": market.dropped, "snapshots": market.snapshots},
    )
    return out


def print_summary(summary: dict[str, Any], console: Console | None = None) -> None:
    """The end-of-run table (what a user reads after the live view is gone)."""
    con = console or Console()
    title = ("Demo summary — SIMULATED MARKET, not real prices" if summary.get("simulated", True)
             else "Run summary — live market data, paper trading")
    t = Table(title=title, title_style="bold yellow")
    t.add_column("metric")
    t.add_column("value", justify="right")
    lat = summary.get("latency_us", {})
    simulated = summary.get("simulated", True)
    rows = [
        ("simulated seconds" if simulated else "run time (s)", f"{summary.get('duration_s', 0):.1f}"
         + (" (stopped early)" if summary.get("interrupted") else "")),
        ("messages", f"{summary['messages']:,}"),
        ("gaps / resyncs", " / ".join(str(sum(b[k] for b in summary["books"].values()))
                                       for k in ("gaps", "resyncs"))),
        ("opportunities", f"{summary['opportunities']:,}"),
        ("trades settled", f"{summary['trades']:,}"),
        ("trades by status", ", ".join(f"{k} {v}" for k, v in summary["trades_by_status"].items()) or "-"),
        ("expected PnL (USDT)", f"{Decimal(summary['expected_pnl']):,.2f}"),
        ("realised PnL (USDT)", f"{Decimal(summary['realized_pnl']):,.2f}"),
        *((("unrealised PnL at final mids", f"{summary['pnl']['unrealised']:,.2f}"),
           ("total PnL (account change)", f"{summary['pnl']['total']:,.2f}"),
           ("max unhedged exposure", f"{summary.get('max_unhedged_quote', 0.0):,.2f}")) if "pnl" in summary else ()),
        ("latency p50 / p99 / p99.9 (µs)",
         " / ".join("-" if lat.get(k) is None else f"{lat[k]:.1f}" for k in ("p50", "p99", "p999"))),
    ]
    risk = summary.get("risk")
    if risk is not None:
        tripped = [f"{n} {st}" for n, st in risk["breakers"].items() if st != "closed"]
        rows += [
            ("risk: refused", ", ".join(f"{k} {v}" for k, v in risk["refused"].items()) or "-"),
            ("risk: breakers", ", ".join(tripped) or "all closed"),
        ]
        if risk["killed"]:
            rows.append(("risk: kill switch", "ON"))
    for k, v in rows:
        t.add_row(k, v)
    con.print(t)
