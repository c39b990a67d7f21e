"""The parent of a sharded live run: partitions, spawns, listens, stops, merges.

It owns what is global: storage (one writer, :mod:`.store`), the live view and the summary
(:mod:`.summary`), the kill switch (``arb kill`` / SIGUSR1 reach the parent, which tells every
shard; each shard also watches the kill file itself). The money is split once at the start
(:func:`.partition.slice_balances`, option (a) of issue #15): no hop before execution.

A shard that exits without having sent its summary has died: the parent reports it in one line,
stops the others cleanly and the run ends with exit 1 (no restart: a restarted shard would start
from fresh books and balances its dead predecessor may have spent; the operator decides).
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from cryptoarb.bus import messages as M
from cryptoarb.bus.ipc import IpcHub
from cryptoarb.config import Settings
from cryptoarb.core.instruments import Instrument
from cryptoarb.detect.groups import GroupError, GroupPlan, auto_groups, explicit_groups
from cryptoarb.shard import worker
from cryptoarb.shard.partition import Part, ShardError, partition, slice_balances, slice_limits
from cryptoarb.shard.store import ShardStore
from cryptoarb.shard.summary import merge

_SEQ_SPACE = worker.ID_SPACE * 1000  # BusSink.seq range of one shard


def plan_groups(settings: Settings, catalog: Any, insts: list[Instrument]) -> GroupPlan:
    """The groups the engine would form over ``insts`` (``Engine._plan_groups``'s rule)."""
    d = settings.detector
    eq = [set(x) for x in d.quote_equivalents]
    try:
        if d.groups:
            by_key = {i.key: i for i in catalog.all()}
            return explicit_groups([g.model_dump() for g in d.groups], by_key, eq)
        return auto_groups(insts, basis=d.basis, equivalents=eq)
    except GroupError as e:
        raise ShardError(str(e)) from None


@dataclass
class ShardState:
    index: int
    part: Part
    proc: Any = None
    status: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] | None = None
    error: str = ""


class Coordinator:
    def __init__(self, settings: Settings, lp: Any, catalog: Any, n: int) -> None:
        if settings.tri.venues:
            raise ShardError("--shards: triangular arbitrage ([tri]) needs every market of a venue in one "
                             "process; run it without --shards")
        self.settings = settings
        self.lp = lp
        self.run_id = ""
        insts = [i for v in lp.venues for i in lp.instruments[v]]
        plan = plan_groups(settings, catalog, insts)
        self.parts = partition([i.key for i in insts], plan.groups, n)
        by_key = {i.key: i for i in insts}
        self.insts = [[by_key[k] for k in p.keys] for p in self.parts]
        self.balances = slice_balances(settings.paper.balances, self.insts)
        self.shards = [ShardState(k, p) for k, p in enumerate(self.parts)]
        self.store: ShardStore | None = None
        self.hub: IpcHub | None = None
        self._sub: Any = None
        # what engine/control.operator_control needs of an engine: the kill file and request()
        self.risk = SimpleNamespace(config=SimpleNamespace(kill_file=settings.risk.kill_file))
        self.events = 0
        self.started = 0.0

    def attach(self, run_id: str, writer: Any = None) -> None:
        """The run's id (order ids carry it) and its storage writer (None: nothing stored)."""
        self.run_id = run_id
        self.store = ShardStore(writer, _SEQ_SPACE) if writer is not None else None

    # -- start ----------------------------------------------------------------------------
    def _spec(self, k: int, address: str, authkey: bytes) -> worker.ShardSpec:
        s = self.settings
        risk = s.risk.model_validate(slice_limits(s.risk.model_dump(), len(self.parts)))
        paper = s.paper.model_copy(update={"balances": self.balances[k]})
        storage = s.storage.model_copy(update={"enabled": False})
        settings = s.model_copy(update={"paper": paper, "risk": risk, "storage": storage})
        venues = [v for v in self.lp.venues if any(i.venue == v for i in self.insts[k])]
        return worker.ShardSpec(k, len(self.parts), address, authkey, self.run_id, settings, venues,
                                list(self.lp.symbols), {v: [i for i in self.insts[k] if i.venue == v] for v in venues},
                                {v: self.lp.paths[v] for v in venues})

    def start(self) -> None:
        """Open the hub and start every shard: ``python -m cryptoarb.shard`` (a fresh interpreter
        importing only the live path), in its own session, its spec pickled on stdin."""
        self.hub = hub = IpcHub()
        self._sub = hub.subscribe("parent", "parent", [*M.ALL_KINDS, worker.STATUS, worker.SUMMARY, worker.ERROR])
        self.started = time.monotonic()
        for sh in self.shards:
            spec = pickle.dumps(self._spec(sh.index, hub.address, hub.authkey))
            sh.proc = subprocess.Popen([sys.executable, "-m", "cryptoarb.shard"], stdin=subprocess.PIPE,
                                       start_new_session=True)
            assert sh.proc.stdin is not None
            with sh.proc.stdin:
                sh.proc.stdin.write(spec)

    # -- control --------------------------------------------------------------------------
    def request(self, what: str, actor: str, reason: str) -> None:
        """Kill or resume every shard (what ``operator_control`` calls from a signal handler)."""
        if what not in ("kill", "resume"):
            raise ValueError(f"request must be 'kill' or 'resume', not {what!r}")
        if self.hub is not None:
            self.hub.publish(worker.CONTROL, f"{what}\0{actor}\0{reason}".encode())

    def poll(self, block_ms: int = 100) -> None:
        """Handle what the shards sent (events to storage, status, summaries, errors)."""
        assert self._sub is not None
        ds = self._sub.read(2000, block_ms)
        for d in ds:
            if d.stream == worker.STATUS:
                st = json.loads(d.data)
                self.shards[st["shard"]].status = st
            elif d.stream == worker.SUMMARY:
                s = json.loads(d.data)
                self.shards[s["shard"]].summary = s
            elif d.stream == worker.ERROR:
                k, _, line = d.data.decode(errors="replace").partition("\0")
                self.shards[int(k)].error = line
            else:
                self.events += 1
                if self.store is not None:
                    try:
                        ev = M.decode(d.data)
                    except M.BadMessage:
                        continue
                    self.store.put(ev)
        self._sub.ack(ds)

    def dead(self) -> list[ShardState]:
        """Shards that ended without a summary (crashed, killed, or could not start)."""
        return [sh for sh in self.shards if sh.proc is not None and sh.proc.poll() is not None and sh.summary is None]

    def run(self, duration: float | None, stopped: Callable[[], bool],
            on_refresh: Callable[[], None] | None = None, refresh_s: float = 0.25) -> str:
        """Until ``duration``, ``stopped()`` or a shard's death; returns why it ended."""
        end = None if duration is None else time.monotonic() + duration
        next_refresh = 0.0
        while True:
            self.poll(50)
            if stopped():
                return "stopped"
            if self.dead():
                return "shard died"
            if end is not None and time.monotonic() >= end:
                return "duration"
            if on_refresh is not None and time.monotonic() >= next_refresh:
                next_refresh = time.monotonic() + refresh_s
                on_refresh()

    def stop(self, timeout: float = 30.0) -> None:
        """Tell every shard to stop; wait for their summaries and exits (bounded: a shard that
        does not end in ``timeout`` is terminated, then killed -- never a hang)."""
        hub = self.hub
        if hub is None:
            return
        hub.publish(worker.CONTROL, b"stop")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll(50)
            if all(sh.proc.poll() is not None for sh in self.shards):
                break
        for sh in self.shards:
            if sh.proc.poll() is None:
                sh.proc.terminate()
                try:
                    sh.proc.wait(5)
                except subprocess.TimeoutExpired:
                    sh.proc.kill()
                    sh.proc.wait(5)
        for _ in range(3):  # what arrived between the last poll and the exits
            self.poll(20)
        hub.close()

    # -- results --------------------------------------------------------------------------
    def death_lines(self) -> list[str]:
        out = []
        for sh in self.dead():
            why = sh.error or f"exit code {sh.proc.returncode}"
            out.append(f"shard {sh.index} (pid {sh.proc.pid}, {len(sh.part.keys)} book(s)) died: {why}")
        return out

    def summary(self) -> dict[str, Any]:
        parts = [sh.summary for sh in self.shards if sh.summary is not None]
        s = merge(parts)
        s["shards"] = [{"index": sh.index, "pid": sh.proc.pid if sh.proc else None, "books": len(sh.part.keys),
                        "groups": len(sh.part.groups), "completed": sh.summary is not None,
                        "messages": (sh.summary or sh.status).get("messages", 0),
                        "opportunities": (sh.summary or sh.status).get("opportunities", 0)}
                       for sh in self.shards]
        return s

    def feeds(self, summary: dict[str, Any]) -> list[Any]:
        """Feed-like rows (``venue``, ``stats``) for the CLI's feed table and exit checks."""
        return [SimpleNamespace(venue=v, stats=SimpleNamespace(**{"stale": 0, "snapshots": 0, **f}))
                for v, f in summary.get("feeds", {}).items()]
