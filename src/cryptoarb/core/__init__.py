"""Pure domain core: instruments, books, events, opportunities, orders, accounting.

Nothing in this package does I/O, touches asyncio or imports a framework; it is what
every adapter (venues, storage, API) shares and what the tests can reason about exactly.
"""
