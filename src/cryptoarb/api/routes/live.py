"""The running engine: venues, books, risk (kill/resume), settings, status, model version.

With an engine attached (``arb run --api``, ``arb demo``) these read its latest snapshot (a few
times a second) and commands run on its thread. Standalone (``arb api``) there is no engine:
state lists are empty with ``"engine": false`` (venues come from the stream hub's latest
``venue`` messages when something publishes into it, e.g. the bus), kill/resume go through the
kill file of ``[risk] kill_file``, settings cannot be changed.
"""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import ValidationError

from cryptoarb import __version__
from cryptoarb.api import runtime
from cryptoarb.api.deps import Admin, Ctx, User
from cryptoarb.api.link import EngineGone
from cryptoarb.api.routes import ADMIN_ERRORS, AUTH_ERRORS
from cryptoarb.api.schemas import (
    Books,
    Error,
    KillBody,
    KillResult,
    ModelItem,
    ModelVersion,
    Risk,
    SettingsChanged,
    SettingsView,
    Status,
    Venues,
    VenueState,
)
from cryptoarb.engine import killswitch
from cryptoarb.redact import redact_config

router = APIRouter(tags=["engine"], responses=AUTH_ERRORS)
log = logging.getLogger(__name__)
GONE: dict[int | str, dict[str, Any]] = {
    503: {"model": Error, "description": "the attached run has ended or does not answer"}}


def _snap(c: Ctx) -> dict[str, Any] | None:
    return c.link.snapshot if c.link is not None and c.link.snapshot else None


@router.get("/venues", response_model=Venues)
def venues(c: Ctx, _u: User) -> Any:
    """Per venue: connection state, oldest book age, native/ccxt path, messages/s, resyncs."""
    snap = _snap(c)
    if snap is not None:
        return {"engine": True, "items": snap["venues"]}
    items = []
    for v in c.hub.latest("venue").values():  # published by someone else: only what has the shape
        try:
            items.append(VenueState.model_validate(v))
        except ValidationError:
            continue
    return {"engine": False, "items": items}


@router.get("/books", response_model=Books)
def books(c: Ctx, _u: User,
          key: Annotated[str | None, Query(max_length=128, description='one book, "VENUE SYMBOL"')] = None,
          venue: Annotated[str | None, Query(max_length=64)] = None,
          depth: Annotated[int, Query(ge=1, le=20, description="levels per side")] = 5) -> Any:
    """The top ``depth`` levels of each book (or of one)."""
    snap = _snap(c)
    if snap is None:
        return {"engine": False, "items": []}
    items = [b for k, b in snap["books"].items()
             if (key is None or k == key) and (venue is None or b["venue"] == venue)]
    if key is not None and not items:
        raise HTTPException(404, f"no book {key!r} (books: {', '.join(sorted(snap['books'])) or 'none'})")
    return {"engine": True, "items": [{**b, "bids": b["bids"][:depth], "asks": b["asks"][:depth]} for b in items]}


def _limits(c: Ctx) -> dict[str, Any]:
    s = c.link.engine.settings if c.link is not None else c.settings
    return {k: getattr(s.risk, k) for k in runtime.RISK_KEYS}


@router.get("/risk", response_model=Risk)
def risk(c: Ctx, _u: User) -> Any:
    """Limits, breaker states, the kill switch and exposure."""
    snap = _snap(c)
    kill_file = c.settings.risk.kill_file
    if snap is not None:
        r = snap["risk"]
        return {"engine": True, **r, "kill_file": kill_file, "limits": _limits(c)}
    killed: bool | None = None
    reason = ""
    if kill_file:
        req = killswitch.read_kill(kill_file)
        killed = req is not None
        reason = req[1] if req else ""
    return {"engine": False, "killed": killed, "kill_reason": reason, "kill_file": kill_file, "breakers": [],
            "refused": {}, "exposure": {}, "limits": _limits(c)}


def _kill_file(c: Ctx) -> str:
    path = c.settings.risk.kill_file
    if not path:
        raise HTTPException(409, "no engine runs in this API process and no [risk] kill_file is configured: "
                                 "nothing to kill (set risk.kill_file to the running engine's)")
    return path


@router.post("/risk/kill", response_model=KillResult, responses={**ADMIN_ERRORS, **GONE,
                                                                 409: {"model": Error, "description": "no engine"}})
async def kill(body: KillBody, user: Admin, c: Ctx) -> Any:
    """Stop every new trade now (admin). In-process engine: at once; else through the kill file."""
    actor = f"api:{user.sub}"
    if c.link is not None:
        eng = c.link.engine
        try:
            was = await c.link.call(lambda: eng.risk.killed)
            cancel = await c.link.call(lambda: eng.kill(body.reason, actor)) if not was else []
        except EngineGone as e:
            raise HTTPException(503, str(e)) from None
        log.warning("api: kill switch ON by %s: %s", user.sub, body.reason)
        return {"killed": True, "changed": not was, "via": "engine", "detail": body.reason, "cancel": cancel}
    path = _kill_file(c)
    was = killswitch.read_kill(path) is not None
    killswitch.request_kill(path, body.reason, actor)
    return {"killed": True, "changed": not was, "via": "kill_file", "detail": f"kill file {path} written",
            "cancel": []}


@router.post("/risk/resume", response_model=KillResult, responses={**ADMIN_ERRORS, **GONE,
                                                                   409: {"model": Error, "description": "no engine"}})
async def resume(user: Admin, c: Ctx) -> Any:
    """Lift the kill switch (admin); resuming is only ever explicit."""
    actor = f"api:{user.sub}"
    if c.link is not None:
        eng = c.link.engine
        try:
            changed = await c.link.call(lambda: eng.resume(actor, "resume from the API"))
        except EngineGone as e:
            raise HTTPException(503, str(e)) from None
        log.warning("api: kill switch OFF by %s", user.sub)
        return {"killed": False, "changed": bool(changed), "via": "engine",
                "detail": "resumed" if changed else "the kill switch was not on", "cancel": []}
    path = _kill_file(c)
    was = killswitch.read_kill(path) is not None
    killswitch.request_resume(path, actor)
    return {"killed": False, "changed": was, "via": "kill_file",
            "detail": f"resume requested through {path}.resume", "cancel": []}


def _settings_view(c: Ctx) -> dict[str, Any]:
    s = c.link.engine.settings if c.link is not None else c.settings
    data: dict[str, Any] = redact_config(s.model_dump(mode="json"))
    data.get("api", {}).pop("jwt_secret", None)  # never shown, not even as ***
    return data


@router.get("/settings", response_model=SettingsView)
def get_settings(c: Ctx, _u: User) -> Any:
    """The effective settings (credentials as ``***``) and which keys may change at run time."""
    return {"settings": _settings_view(c), "runtime": runtime.runtime_keys(), "engine": c.link is not None}


@router.put("/settings", response_model=SettingsChanged, responses={
    **ADMIN_ERRORS, **GONE, 409: {"model": Error, "description": "no engine attached"},
    400: {"model": Error, "description": "the settings as a whole are invalid"}})
async def put_settings(body: runtime.SettingsChange, user: Admin, c: Ctx) -> Any:
    """Change run-time thresholds of the running engine (admin): the detector's profit and size
    limits and the risk limits (``GET /api/settings`` lists them). Validated as the settings
    file is; nothing changes unless all of it is valid."""
    if c.link is None:
        raise HTTPException(409, "no engine runs in this API process; settings change in a running engine only")
    link = c.link
    try:
        new, diff = runtime.merged(link.engine.settings, body)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise HTTPException(400, f"{where}: {err['msg']}") from None
    if diff:
        try:
            await link.call(lambda: runtime.apply(link.engine, new))
        except EngineGone as e:
            raise HTTPException(503, str(e)) from None
        log.warning("api: settings changed by %s: %s", user.sub, diff)
        if link.engine.sink is not None:
            link.engine.sink.audit(f"api:{user.sub}", "api.settings", {"run_id": link.engine.run_id, **diff})
    return {"changed": diff, "settings": _settings_view(c)}


@router.get("/status", response_model=Status)
def status(c: Ctx, _u: User) -> Any:
    """Version, uptime, the attached run's counters and latency, the database, the stream."""
    from cryptoarb.storage.urls import redact

    snap = _snap(c)
    st = c.hub.stats
    return {
        "version": __version__, "uptime_s": round(time.time() - c.started, 3), "engine": snap is not None,
        "run_id": snap["run_id"] if snap else None, "mode": snap["mode"] if snap else None,
        "messages": snap["messages"] if snap else None, "opportunities": snap["opportunities"] if snap else None,
        "trades": snap["trades"] if snap else None, "latency_us": snap["latency_us"] if snap else None,
        "database": redact(c.db.url.render_as_string(hide_password=True)), "stream_clients": c.hub.clients,
        "stream": {"published": st.published, "delivered": st.delivered, "dropped_clients": st.dropped_clients,
                   "dropped_inbox": st.dropped_inbox, "bad_payloads": st.bad_payloads, "peak_clients": st.peak_clients},
        "dev": c.dev,
    }


@router.get("/model/version", response_model=ModelVersion)
def model_version(c: Ctx, _u: User) -> Any:
    """The model the engine serves, or ``"status": "no model"``."""
    return c.model_source(c.db)


@router.get("/models", response_model=list[ModelItem])
def models(c: Ctx, _u: User) -> Any:
    """Every registered model version, newest first (empty until a model is trained)."""
    from cryptoarb.api import queries

    return queries.models(c.db)
