"""Venue adapters: one module per exchange handler, plus the instrument catalog."""
