"""``arb api`` (the API alone, on stored data) and the API beside a run (``arb demo``/``arb run --api``)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cryptoarb.cli.common import ConfigOpt, DbOpt, _settings, app, console, fail, warn

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from cryptoarb.api.server import ApiThread
    from cryptoarb.config import Settings

HostOpt = Annotated[str | None, typer.Option("--host", help="Address to listen on (default: api.host, 127.0.0.1)")]
PortOpt = Annotated[int | None, typer.Option("--port", min=0, max=65535,
                                             help="Port (default: api.port, 8000; 0: any free port)")]
DevOpt = Annotated[bool, typer.Option("--dev", help="Development mode: a missing or weak JWT secret is replaced "
                                                    "by a random one (never for a reachable server)")]


def api_db(settings: Settings) -> Engine:
    """The database the API reads and keeps its users and tokens in: the run's, or with
    ``--no-store`` a private in-memory one (users then last as long as the process)."""
    from cryptoarb.storage.db import connect

    return connect(settings.storage.url if settings.storage.enabled else ":memory:")


@app.command("api")
def api_cmd(
    host: HostOpt = None,
    port: PortOpt = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    dev: DevOpt = False,
    bus: Annotated[str | None, typer.Option("--bus", help="Distributed mode: feed the stream from this bus "
                                                          "(redis://HOST:PORT/DB; docs/distributed.md)")] = None,
) -> None:
    """Serve the REST API, the stream and the dashboard on the stored data (no engine runs here:
    kill/resume go through risk.kill_file). Users: arb user add NAME --role admin."""
    from cryptoarb.api.auth import SecretRefused
    from cryptoarb.api.server import PortInUse, bind, build_context, serve_forever
    from cryptoarb.storage.urls import redact

    settings = _settings(config, db, False)
    h, p = host or settings.api.host, settings.api.port if port is None else port
    try:
        ctx = build_context(settings, api_db(settings), dev=dev)
    except SecretRefused as e:
        fail(str(e))
    try:
        sock = bind(h, p)
    except PortInUse as e:
        fail(f"{e} (--port)")
    bound = sock.getsockname()
    shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    console.print(f"api: http://{shown}:{bound[1]}/  (docs /docs, database {redact(str(settings.storage.url))})",
                  highlight=False, soft_wrap=True)
    if not _has_users(ctx.db):
        warn("no API user yet: add one with `arb user add NAME --role admin`")
    stop_feed = _bus_feed(bus, settings, ctx.hub) if bus else None
    try:
        serve_forever(ctx, sock)
    finally:
        if stop_feed is not None:
            stop_feed()


def _bus_feed(url: str, settings: Settings, hub: Any) -> Any:
    """The bus -> stream hub consumer of the distributed mode (cryptoarb.roles.consumers)."""
    import os
    import socket

    from cryptoarb.bus.base import BusError
    from cryptoarb.roles.consumers import start_hub_feeder

    try:
        return start_hub_feeder(url, settings, hub, f"{socket.gethostname()}-{os.getpid()}")
    except BusError as e:
        fail(str(e))


def _has_users(db: Engine) -> bool:
    from cryptoarb.api.users import list_users

    return bool(list_users(db))


def start_beside(engine: Any, settings: Settings, mode: str, host: str | None, port: int | None, dev: bool,
                 feeds: list[Any] | None = None, paths: dict[str, str] | None = None,
                 required: bool = True) -> tuple[ApiThread, Any, str] | None:
    """Start the API on its own thread, attached to ``engine``: (server, link, one-off admin or "").

    Dev mode (the demo) creates a one-off admin and prints the dashboard line (docs/api.md). A
    port in use is an error when ``required``, else a warning and no API (the demo still runs)."""
    from cryptoarb.api.auth import SecretRefused
    from cryptoarb.api.hub import StreamHub
    from cryptoarb.api.link import EngineLink
    from cryptoarb.api.server import ApiThread, PortInUse, bind, build_context
    from cryptoarb.api.users import one_off_admin

    a = settings.api
    h, p = host or a.host, a.port if port is None else port
    try:
        sock = bind(h, p)
    except PortInUse as e:
        if required:
            fail(f"{e} (--api-port, or --no-api)")
        warn(f"API not started: {e}; choose another with --api-port, or --no-api")
        return None
    hub = StreamHub(a.max_stream_clients, a.stream_queue)
    link = EngineLink(engine, hub, mode=mode, feeds=feeds, paths=paths).attach()
    try:
        ctx = build_context(settings, api_db(settings), dev=dev, link=link)
    except SecretRefused as e:
        sock.close()
        fail(str(e))
    server = ApiThread(ctx, sock).start()
    admin = ""
    if dev:
        admin, password = one_off_admin(ctx.db)
        # the exact format is documented in docs/api.md (the browser test reads it)
        console.print(f"dashboard: {server.url}  user: {admin}  password: {password}", highlight=False,
                      soft_wrap=True, markup=False)
    else:
        console.print(f"api: {server.url}  (docs {server.url}docs)", highlight=False, soft_wrap=True)
    return server, link, admin


def stop_beside(started: tuple[ApiThread, Any, str] | None) -> None:
    """The run is over: commands to the engine fail from now on; the one-off admin is removed;
    the server stops."""
    if started is None:
        return
    server, link, admin = started
    link.close()
    if admin:
        from cryptoarb.api.users import UserError, remove_user

        with contextlib.suppress(UserError):  # already removed by hand
            remove_user(server.ctx.db, admin)
    server.stop()


def read_password(prompt: str = "password") -> str:
    """The password from standard input when it is not a terminal (first line), else asked twice."""
    import sys

    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        if not line:
            fail("no password on standard input")
        return line.rstrip("\r\n")
    import getpass

    first = getpass.getpass(f"{prompt}: ")
    if getpass.getpass(f"{prompt} (again): ") != first:
        fail("the two passwords differ")
    return first


