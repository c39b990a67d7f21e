"""Sharding a live run across processes (issue #15, "use every core").

A shard process owns whole cross-venue groups: it opens its own connections for their markets,
keeps their books and decides in-process (no hop between a tick and its decision). The parent
plans the markets, partitions them (:mod:`.partition`), spawns the shards (:mod:`.worker`) and
is the one owner of what is global (:mod:`.coordinator`): storage, the view and summary, the
kill switch. Shards and parent share nothing but messages, over the bus interface
(:mod:`cryptoarb.bus.ipc`). See docs/scale.md, "Sharding".
"""
