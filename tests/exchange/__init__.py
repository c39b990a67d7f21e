"""Local exchanges for the live-trading tests: real protocols served by real processes on 127.0.0.1.

``binance_rest`` speaks enough of Binance's spot REST API for ccxt's ``binance`` / ``binanceus``
classes to trade against it unmodified; ``process`` starts and stops it as a subprocess.
See docs/local-venue.md.
"""
