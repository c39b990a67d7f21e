"""``arb user add/list/remove/passwd``: the API's users (argon2 hashes in the database)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cryptoarb.cli.common import ConfigOpt, DbOpt, _settings, app, console, fail

user_app = typer.Typer(no_args_is_help=True, help="API users: add, list, remove, passwd.")
app.add_typer(user_app, name="user")


def _db(config: ConfigOpt, db: DbOpt):  # type: ignore[no-untyped-def]
    from cryptoarb.storage.db import connect

    settings = _settings(config, db, False)
    return connect(settings.storage.url)


@user_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="User name")],
    role: Annotated[str, typer.Option("--role", help="admin (kill/resume, settings) or viewer")] = "viewer",
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Add a user. The password is read from standard input when it is not a terminal
    (``echo "$PW" | arb user add alice --role admin``), else asked twice."""
    from cryptoarb.api.users import UserError, add_user, check_name, check_password, check_role
    from cryptoarb.cli.api import read_password

    try:
        check_name(name)
        check_role(role)
        password = check_password(read_password())
        add_user(_db(config, db), name, role, password)
    except UserError as e:
        fail(str(e))
    console.print(f"user {name} added ({role})", highlight=False)


@user_app.command("list")
def list_(config: ConfigOpt = None, db: DbOpt = None) -> None:
    """List the users and their roles."""
    from cryptoarb.api.users import list_users

    rows = list_users(_db(config, db))
    t = Table(title=f"{len(rows)} API user(s)")
    for col in ("user", "role", "created (UTC)", "disabled"):
        t.add_column(col)
    for u in rows:
        t.add_row(u.username, u.role, u.created_at.strftime("%Y-%m-%d %H:%M:%S"), "yes" if u.disabled else "")
    console.print(t)


@user_app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="User name")], config: ConfigOpt = None, db: DbOpt = None) -> None:
    """Remove a user; their tokens stop working at once."""
    from cryptoarb.api.users import UserError, remove_user

    try:
        remove_user(_db(config, db), name)
    except UserError as e:
        fail(str(e))
    console.print(f"user {name} removed", highlight=False)


@user_app.command("passwd")
def passwd(name: Annotated[str, typer.Argument(help="User name")], config: ConfigOpt = None, db: DbOpt = None) -> None:
    """Set a new password (standard input when not a terminal); every token issued before stops working."""
    from cryptoarb.api.users import UserError, check_password, set_password
    from cryptoarb.cli.api import read_password

    try:
        set_password(_db(config, db), name, check_password(read_password("new password")))
    except UserError as e:
        fail(str(e))
    console.print(f"password of {name} changed; their tokens are revoked", highlight=False)
