"""A SIMULATED multi-venue market for the offline demo. NOT REAL PRICES.

Cross-venue arbitrage exists because venues do not see the same price at the same time; the
model has exactly that, and no opportunity is scripted:

* one fair value per asset: geometric Brownian motion at a realistic annual volatility, plus
  Poisson jumps (news / liquidation bursts). The jump intensity is COMPRESSED (a few per
  minute instead of a few per day) so that a one-minute demo shows the events that matter;
* every venue quotes around its own *lagged* view of fair value: a base quote lag of tens to
  hundreds of ms with jitter, plus occasional feed stalls (lag spikes) freezing its quotes;
* every venue has its own spread, level spacing, depth (25-50 levels a side, sizes decaying
  from the top, randomised) and update rate (10-40 updates/s per book);
* our own paper fills take liquidity from the venue's book (:meth:`consume`), so one stale
  quote cannot be hit over and over.

Output is the wire format of :mod:`cryptoarb.venues.simulated`: a snapshot, then diffs of the
changed levels only. A small drop rate loses a diff now and then, so the handler's gap/resync
path runs for real, answered by :meth:`request_snapshot`. Everything is seeded: one RNG per
asset path, venue clock and book, so a run is reproducible whatever the consumer does.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import orjson

from cryptoarb.core.instruments import Instrument
from cryptoarb.venues.simulated import SIM_SYMBOLS, SIM_VENUES, demo_instruments

YEAR_S = 365 * 86_400
DT_NS = 2_000_000  # fair-value path resolution
REFRESH = 0.2  # chance that a surviving level is re-sized on an update
DECAY = 0.95  # depth profile: size of level i ~ top * DECAY**i


@dataclass(frozen=True)
class AssetModel:
    price: float  # starting fair value (quote)
    vol: float  # annualised volatility of the diffusive part
    jump_rate_hz: float  # compressed for the demo, see the module docstring
    jump_bps: float  # standard deviation of a jump
    size_unit: float  # base units that make "one unit" of depth (BTC 1, ETH 16)


@dataclass(frozen=True)
class VenueModel:
    lag_ms: float  # base quote lag behind fair value (jittered +-25%)
    net_ms: float  # venue -> us transport delay
    rate_hz: float  # book updates per second (Poisson)
    half_spread_bps: float
    level_bps: float  # spacing of levels below the top
    levels: int  # per side
    top_size: float  # in size units
    stall_rate_hz: float = 1 / 30
    stall_ms: tuple[float, float] = (300.0, 1500.0)


ASSETS: dict[str, AssetModel] = {
    "BTC": AssetModel(60_000.0, 0.55, 1 / 12, 20.0, 1.0),
    "ETH": AssetModel(3_000.0, 0.70, 1 / 12, 24.0, 16.0),
}
VENUES: dict[str, VenueModel] = {
    "binance": VenueModel(15, 2, 40, 0.02, 0.25, 50, 2.0),
    "okx": VenueModel(45, 3, 30, 0.10, 0.30, 40, 1.2),
    "bybit": VenueModel(70, 3, 25, 0.15, 0.35, 50, 1.0),
    "coinbase": VenueModel(120, 8, 15, 0.30, 0.60, 30, 0.6),
    "kraken": VenueModel(220, 10, 10, 0.80, 1.00, 25, 0.4),
}


def _digits(step: float) -> int:
    return max(0, -int(Decimal(repr(step)).normalize().as_tuple().exponent))


class _FairPath:
    """Log fair value on a DT_NS grid from the run's start, extended lazily, seeded per asset."""

    def __init__(self, m: AssetModel, rng: random.Random, start_ns: int) -> None:
        self.rng = rng
        self.start = start_ns
        self.base = 0  # grid index of log[0]
        self.log = [math.log(m.price)]
        self.sig = m.vol * math.sqrt(DT_NS / 1e9 / YEAR_S)
        self.p_jump = m.jump_rate_hz * DT_NS / 1e9
        self.jump = m.jump_bps / 1e4

    def at(self, t_ns: int) -> float:
        i = max(0, (t_ns - self.start) // DT_NS)
        log, rng = self.log, self.rng
        while self.base + len(log) <= i:
            x = log[-1] + rng.gauss(-0.5 * self.sig * self.sig, self.sig)
            if rng.random() < self.p_jump:
                x += rng.gauss(0.0, self.jump)
            log.append(x)
        if len(log) > 60_000:  # keep ~60 s of history, far more than any lag
            del log[:30_000]
            self.base += 30_000
        return math.exp(log[max(0, i - self.base)])


class _VenueClock:
    """Quote lag of one venue: jittered base lag plus stalls of random length."""

    def __init__(self, m: VenueModel, rng: random.Random, start_ns: int) -> None:
        self.m, self.rng = m, rng
        self.stall_start = start_ns + self._gap()
        self.stall_len = self._len()

    def _gap(self) -> int:
        return int(self.rng.expovariate(self.m.stall_rate_hz) * 1e9)

    def _len(self) -> int:
        return int(self.rng.uniform(*self.m.stall_ms) * 1e6)

    def lag_ns(self, t: int) -> int:
        while t >= self.stall_start + self.stall_len:
            self.stall_start += self.stall_len + self._gap()
            self.stall_len = self._len()
        lag = int(self.m.lag_ms * (0.75 + 0.5 * self.rng.random()) * 1e6)
        return lag + (self.stall_len if t >= self.stall_start else 0)


class _Stream:
    """One (venue, symbol) book as the venue publishes it: levels keyed by integer ticks."""

    def __init__(self, inst: Instrument, vm: VenueModel, am: AssetModel, rng: random.Random) -> None:
        self.inst, self.vm, self.am, self.rng = inst, vm, am, rng
        self.tick = inst.tick_size
        self.pdig = _digits(inst.tick_size)
        self.qdig = _digits(inst.lot_size)
        self.seq = 0
        self.bids: dict[int, float] = {}
        self.asks: dict[int, float] = {}
        self.taken_bids: dict[int, float] = {}
        self.taken_asks: dict[int, float] = {}
        self.view_ns = 0
        self.last_local = 0
        self.snapshot_pending = False

    def quote(self, fair: float) -> tuple[dict[int, float], dict[int, float]]:
        """The book this venue would show around ``fair`` (its lagged view)."""
        vm, tick = self.vm, self.tick
        hs = vm.half_spread_bps * (0.6 + 0.8 * self.rng.random()) / 1e4
        bid0 = math.floor(fair * (1 - hs) / tick)
        ask0 = max(bid0 + 1, math.ceil(fair * (1 + hs) / tick))
        g = max(1, round(fair * vm.level_bps / 1e4 / tick))
        lo, hi = ((bid0 - 1) // g) * g, (ask0 // g + 1) * g
        bids = [bid0] + [lo - k * g for k in range(vm.levels - 1)]
        asks = [ask0] + [hi + k * g for k in range(vm.levels - 1)]
        new_b = self._side(self.bids, bids, self.taken_bids)
        new_a = self._side(self.asks, asks, self.taken_asks)
        self.taken_bids, self.taken_asks = {}, {}
        return new_b, new_a

    def _side(self, old: dict[int, float], ticks: list[int], taken: dict[int, float]) -> dict[int, float]:
        rng, top, lot = self.rng, self.vm.top_size * self.am.size_unit, self.inst.lot_size
        out: dict[int, float] = {}
        for i, p in enumerate(ticks):
            q = old.get(p)
            if q is None or rng.random() < REFRESH:
                q = top * DECAY**i * rng.lognormvariate(0.0, 0.6)
            q = round(q - taken.get(p, 0.0), self.qdig)
            if q >= lot:
                out[p] = q
        return out

    def frame(self, kind: str, ts: int, bids: dict[int, float], asks: dict[int, float]) -> bytes:
        """A wire frame; a snapshot lists levels best first, a diff in no particular order."""
        snap, tick, dig = kind == "snapshot", self.tick, self.pdig
        b = sorted(bids, reverse=True) if snap else bids
        a = sorted(asks) if snap else asks
        return orjson.dumps({
            "type": kind, "symbol": self.inst.symbol, "seq": self.seq, "ts": ts,
            "bids": [[round(p * tick, dig), bids[p]] for p in b],
            "asks": [[round(p * tick, dig), asks[p]] for p in a],
        })


def _changed(old: dict[int, float], new: dict[int, float]) -> dict[int, float]:
    out = {p: q for p, q in new.items() if old.get(p) != q}
    out.update({p: 0.0 for p in old if p not in new})
    return out


class SimulatedMarket:
    """SIMULATED venues quoting ``symbols``; :meth:`events` yields ``(local_ns, venue, raw)``."""

    def __init__(
        self,
        seed: int = 7,
        venues: tuple[str, ...] | list[str] = SIM_VENUES,
        symbols: tuple[str, ...] | list[str] = SIM_SYMBOLS,
        drop_rate: float = 0.0003,
        assets: dict[str, AssetModel] | None = None,
        venue_models: dict[str, VenueModel] | None = None,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.seed = seed
        self.venues = list(venues)
        self.symbols = list(symbols)
        self.drop_rate = drop_rate  # chance a diff is lost on the way (exercises resync)
        self.assets = assets or ASSETS
        self.models = venue_models or VENUES
        self.instruments = demo_instruments(self.venues, self.symbols, extra)
        self.now_ns = 0  # local time of the last event yielded
        self.messages = self.dropped = self.snapshots = 0
        self._streams: dict[tuple[str, str], _Stream] = {}
        self._fair: dict[str, _FairPath] = {}
        self._clocks: dict[str, _VenueClock] = {}
        self._gen: list[tuple[int, int, str, tuple[str, str]]] = []  # (exchange ns, n, kind, key)
        self._n = 0
        self._rng = random.Random(f"{seed}:net")
        # the extra markets draw their transport delays from their own RNG: adding them leaves
        # every other stream's timing as it was (a seed replays the same cross-venue market)
        self._extra = {k for k in extra if k[0] in self.venues}
        self._rng_extra = random.Random(f"{seed}:net:extra")

    def _rng_for(self, name: str) -> random.Random:
        return random.Random(f"{self.seed}:{name}")

    def _push(self, t: int, kind: str, key: tuple[str, str]) -> None:
        self._n += 1
        heapq.heappush(self._gen, (t, self._n, kind, key))

    # -- what the engine side calls ----------------------------------------------------
    def request_snapshot(self, venue: str, symbol: str) -> None:
        """A REST snapshot request; answered after a simulated round trip of 40-150 ms."""
        st = self._streams.get((venue, symbol))
        if st is None or st.snapshot_pending:
            return
        st.snapshot_pending = True
        rng = self._rng_extra if (venue, symbol) in self._extra else self._rng
        self._push(self.now_ns + int(rng.uniform(40, 150) * 1e6), "snapshot", (venue, symbol))

    def on_snapshot_request(self, inst: Instrument) -> None:
        """The ``request_snapshot`` callback of a SimulatedHandler."""
        self.request_snapshot(inst.venue, inst.symbol)

    def consume(self, venue: str, symbol: str, side: str, price: float, qty: float) -> None:
        """Our taker fill took ``qty`` at ``price``: the venue's next update shows it gone."""
        st = self._streams.get((venue, symbol))
        if st is None:
            return
        p = round(price / st.tick)
        taken = st.taken_asks if side == "buy" else st.taken_bids
        taken[p] = taken.get(p, 0.0) + qty

    def fair(self, asset: str) -> float:
        """Fair value now (what no venue shows yet): for the view only."""
        path = self._fair.get(asset)
        return path.at(self.now_ns) if path is not None else 0.0

    # -- the feed ----------------------------------------------------------------------
    def events(self, start_ns: int, until_ns: int | None = None) -> Iterator[tuple[int, str, bytes]]:
        """Every frame of every venue in local-time order, from ``start_ns`` until ``until_ns``
        (forever when None). One iteration per market: it owns the simulated clock."""
        self.now_ns = start_ns
        for a in {i.base for i in self.instruments}:
            self._fair[a] = _FairPath(self.assets[a], self._rng_for(f"fair:{a}"), start_ns)
        for v in self.venues:
            self._clocks[v] = _VenueClock(self.models[v], self._rng_for(f"lag:{v}"), start_ns)
            # the extra markets' own lag and stalls (their draws leave the other streams' alone)
            self._clocks[f"{v}:extra"] = _VenueClock(self.models[v], self._rng_for(f"lag:{v}:extra"), start_ns)
        for inst in self.instruments:
            key = (inst.venue, inst.symbol)
            rng = self._rng_for(f"book:{inst.venue}:{inst.symbol}")
            st = self._streams[key] = _Stream(inst, self.models[inst.venue], self.assets[inst.base], rng)
            st.seq = rng.randrange(1_000, 1_000_000)
            st.snapshot_pending = True
            self._push(start_ns + int(rng.uniform(0, 200) * 1e6), "snapshot", key)
        out: list[tuple[int, int, str, bytes]] = []
        while self._gen:
            t_gen = self._gen[0][0]
            while out and out[0][0] <= t_gen:  # nothing generated later can arrive earlier
                tl, _, venue, raw = heapq.heappop(out)
                if until_ns is not None and tl >= until_ns:
                    return
                self.now_ns = tl
                yield tl, venue, raw
            t, _, kind, key = heapq.heappop(self._gen)
            st = self._streams[key]
            raw_out = self._snapshot(st, t) if kind == "snapshot" else self._update(st, t)
            if raw_out is not None:
                vm = st.vm
                net = self._rng_extra if key in self._extra else self._rng
                tl = max(st.last_local + 1, t + int(vm.net_ms * 1e6 * (0.8 + net.expovariate(4.0))))
                st.last_local = tl
                self._n += 1
                heapq.heappush(out, (tl, self._n, key[0], raw_out))

    def _view(self, st: _Stream, t: int) -> float:
        v = st.inst.venue
        clock = self._clocks[f"{v}:extra" if (v, st.inst.symbol) in self._extra else v]
        st.view_ns = max(st.view_ns, t - clock.lag_ns(t))
        fair = self._fair[st.inst.base].at(st.view_ns)
        quote = self._fair.get(st.inst.quote)  # a cross (ETH/BTC): the ratio of the two fair values
        return fair / quote.at(st.view_ns) if quote is not None else fair

    def _snapshot(self, st: _Stream, t: int) -> bytes:
        first = not st.bids
        if first:
            st.bids, st.asks = st.quote(self._view(st, t))
            self._push(t + int(st.rng.expovariate(st.vm.rate_hz) * 1e9), "update", (st.inst.venue, st.inst.symbol))
        st.snapshot_pending = False
        self.snapshots += 1
        self.messages += 1
        return st.frame("snapshot", t, st.bids, st.asks)

    def _update(self, st: _Stream, t: int) -> bytes | None:
        self._push(t + int(st.rng.expovariate(st.vm.rate_hz) * 1e9), "update", (st.inst.venue, st.inst.symbol))
        bids, asks = st.quote(self._view(st, t))
        db, da = _changed(st.bids, bids), _changed(st.asks, asks)
        st.bids, st.asks = bids, asks
        if not db and not da:
            return None
        st.seq += 1
        if st.rng.random() < self.drop_rate:
            self.dropped += 1
            return None
        self.messages += 1
        return st.frame("l2update", t, db, da)
