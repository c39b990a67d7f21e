"""DEX venues inside ``arb run --live``: follow pools, detect against CEX books and other pools, trade.

:class:`DexRuntime` is a service of :func:`cryptoarb.live.runner.run_feeds`. ``start`` connects
each chain (chain id checked), discovers the configured pools and approves the routers, so every
configuration mistake stops the run before any feed starts. ``run`` follows pool events and
evaluates every (pool, CEX book) and (pool, pool) pair of the same tokens on its own periodic
task and right after pool updates: never inside ``Engine.on_message``, so a slow RPC never delays
the CEX hot path. A pair is re-evaluated only when an input changed (pool state, book update, gas
price): a standing gap is one opportunity, not one per tick. Stale or unhealthy pool state is
never quoted (``StalePoolError``: skipped, counted).

Opportunities go to ``Engine.on_opportunity`` and the storage sink. With a signer (key from the
environment only) they are executed by :class:`DexArbExecutor`, one at a time per pool and per
CEX book; without one the run is detection only. After a trade the chain is polled at once and
the pair waits for a changed CEX book too: the paper venue already took the liquidity our hedge met.

The run's state records (:class:`Chain`, :class:`PoolEntry`, :class:`Pair`, ...) live in
:mod:`.live_model` and the one-time start-up I/O in :mod:`.live_setup`; both are re-exported or
called from here, so this module is the steady-state loop and ``cryptoarb.dex.live`` still
offers every name it did.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque

from cryptoarb.config import DexSettings
from cryptoarb.core.orders import ArbTrade
from cryptoarb.dex.arb import DexArbDetector, DexLimits, DexOpportunity, GasModel
from cryptoarb.dex.errors import DexError, StalePoolError
from cryptoarb.dex.execution import DexExecutor, Signer
from cryptoarb.dex.gas import NativePricer
from cryptoarb.dex.live_model import (
    GWEI,
    Chain,
    DexStartError,
    Pair,
    Pool,
    PoolEntry,
    Seen,
    VenueStats,
    build_pairs,
    one_line,
)
from cryptoarb.dex.live_setup import connect_chain, deposit_wallet, discover_pool
from cryptoarb.dex.settle import DexArbExecutor
from cryptoarb.engine.engine import Engine

__all__ = [
    "GWEI",
    "Chain",
    "DexRuntime",
    "DexStartError",
    "Pair",
    "Pool",
    "PoolEntry",
    "Seen",
    "VenueStats",
    "one_line",
]

log = logging.getLogger(__name__)


class DexRuntime:
    """The DEX side of one live run, around the run's :class:`Engine`."""

    def __init__(
        self, settings: DexSettings, engine: Engine, venues: list[str], cex_keys: set[str], signer: Signer | None,
        max_book_age_ms: float = 5_000.0,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.signer = signer
        self.venues = list(dict.fromkeys(venues))
        self.cex_keys = cex_keys
        self.max_book_age_ns = int(max_book_age_ms * 1e6)
        self.specs = {v.name: v for v in settings.venues if v.name in self.venues}
        for v in self.venues:
            if not any(p.venue == v for p in settings.pools):
                raise DexStartError(f"dex venue {v!r} has no [[dex.pools]] entry")
        self.pool_cfgs = [(i, p) for i, p in enumerate(settings.pools) if p.venue in self.venues]
        wanted = {self.specs[p.venue].chain_id for _, p in self.pool_cfgs}
        self.chains = {c.chain_id: Chain(c) for c in settings.chains if c.chain_id in wanted}
        self.stats = {v: VenueStats() for v in self.venues}
        self.entries: list[PoolEntry] = []
        self.pairs: list[Pair] = []
        self.notes: list[str] = []  # what is configured but not compared in this run
        self.recent: deque[Seen] = deque(maxlen=6)
        self.errors = 0
        self.opportunities = 0  # run total (a DEX<->DEX one counts for both venues in ``stats``)
        self._busy: set[str] = set()
        self._book_hold: dict[str, tuple[int, int]] = {}  # book key -> the book state our hedge met
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._next_id = engine.detector._next_id  # one id sequence with the CEX detector (storage keys)

    @property
    def executing(self) -> bool:
        return self.signer is not None

    # -- start -----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect, check chain ids, discover pools, approve routers, read wallet balances."""
        for ch in self.chains.values():
            ch.client = await connect_chain(ch)
            for v in self.venues:
                self.stats[v].connects += int(self.specs[v].chain_id == ch.cfg.chain_id)
        for i, p in self.pool_cfgs:
            venue = self.specs[p.venue]
            self.entries.append(await discover_pool(self.chains[venue.chain_id], venue, i, p))
            self.stats[p.venue].snapshots += 1
        pairs, notes = build_pairs(self.entries, (cfg for _, cfg in self.pool_cfgs), self.cex_keys)
        self.notes.extend(notes)
        for ch in self.chains.values():
            mine = [(e.label, e.pool, e.base, e.quote) for e in self.entries if e.chain is ch]
            ch.pricer = NativePricer(ch.cfg, mine, self.engine.books.get, self.cex_keys)
        for pair in pairs:  # gas is charged in the pair's quote: a pair no source can price is refused
            pricer = pair.a.chain.pricer
            assert pricer is not None
            if pricer.can_price(pair.a.quote, pair.a.base):
                self.pairs.append(pair)
            else:
                what = pair.book_key or (pair.b.label if pair.b else "")
                self.notes.append(f"{pair.a.label} not compared with {what}: {pricer.missing(pair.a.quote)}")
        for ch in self.chains.values():
            assert ch.client is not None
            limits = DexLimits(self.settings.min_profit_quote, self.settings.min_profit_bps,
                               self.settings.max_notional_quote, self.settings.slippage_bps)
            avail: dict[tuple[str, str], float] | None = {} if self.signer else None
            ch.detector = DexArbDetector(limits, GasModel(0, 0.0), self._next_id, avail, self.engine.footprints)
            if self.signer is not None:
                await self._arm(ch, self.signer)
            await self._refresh_gas(ch)

    async def _arm(self, ch: Chain, signer: Signer) -> None:
        """Executors, one-time router approvals, and the wallet's real balances in the portfolio."""
        assert ch.client is not None
        c = ch.cfg
        ch.executor = DexExecutor(ch.client, signer, c.receipt_timeout_s, int(c.priority_fee_gwei * GWEI))
        ch.runner = DexArbExecutor(ch.executor, self.engine.portfolio, self.engine.executor.venues,
                                   self.engine.books.get, run_id=self.engine.run_id)
        pools: list[Pool] = [e.pool for e in self.entries if e.chain is ch]
        if self.settings.approve_on_start:
            try:
                ch.approvals_gas_wei = await ch.executor.approve_routers(pools)
            except DexError as e:
                raise DexStartError(f"dex chain {c.chain_id}: approving the routers failed: {one_line(e)}") from None
        await deposit_wallet(ch, signer.address, pools, self.engine.portfolio)

    # -- running ---------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        try:
            await asyncio.gather(*(self._follow(ch, stop) for ch in self.chains.values()), self._evaluator(stop))
        finally:
            if self._tasks:  # a trade in flight finishes: never leave a mined swap unhedged by choice
                await asyncio.wait(set(self._tasks), timeout=max(c.cfg.receipt_timeout_s for c in self.chains.values()))

    async def close(self) -> None:
        for ch in self.chains.values():
            if ch.client is not None:
                with contextlib.suppress(Exception):
                    await ch.client.w3.provider.disconnect()

    async def _follow(self, ch: Chain, stop: asyncio.Event) -> None:
        """``ChainClient.follow`` with a wake-up of the evaluator and per-venue update counts."""
        delay = ch.cfg.poll_interval_s
        while not stop.is_set():
            ok = await self._poll(ch)
            delay = ch.cfg.poll_interval_s if ok else min(30.0, delay * 2)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)

    async def _poll(self, ch: Chain) -> bool:
        assert ch.client is not None
        mine = [e for e in self.entries if e.chain is ch]
        async with ch.lock:
            before = [e.sig() for e in mine]
            head = ch.client.head_block
            try:
                await ch.client.poll()
                if ch.client.head_block != head:
                    await self._refresh_gas(ch)
            except DexError as err:
                ch.poll_failures += 1
                ch.last_error = one_line(err)
                for v in {e.venue for e in mine}:
                    self.stats[v].disconnects += 1
                log.warning("dex chain %s: %s", ch.cfg.chain_id, ch.last_error)
                return False
        for e, sig in zip(mine, before, strict=True):
            if e.sig() != sig:
                self.stats[e.venue].messages += 1
                self._wake.set()
        return True

    async def _refresh_gas(self, ch: Chain) -> None:
        assert ch.client is not None
        c = ch.cfg
        if c.gas_price_gwei is not None:
            ch.gas_price_wei = int(c.gas_price_gwei * GWEI)
        elif ch.executor is not None:
            ch.gas_price_wei = await ch.executor.expected_gas_price()
        else:
            block = await ch.client._rpc("eth_getBlockByNumber", ch.client.w3.eth.get_block("latest"))
            ch.gas_price_wei = int(block.get("baseFeePerGas", 0) or 0) + int(c.priority_fee_gwei * GWEI)

    async def _evaluator(self, stop: asyncio.Event) -> None:
        interval = self.settings.evaluate_interval_ms / 1e3
        while not stop.is_set():
            self._wake.clear()
            self.evaluate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)

    # -- detection -------------------------------------------------------------------------------
    def gas_model(self, pair: Pair) -> GasModel | None:
        """Gas in the pair's own quote currency (:class:`.gas.NativePricer`); None: no price known now."""
        ch, a = pair.a.chain, pair.a
        assert ch.pricer is not None
        price = ch.pricer.price(a.quote, a.pool, a.base)
        if not price or price <= 0:
            return None
        return GasModel(ch.gas_price_wei, price, ch.cfg.native_symbol, a.quote.symbol)

    def evaluate(self) -> int:
        """One pass over the pairs whose inputs changed; returns the opportunities found."""
        now_ns = time.time_ns()
        for ch in self.chains.values():
            if ch.detector is not None and ch.detector.available is not None:
                self._available(ch.detector.available)
        found = 0
        for pair in self.pairs:
            ch = pair.a.chain
            if ch.detector is None or any(k in self._busy for k in pair.locks):
                continue
            book = self.engine.books.get(pair.book_key) if pair.book_key else None
            if pair.book_key:
                if book is None or not book.valid or now_ns - book.local_ns > self.max_book_age_ns:
                    continue
                if self._book_hold.get(pair.book_key) == (book.update_id, book.local_ns):
                    continue
            inputs = (
                pair.a.sig(),
                pair.b.sig() if pair.b else (book.update_id, book.local_ns) if book else None,
                ch.gas_price_wei,
            )
            if inputs == pair.last:
                continue
            g = self.gas_model(pair)
            if g is None:  # refused, not guessed: gas in an unknown currency is no cost at all
                self.stats[pair.a.venue].unpriced += 1
                continue
            pair.last = inputs
            ch.detector.gas = g
            try:
                if book is not None:
                    opp = ch.detector.cex_vs_pool(book, pair.a.pool, pair.a.base, now_ns)
                else:
                    assert pair.b is not None
                    opp = ch.detector.pool_vs_pool(pair.a.pool, pair.b.pool, pair.a.base, now_ns)
            except StalePoolError:
                self.stats[pair.a.venue].stale += 1
                pair.last = None  # retried every pass until the pool is confirmed again
                continue
            except (DexError, ValueError, ZeroDivisionError) as e:
                self.stats[pair.a.venue].bad_messages += 1
                log.warning("dex evaluation of %s failed: %s", pair.a.label, one_line(e))
                continue
            if opp is not None:
                found += 1
                self._found(pair, opp, now_ns)
        return found

    def _available(self, av: dict[tuple[str, str], float]) -> None:
        """Balances for sizing: the portfolio (wallet and CEX venues) less CEX trades in flight."""
        av.clear()
        reserved = self.engine.executor.reserved
        for venue, ccys in self.engine.portfolio.balances.items():
            for ccy, amount in ccys.items():
                av[(venue, ccy)] = float(amount - reserved.get((venue, ccy), 0))

    def _found(self, pair: Pair, opp: DexOpportunity, now_ns: int) -> None:
        o = opp.opportunity
        self.opportunities += 1
        for v in {pair.a.venue, pair.b.venue if pair.b else pair.a.venue}:
            self.stats[v].opportunities += 1
        for fn in self.engine.on_opportunity:
            fn(o)
        if self.engine.sink is not None:
            self.engine.sink.opportunity(o)
        runner = pair.a.chain.runner
        seen = Seen(opp, "in flight" if runner else "recorded")
        self.recent.append(seen)
        if runner is None:
            return  # detection only: recorded, not traded
        self._busy.update(pair.locks)
        task = asyncio.create_task(self._execute(pair, runner, seen))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- execution -------------------------------------------------------------------------------
    async def _execute(self, pair: Pair, runner: DexArbExecutor, seen: Seen) -> None:
        book = self.engine.books.get(pair.book_key) if pair.book_key else None
        opp = seen.opp
        try:
            trade = await runner.execute(opp, time.time_ns())
            seen.state, seen.trade = trade.status.value, trade
            if book is not None:
                self._book_hold[pair.book_key] = (book.update_id, book.local_ns)
            for v in {pair.a.venue, pair.b.venue if pair.b else pair.a.venue}:
                self.stats[v].trades += 1
            self._record(trade)
            await self._poll(pair.a.chain)  # our swap moved the pool: re-read before quoting it again
        except Exception as e:  # an executor bug must not stop the run; counted and logged
            seen.state = "error"
            self.errors += 1
            log.error("dex execution of opportunity %s failed: %s", opp.opportunity.id, one_line(e))
        finally:
            self._busy.difference_update(pair.locks)
            self._wake.set()

    def _record(self, trade: ArbTrade) -> None:
        sink = self.engine.sink
        if sink is None:
            return
        for order in (trade.buy_order, trade.sell_order):
            sink.order(order)
            for f in order.fills:
                sink.fill(f)
        sink.arb_trade(trade)
        self.engine.record_balances(trade.closed_ns)
