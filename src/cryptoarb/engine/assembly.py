"""How an engine is assembled from the settings: the catalog, fee currencies, the paper
executor, the storage sink's listeners, the streaming handler of a venue. Kept apart from
:mod:`.engine`, which holds what runs per message."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from cryptoarb.config import ConfigError, PaperSettings, Settings
from cryptoarb.core.accounting import Portfolio, with_fee_currency
from cryptoarb.core.book import OrderBook
from cryptoarb.core.footprint import Footprints
from cryptoarb.core.instruments import Instrument
from cryptoarb.core.opportunity import Opportunity
from cryptoarb.core.pnl import PnlSnapshot
from cryptoarb.execution.arb import ArbExecutor, ExecConfig
from cryptoarb.execution.legrisk import LegRisk
from cryptoarb.execution.paper import PaperVenue
from cryptoarb.venues.base import Handler
from cryptoarb.venues.catalog import Catalog

if TYPE_CHECKING:
    from cryptoarb.engine.engine import Engine


class Sink(Protocol):
    """What the engine tells storage (see cryptoarb.storage.writer)."""

    def opportunity(self, opp: Opportunity) -> None: ...
    def order(self, order: Any) -> None: ...
    def fill(self, fill: Any) -> None: ...
    def arb_trade(self, trade: Any) -> None: ...
    def balances(self, ts_ns: int, rows: list[tuple[str, str, Decimal]]) -> None: ...
    def pnl(self, ts_ns: int, snap: PnlSnapshot) -> None: ...
    def feature(self, row: dict[str, Any]) -> None: ...
    def audit(self, actor: str, action: str, detail: dict[str, Any]) -> None: ...
    # optional: spread_sample(row), leg_incident(incident), leg_exposure(ts_ns, asset, qty, mark, total_quote),
    # cycle(trade)


HandlerFactory = Callable[["Engine", str], Handler]


def build_catalog(settings: Settings) -> Catalog:
    catalog = Catalog()
    for spec in settings.instruments:
        catalog.add(spec.build())
    return catalog


def apply_fee_currencies(catalog: Catalog, instruments: list[Instrument] | None,
                         fee_ccy: Mapping[str, Any]) -> list[Instrument] | None:
    """Venues charging spot fees in a third currency (BNB & co, docs/pnl.md): their instruments,
    in the catalog and in ``instruments``, say so; returns ``instruments`` rewritten."""
    if not fee_ccy:
        return instruments
    for inst in catalog.all():
        fc = fee_ccy.get(inst.venue)
        if fc is not None and not inst.fee_currency:
            catalog.add(with_fee_currency(inst, fc.asset, fc.discount))
    if instruments is None:
        return None
    return [with_fee_currency(i, fc.asset, fc.discount)
            if (fc := fee_ccy.get(i.venue)) is not None and not i.fee_currency else i
            for i in instruments]


def paper_executor(p: PaperSettings, portfolio: Portfolio, venues: list[str],
                   books: Callable[[str], OrderBook | None], run_id: str, footprints: Footprints) -> ArbExecutor:
    """The executor over paper venues (live trading swaps its venues in later)."""
    return ArbExecutor(
        portfolio,
        {v: PaperVenue(v, portfolio, p.fail_rate, p.seed, footprints) for v in venues},
        books,
        ExecConfig(
            latency_ns={k: int(v * 1e6) for k, v in p.latency_ms.items()},
            default_latency_ns=int(p.default_latency_ms * 1e6),
            cooldown_ns=int(p.cooldown_ms * 1e6),
            max_open_trades=p.max_open_trades,
        ),
        run_id=run_id,
        footprints=footprints,
    )


def wire_sink(sink: Sink, executor: ArbExecutor, legrisk: LegRisk) -> None:
    """Storage hears every order, fill and trade; the leg-risk incidents and exposure where the
    sink takes them (optional for a sink: storage has them)."""
    executor.on_order.append(sink.order)
    executor.on_fill.append(sink.fill)
    executor.on_trade.append(sink.arb_trade)
    if hasattr(sink, "leg_incident"):
        legrisk.on_incident.append(sink.leg_incident)
    if hasattr(sink, "leg_exposure"):
        legrisk.on_exposure.append(sink.leg_exposure)


def default_handler_factory(engine: Engine, venue: str) -> Handler:
    """The native streaming handler of ``venue`` wired to the engine's callbacks."""
    from cryptoarb.venues.registry import handler_class, native_venues

    cls = handler_class(venue)
    if cls is None:
        raise ConfigError(f"no native streaming handler for venue {venue!r} (native: {', '.join(native_venues())})")
    h = cls(venue, engine.catalog, engine.on_book, on_state=engine.on_state, discover=engine.discover)
    h.on_new_book = engine.register_book
    return h
