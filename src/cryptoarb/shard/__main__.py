"""``python -m cryptoarb.shard``: a shard process, its ``ShardSpec`` pickled on stdin by the parent.

A plain interpreter importing only what a shard runs (not the CLI the parent was started from,
as ``multiprocessing``'s spawn would), in its own session: a Ctrl-C reaches the parent, which
stops the shards itself (docs/scale.md, "Sharding").
"""

import pickle
import sys

from cryptoarb.shard.worker import main

if __name__ == "__main__":
    main(pickle.load(sys.stdin.buffer))
