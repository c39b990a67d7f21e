"""Column types that give the same Python values back on SQLite and PostgreSQL.

Money and quantities must survive storage exactly: a user reconciles them against the venue.
PostgreSQL has a real NUMERIC(38, 18); SQLite has no decimal type at all and SQLAlchemy would
go through a float (so ``61837.63`` comes back as ``61837.630000000004...``). ``ExactDecimal``
therefore stores a fixed-point string on SQLite, and rounds/validates the same way on both
backends so a value that fits one fits the other.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, Numeric, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

PRECISION = 38
SCALE = 18
_QUANT = Decimal(1).scaleb(-SCALE)
_LIMIT = Decimal(10) ** (PRECISION - SCALE)
# Wide enough that quantizing a NUMERIC(38, 18) value never hits the context precision;
# HALF_UP is what PostgreSQL does when it rounds an over-long fraction.
_CTX = Context(prec=PRECISION + 20, rounding=ROUND_HALF_UP)
# Fixed-point text of the widest value: sign, 20 integer digits, point, 18 decimals.
SQLITE_DECIMAL_LENGTH = 40

# Autoincrementing 64-bit ids: SQLite only autoincrements an "INTEGER PRIMARY KEY" column,
# which is 64-bit there anyway.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


def to_exact(value: Decimal | int | float | str) -> Decimal:
    """``value`` rounded to 18 decimals, or ValueError if it is not finite or too large.

    Floats go through ``repr`` so ``0.1`` means 0.1, not its binary expansion.
    """
    d = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not d.is_finite():
        raise ValueError(f"cannot store non-finite decimal {value!r}")
    q = d.quantize(_QUANT, context=_CTX)
    if abs(q) >= _LIMIT:
        raise ValueError(f"decimal {value!r} does not fit NUMERIC({PRECISION}, {SCALE})")
    return q


def trim(d: Decimal) -> Decimal:
    """Drop the trailing zeros of the 18-decimal form, without switching to exponent notation,
    so ``Decimal('61837.63')`` reads back with the same digits it was written with."""
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return Decimal(s)


class ExactDecimal(TypeDecorator[Decimal]):
    """NUMERIC(38, 18) on PostgreSQL, fixed-point VARCHAR(40) on SQLite; Decimal in and out.

    On SQLite, SQL arithmetic on these columns (SUM, ORDER BY) is not exact; do it in Python.
    """

    impl = Numeric(PRECISION, SCALE, asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(SQLITE_DECIMAL_LENGTH))
        return dialect.type_descriptor(Numeric(PRECISION, SCALE, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        q = to_exact(value)
        return format(q, "f") if dialect.name == "sqlite" else q

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return trim(value if isinstance(value, Decimal) else Decimal(str(value)))


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both backends (SQLite keeps no zone: naive means UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
