"""Tardis.dev ``incremental_book_L2`` data as a venue stream (bought historical data).

Tardis documents the CSV columns ``exchange,symbol,timestamp,local_timestamp,is_snapshot,side,
price,amount`` (timestamps in µs since the epoch; ``amount`` is the absolute level size, 0
removes the level). Rows sharing a ``local_timestamp`` and ``is_snapshot`` are one update; a
snapshot that starts after non-snapshot rows replaces the book (Tardis emits one at every
reconnection of its recorder). The replay reader hands this handler one update at a time, as
the CSV rows themselves, so that the rows are parsed here like any venue's frames.
"""

from __future__ import annotations

from cryptoarb.core.book import VALID
from cryptoarb.venues.base import DEPTH, SNAPSHOT, Handler, MessageError
from cryptoarb.venues.registry import canonical, handler_class

#: Tardis exchange ids whose ccxt id differs
EXCHANGES = {
    "binance-futures": "binanceusdm",
    "binance-delivery": "binancecoinm",
    "coinbase": "coinbaseexchange",
    "gate-io": "gate",
    "huobi": "htx",
    "okex": "okx",
    "bybit-spot": "bybit",
    "kraken": "kraken",
    "cryptofacilities": "krakenfutures",
}


def ccxt_id(tardis_exchange: str) -> str:
    return canonical(EXCHANGES.get(tardis_exchange, tardis_exchange))


class TardisHandler(Handler):
    """Books of one venue from Tardis ``incremental_book_L2`` rows."""

    def subscribe_messages(self, insts: list) -> list[str]:  # type: ignore[type-arg]
        raise MessageError("Tardis data is historical: it is replayed, not subscribed to")

    def unify(self, native: str) -> str:
        cls = handler_class(self.venue)
        if cls is not None:
            probe = cls(self.venue, self.catalog, lambda b, t: None)
            return probe.unify(native)
        return super().unify(native)

    def on_message(self, raw: bytes, local_ns: int) -> int:
        """One update: CSV rows (same symbol, local timestamp and snapshot flag)."""
        bids: list[tuple[float, float]] = []
        asks: list[tuple[float, float]] = []
        symbol = ""
        snapshot = False
        ts_us = 0
        try:
            for row in raw.split(b"\n"):
                f = row.split(b",")
                if len(f) != 8:
                    raise MessageError(f"expected 8 columns, got {len(f)}")
                symbol = f[1].decode()
                ts_us = int(f[2])
                snapshot = f[4] == b"true"
                level = (float(f[6]), float(f[7]))
                if f[5] == b"bid":
                    bids.append(level)
                elif f[5] == b"ask":
                    asks.append(level)
                else:
                    raise MessageError(f"side {f[5].decode()!r} is neither bid nor ask")
        except (ValueError, UnicodeDecodeError) as e:
            self.bad_messages += 1
            raise MessageError(f"bad Tardis row: {e}") from None
        except MessageError:
            self.bad_messages += 1
            raise
        sync = self.sync_for(self.instrument_for(symbol))
        book = sync.book
        if snapshot:
            if sync.expect_first:  # a new snapshot starts over (Tardis re-snapshots on reconnect)
                if book.state == VALID:
                    sync.resyncs += 1
                book.load_snapshot(bids, asks)
                sync.expect_first = False
                self._set_state(sync, VALID, "tardis snapshot", local_ns)
            else:  # the same snapshot, continued under another timestamp
                book.apply(bids, asks)
        else:
            sync.expect_first = True
            if book.state != VALID:
                sync.dropped_before_snapshot += 1
                return DEPTH
            book.apply(bids, asks)
            sync.diffs_applied += 1
        book.exchange_ns = ts_us * 1000
        book.local_ns = local_ns
        if book.valid:
            self.on_book(book, local_ns)
        return SNAPSHOT if snapshot else DEPTH
