"""The native coin's price in each pair's quote currency: what gas costs, per pair.

Gas is paid in the chain's native coin (ETH) but an opportunity's profit is in its pair's quote
currency, so the conversion depends on the pair: a WETH/USDC pool is charged gas at ETH's USDC
price, a WBTC/WETH pool at 1 (WETH *is* ETH), a WBTC/DAI pool at ETH's DAI price. One USD price
for every pair of the chain charged the WBTC/WETH pool 9.0 "WETH" for 0.003 ETH of gas.

:class:`NativePricer` answers "ETH in <quote token>" from, in order:

1. identity: the quote token is the native coin or its wrapped token (``wrapped_native``, or
   by symbol ``W<native_symbol>`` when no address is configured);
2. the configured source ``native_price_from`` (a CEX book or a pool), when it is quoted in that
   currency;
3. the pair's own pool, when its base is the wrapped native coin (WETH/USDC prices ETH in USDC);
4. any other followed pool of the chain between the wrapped native coin and that quote token, or
   any valid spot book of the run ``<native>/<quote>``;
5. a fixed price: ``native_prices`` (by quote symbol), or ``native_price`` in the source's currency.

Nothing known: ``None``. The runtime then refuses to evaluate the pair (counted), and
:meth:`NativePricer.can_price` flags at start a pair for which no source can ever exist.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from cryptoarb.config import DexChainSettings
from cryptoarb.core.book import OrderBook
from cryptoarb.dex.errors import DexError
from cryptoarb.dex.pools import Token
from cryptoarb.dex.quote import Pool, pool_mid


class NativePricer:
    """Native-coin prices for one chain's pairs, from the sources above."""

    def __init__(
        self,
        cfg: DexChainSettings,
        pools: Iterable[tuple[str, Pool, Token, Token]],
        books: Callable[[str], OrderBook | None],
        book_keys: Iterable[str],
    ) -> None:
        """``pools``: (label, pool, base, quote) of the chain's followed pools; ``books``: the run's
        book lookup; ``book_keys``: the CEX books of the run ("binance ETH/USDT")."""
        self.cfg = cfg
        self.pools = list(pools)
        self.books = books
        self.native = cfg.native_symbol
        self.wrapped = cfg.wrapped_native.lower()
        src = cfg.native_price_from
        self.source_quote = src.split()[-1].split("/")[-1].split(":")[0] if src else ""
        self.book_keys = [k for k in book_keys if _spot_pair(k) is not None]

    def is_native(self, token: Token) -> bool:
        if self.wrapped:
            return token.address.lower() == self.wrapped
        return token.symbol in (self.native, f"W{self.native}")

    # -- per evaluation ----------------------------------------------------------------------------
    def price(self, quote: Token, pool: Pool | None = None, base: Token | None = None) -> float | None:
        """The native coin in ``quote`` (human units), or None when no source knows it now.
        ``pool``/``base``: the pair's own pool and base token (source 3)."""
        if self.is_native(quote):
            return 1.0
        if self.source_quote == quote.symbol:
            p = self._source()
            if p:
                return p
        if pool is not None and base is not None and self.is_native(base) and pool.healthy:
            p = _mid(pool, base)
            if p:
                return p
        for _, other, b, q in self.pools:
            if other.healthy and self._joins(b, q, quote):
                native = b if self.is_native(b) else q
                p = _mid(other, native)
                if p:
                    return p
        for key in self.book_keys:
            if _spot_pair(key) == (self.native, quote.symbol):
                book = self.books(key)
                if book is not None and book.valid and book.mid() > 0:
                    return book.mid()
        return self._fixed(quote.symbol)

    def _joins(self, b: Token, q: Token, quote: Token) -> bool:
        """A pool between the native coin and ``quote``."""
        return (self.is_native(b) and q.address == quote.address) or (
            self.is_native(q) and b.address == quote.address
        )

    def _source(self) -> float:
        src = self.cfg.native_price_from
        book = self.books(src)
        if book is not None and book.valid and book.mid() > 0:
            return book.mid()
        for label, pool, base, quote in self.pools:
            if label == src and pool.healthy:
                native = base if self.is_native(base) else quote
                return _mid(pool, native)
        return 0.0

    def _fixed(self, symbol: str) -> float | None:
        p = self.cfg.native_prices.get(symbol, 0.0)
        if not p and self.source_quote == symbol:
            p = self.cfg.native_price
        return p or None

    # -- at start ----------------------------------------------------------------------------------
    def can_price(self, quote: Token, base: Token) -> bool:
        """Whether any source could ever price the native coin in ``quote`` for a pair of ``base``."""
        return (
            self.is_native(quote)
            or self.source_quote == quote.symbol
            or self.is_native(base)
            or any(self._joins(b, q, quote) for _, _, b, q in self.pools)
            or any(_spot_pair(k) == (self.native, quote.symbol) for k in self.book_keys)
            or self._fixed(quote.symbol) is not None
        )

    def missing(self, quote: Token) -> str:
        """How to fix a pair that cannot be priced (one line)."""
        c = self.cfg
        return (
            f"no price of {self.native} in {quote.symbol} to charge gas: set dex.chains (chain {c.chain_id}) "
            f"native_prices.{quote.symbol}, or follow a pool or book of {self.native}/{quote.symbol}"
        )


def _mid(pool: Pool, token: Token) -> float:
    try:
        return pool_mid(pool, token)
    except (DexError, ValueError, ArithmeticError, AssertionError):
        return 0.0


def _spot_pair(key: str) -> tuple[str, str] | None:
    """("ETH", "USDT") of a spot book key "binance ETH/USDT"; None for a derivative or a malformed key."""
    parts = key.split()
    if len(parts) != 2 or "/" not in parts[1] or ":" in parts[1]:
        return None
    base, quote = parts[1].split("/", 1)
    return base, quote
