"""Sharding, the pure parts and the transport: partitions never split a group and are balanced;
the money slices add up exactly; the Unix-socket bus moves bytes between processes with the
interface's semantics; the merged summary's latency is the shards' samples together."""

from __future__ import annotations

import multiprocessing as mp
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptoarb.bus.base import BusError
from cryptoarb.bus.events import open_transport
from cryptoarb.bus.ipc import IpcHub, IpcTransport
from cryptoarb.core.instruments import Instrument
from cryptoarb.detect.groups import auto_groups
from cryptoarb.engine.latency import LatencyRecorder
from cryptoarb.shard.partition import ShardError, partition, slice_balances, slice_limits, units
from cryptoarb.shard.summary import merge, merge_latency


def _inst(venue: str, symbol: str, kind: str = "spot") -> Instrument:
    from cryptoarb.core.instruments import Fees, Kind

    pair = symbol.split(":")[0]
    base, quote = pair.split("/")
    return Instrument(venue, symbol, base, quote, Kind(kind), 0.01, 0.001, 0.0, 1.0, Fees(0.001, 0.001),
                      base + quote)


def _market(n_syms: int, venues: tuple[str, ...] = ("a", "b", "c")) -> list[Instrument]:
    return [_inst(v, f"C{i}/USDT") for i in range(n_syms) for v in venues]


def test_groups_are_never_split_and_parts_are_balanced() -> None:
    insts = _market(7)
    plan = auto_groups(insts)
    parts = partition([i.key for i in insts], plan.groups, 3)
    where = {k: n for n, p in enumerate(parts) for k in p.keys}
    for g in plan.groups:
        assert len({where[m] for m in g.members}) == 1, g
    assert sorted(len(p.keys) for p in parts) == [6, 6, 9]  # 7 groups of 3 books on 3 shards
    assert sorted(len(p.groups) for p in parts) == [2, 2, 3]
    assert sorted(k for p in parts for k in p.keys) == sorted(i.key for i in insts)  # nothing lost


def test_a_spot_and_a_basis_group_sharing_books_are_one_unit() -> None:
    insts = [_inst("a", "X/USDT"), _inst("b", "X/USDT"), _inst("c", "X/USDT:USDT", "linear"),
             _inst("a", "Y/USDT"), _inst("b", "Y/USDT")]
    plan = auto_groups(insts, basis=True)
    us = units([i.key for i in insts], plan.groups)
    assert sorted(map(sorted, us)) == [["a X/USDT", "b X/USDT", "c X/USDT:USDT"], ["a Y/USDT", "b Y/USDT"]]
    parts = partition([i.key for i in insts], plan.groups, 2)
    assert sorted(len(p.keys) for p in parts) == [2, 3]


def test_markets_in_no_group_are_followed_by_some_shard() -> None:
    insts = [*_market(2, ("a", "b")), _inst("a", "LONE/USDT")]
    plan = auto_groups(insts)
    parts = partition([i.key for i in insts], plan.groups, 2)
    assert sorted(k for p in parts for k in p.keys) == sorted(i.key for i in insts)


def test_weights_balance_by_expected_rate() -> None:
    insts = _market(4, ("a", "b"))
    plan = auto_groups(insts)
    busy = {"a C0/USDT": 100.0, "b C0/USDT": 100.0}  # one hot group against three quiet ones
    parts = partition([i.key for i in insts], plan.groups, 2, busy)
    hot = next(p for p in parts if "a C0/USDT" in p.keys)
    assert hot.keys == ["a C0/USDT", "b C0/USDT"] and hot.weight == 200.0


@given(st.integers(1, 30), st.integers(1, 6), st.lists(st.floats(0.1, 1000), min_size=90, max_size=90))
@settings(max_examples=60, deadline=None)
def test_partition_properties(n_syms: int, n: int, rates: list[float]) -> None:
    insts = _market(n_syms)
    plan = auto_groups(insts)
    weight = {i.key: rates[k] for k, i in enumerate(insts)}
    if n > n_syms:
        with pytest.raises(ShardError, match=f"only {n_syms} independent"):
            partition([i.key for i in insts], plan.groups, n, weight)
        return
    parts = partition([i.key for i in insts], plan.groups, n, weight)
    where = {k: j for j, p in enumerate(parts) for k in p.keys}
    assert len(where) == len(insts)
    assert all(len({where[m] for m in g.members}) == 1 for g in plan.groups)
    assert all(p.groups for p in parts)
    # greedy, heaviest first: no part exceeds the lightest by more than the heaviest unit
    unit = max(sum(weight[m] for m in g.members) for g in plan.groups)
    ws = [p.weight for p in parts]
    assert max(ws) - min(ws) <= unit + 1e-9


def test_zero_shards_and_more_shards_than_groups_are_errors() -> None:
    insts = _market(2)
    plan = auto_groups(insts)
    with pytest.raises(ShardError, match="--shards 0: give 1 or more"):
        partition([i.key for i in insts], plan.groups, 0)
    with pytest.raises(ShardError, match=r"only 2 independent cross-venue group.*use --shards 2 or fewer"):
        partition([i.key for i in insts], plan.groups, 3)
    assert len(partition([i.key for i in insts], [], 1)) == 1  # one process needs no group


def test_balance_slices_add_up_exactly() -> None:
    a = [_inst("a", "BTC/USDT"), _inst("b", "BTC/USDT")]
    b = [_inst("a", "ETH/USDT"), _inst("b", "ETH/USDT"), _inst("a", "SOL/USDT"), _inst("b", "SOL/USDT")]
    bal = {"a": {"USDT": Decimal("10000.00000001"), "BTC": Decimal("1.5"), "ETH": Decimal(3), "BNB": Decimal(2)},
           "b": {"USDT": Decimal("333.33")}}
    sl = slice_balances(bal, [a, b])
    for venue, ccys in bal.items():
        for ccy, amount in ccys.items():
            assert sum(s.get(venue, {}).get(ccy, Decimal(0)) for s in sl) == amount
    assert sl[0]["a"]["BTC"] == Decimal("1.5") and "BTC" not in sl[1].get("a", {})  # a base goes whole
    assert sl[1]["a"]["ETH"] == 3
    assert sl[0]["a"]["USDT"] == Decimal("3333.33333333")  # 1 of 3 books trading USDT on venue a
    assert sl[0]["a"]["BNB"] == 2  # traded by nobody: shard 0


def test_money_limits_are_divided_per_shard() -> None:
    risk = {"max_daily_loss": Decimal(5000), "max_venue_notional": 200000.0, "max_trade_notional": 50000.0,
            "max_one_legged": 0.0, "max_open_orders": 20}
    out = slice_limits(risk, 4)
    assert out["max_daily_loss"] == Decimal(1250) and out["max_venue_notional"] == 50000.0
    assert out["max_trade_notional"] == 50000.0 and out["max_one_legged"] == 0.0 and out["max_open_orders"] == 20


# -- the Unix-socket bus -------------------------------------------------------------------
def _peer(address: str, key: bytes, n: int) -> None:
    t = IpcTransport(address, key)
    for i in range(n):
        t.publish("opportunities", b"x%d" % i)
    sub = t.subscribe("g", "c", ["control"])
    got = sub.read(10, 10_000)  # the hub's broadcast
    sub.ack(got)
    t.publish("echo", got[0].data if got else b"none")
    t.close()


def test_ipc_moves_bytes_between_processes_both_ways() -> None:
    hub = IpcHub()
    sub = hub.subscribe("parent", "p", ["opportunities", "echo"])
    proc = mp.get_context("spawn").Process(target=_peer, args=(hub.address, hub.authkey, 2500))
    proc.start()
    try:
        got: list[bytes] = []
        while len(got) < 2500:
            ds = sub.read(1000, 10_000)
            assert ds, "nothing arrived"
            got += [d.data for d in ds if d.stream == "opportunities"]
            sub.ack(ds)
        assert got == [b"x%d" % i for i in range(2500)]  # all of them, in order
        hub.publish("control", b"stop")
        ds = sub.read(10, 10_000)
        assert [(d.stream, d.data) for d in ds] == [("echo", b"stop")]
        sub.ack(ds)
        assert sub.pending() == 0
    finally:
        proc.join(10)
        hub.close()
    assert proc.exitcode == 0


def test_unacknowledged_entries_are_delivered_again_and_claimed() -> None:
    hub = IpcHub()
    peer = IpcTransport(hub.address, hub.authkey)
    try:
        peer.publish("orders", b"o1")
        assert peer.flush(5)
        a = hub.subscribe("g", "a", ["orders"])
        first = a.read(10, 5000)
        assert [d.data for d in first] == [b"o1"] and a.pending() == 1
        a.rewind()
        assert [d.data for d in a.read(10, 100)] == [b"o1"]  # this consumer's pending entry again
        b = hub.subscribe("g", "b", ["orders"])
        claimed = b.claim(0, 10)
        assert [d.data for d in claimed] == [b"o1"]
        b.ack(claimed)
        assert b.pending() == 0
    finally:
        peer.close()
        hub.close()


def test_a_peer_sees_the_hub_go_away() -> None:
    hub = IpcHub()
    peer = IpcTransport(hub.address, hub.authkey)
    hub.close()
    assert peer.closed.wait(5)
    peer.close()


def test_bad_ipc_urls_and_keys_are_clear_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BusError, match="cannot connect"):
        open_transport(f"ipc://{tmp_path}/nothing.sock")
    with pytest.raises(BusError, match="ipc:///absolute/path/to/socket"):
        open_transport("ipc://relative.sock")
    hub = IpcHub()
    try:
        with pytest.raises(BusError):
            IpcTransport(hub.address, b"wrong key")
    finally:
        hub.close()


# -- the merged summary ----------------------------------------------------------------------
def _hist(samples: list[int]) -> dict[str, object]:
    r = LatencyRecorder()
    for s in samples:
        r.append(s)
    r.fold()
    c = r.counts
    return {"n": r.n, "total": r.total_ns, "buckets": [[int(i), int(c[i])] for i in c.nonzero()[0]]}


def test_merged_latency_is_every_sample_together() -> None:
    a, b = [1_000 * i for i in range(1, 900)], [50_000 + 7_000 * i for i in range(300)]
    both = LatencyRecorder()
    for s in a + b:
        both.append(s)
    merged = merge_latency([{"latency_hist": _hist(a)}, {"latency_hist": _hist(b)}])
    assert merged.summary_us() == both.summary_us() and merged.n == both.n


def test_merged_money_is_exact() -> None:
    parts = [{"pnl_exact": ["0.1", "0", "0.1"], "realized_pnl": "0.1", "expected_pnl": "0.2", "trades": 1,
              "risk": {"refused": {"killed": 2}, "breakers": {"drawdown": "closed"}, "killed": False}},
             {"pnl_exact": ["0.2", "0", "0.2"], "realized_pnl": "0.2", "expected_pnl": "0.1", "trades": 2,
              "risk": {"refused": {"killed": 1, "stale": 1}, "breakers": {"drawdown": "open"}, "killed": True}}]
    s = merge(parts)
    assert s["realized_pnl"] == "0.3" and s["pnl"]["realised"] == 0.3 and s["trades"] == 3
    assert s["risk"] == {"refused": {"killed": 3, "stale": 1}, "breakers": {"drawdown": "open"}, "killed": True}
