"""Detectors: pure functions of books (and limits) to opportunities."""
