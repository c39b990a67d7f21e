"""The event bus between roles: an interface (``base``), an in-process implementation
(``memory``) and Redis Streams (``redis_bus``); typed msgpack events (``messages``), the engine's
publishing sink and the consumers' loop (``events``), the recorder's outbox to PostgreSQL
(``outbox``). See docs/distributed.md."""
