"""Live market data: WebSocket connections, REST snapshots through ccxt, feeds, recording."""
