"""Level types and small decoders the venue modules share (msgspec resolves these names)."""

from __future__ import annotations

import msgspec

from cryptoarb.core.book import Level

Levels = list[Level]
#: a level as the venue wrote it (``[price, size, ...]`` strings), kept where a checksum needs the text
TextLevel = list[str]

decode_parts = msgspec.json.Decoder(list[msgspec.Raw]).decode  # a JSON array, elements still raw
decode_str = msgspec.json.Decoder(str).decode
decode_int = msgspec.json.Decoder(int).decode


def floats(levels: list[TextLevel]) -> Levels:
    """(price, size) floats of text levels; ValueError/IndexError/TypeError when malformed."""
    return [(float(lv[0]), float(lv[1])) for lv in levels]


def num(x: str) -> float:
    """A decimal string as a float, "" as 0."""
    return float(x) if x else 0.0


__all__ = ["Level", "Levels", "TextLevel", "decode_int", "decode_parts", "decode_str", "floats", "num"]
