"""Offline demo: a SIMULATED multi-venue market driving the real engine (no network, no real prices)."""
