"""The engine: feeds -> books -> detectors -> execution, with storage and metrics around it."""

from cryptoarb.engine.engine import Engine

__all__ = ["Engine"]
