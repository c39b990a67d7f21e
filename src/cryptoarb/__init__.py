"""cryptoarb: real-time crypto arbitrage across centralized and decentralized venues."""

__version__ = "0.1.0"
