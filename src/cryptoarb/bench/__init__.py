"""Benchmarks and reference implementations used to compare cryptoarb against other code."""
