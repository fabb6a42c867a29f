"""`maas user create` and `maas user token`: users and their bearer tokens (the first admin is made here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from maas.cli.common import fail, json_encoder, load_settings, with_connection
from maas.model import ROLES, Role, User

if TYPE_CHECKING:
    from maas.db import Connection


@click.group()
def user() -> None:
    """Users and API tokens (the first admin is created here)."""


@user.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--phone", default=None)
@click.option("--agency", default=None, help="The agency an agency user publishes for.")
@click.option("--json", "as_json", is_flag=True, help="Print {user, token} as JSON.")
def user_create(name: str, role: Role, phone: str | None, agency: str | None, as_json: bool) -> None:
    """Create a user in the database of MAAS_DATABASE_URL (or the embedded one) and print a bearer token."""
    from maas.auth import issue_token
    from maas.db.users import create_user

    if role == "agency" and not agency:
        fail("an agency user needs --agency")

    async def work(conn: Connection) -> User:
        return await create_user(conn, name, role, phone, agency)

    settings = load_settings()
    created = with_connection(settings, work)
    token = issue_token(settings, created)
    if as_json:
        click.echo(
            json_encoder.encode(
                {"user": {"id": str(created.id), "name": created.name, "role": created.role}, "token": token}
            ).decode()
        )
    else:
        click.echo(f"{created.role} {created.name}: {created.id}\ntoken: {token}")


@user.command("token")
@click.argument("user_id")
def user_token(user_id: str) -> None:
    """Print a new bearer token for an existing user."""
    import uuid

    from maas.auth import issue_token
    from maas.db.users import find_user

    try:
        wanted = uuid.UUID(user_id)
    except ValueError:
        fail(f"{user_id!r} is not a user id (a UUID)")

    async def work(conn: Connection) -> User | None:
        return await find_user(conn, wanted)

    settings = load_settings()
    found = with_connection(settings, work)
    if found is None:
        fail(f"no user {user_id}")
    click.echo(issue_token(settings, found))
