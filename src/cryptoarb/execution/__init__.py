"""Execution: the arbitrage order state machine and the venues that fill orders."""
