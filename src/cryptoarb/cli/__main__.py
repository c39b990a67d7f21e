"""``python -m cryptoarb.cli``: the same as the ``arb`` entry point."""

from cryptoarb.cli import main

main()
