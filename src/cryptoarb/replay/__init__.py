"""Replay of recorded captures through exactly the code that runs live."""
