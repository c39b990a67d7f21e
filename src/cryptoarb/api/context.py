"""What every request handler reaches: settings, database, tokens, the stream hub, the engine link."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import Engine

from cryptoarb.api.auth import Tokens
from cryptoarb.api.hub import StreamHub
from cryptoarb.api.link import EngineLink
from cryptoarb.api.ratelimit import Window
from cryptoarb.config import Settings


def no_model(db: Engine) -> dict[str, Any]:
    """The serving model's version: the promoted row of ``model_metadata``, else "no model".

    The model lifecycle (``cryptoarb.ml.registry``) is not there yet; this is the one place to
    rewire ``GET /api/model/version`` to it (``ApiContext.model_source``)."""
    from cryptoarb.api import queries

    promoted = [m for m in queries.models(db) if m["status"] == "promoted"]
    if not promoted:
        return {"status": "no model", "name": None, "version": None, "sha256": None, "promoted_at": None,
                "detail": "no model is promoted; the engine runs on its rules alone"}
    m = promoted[0]
    return {"status": "ok", "name": m["name"], "version": m["version"], "sha256": m["sha256"],
            "promoted_at": m["promoted_at"], "detail": ""}


class Metrics:
    """The API's own Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter("arb_api_requests", "API requests", ["method", "route", "status"], registry=r)
        self.latency = Histogram("arb_api_request_seconds", "API request latency", ["route"], registry=r,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0))
        self.logins = Counter("arb_api_logins", "login attempts", ["outcome"], registry=r)
        self.stream_clients = Gauge("arb_api_stream_clients", "connected stream clients", registry=r)
        self.stream_send = Histogram("arb_api_stream_send_seconds",
                                     "stream messages: publish to handed to a client's socket", registry=r,
                                     buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))
        self.stream_dropped = Gauge("arb_api_stream_dropped_clients", "stream clients dropped as too slow",
                                    registry=r)
        self.engine_messages = Gauge("arb_engine_messages", "messages the attached engine handled", registry=r)
        self.engine_opportunities = Gauge("arb_engine_opportunities", "opportunities found", registry=r)


@dataclass
class ApiContext:
    settings: Settings
    db: Engine
    tokens: Tokens
    hub: StreamHub
    link: EngineLink | None = None
    dev: bool = False
    model_source: Callable[[Engine], dict[str, Any]] = no_model
    started: float = field(default_factory=time.time)
    metrics: Metrics = field(default_factory=Metrics)
    per_user: Window = field(init=False)
    per_ip: Window = field(init=False)

    def __post_init__(self) -> None:
        a = self.settings.api
        self.per_user = Window(a.login_per_user, a.login_window_s)
        self.per_ip = Window(a.login_per_ip, a.login_window_s)


def ctx(request: Request) -> ApiContext:
    c: ApiContext = request.app.state.ctx
    return c
