"""`maas user create`, `maas user token` and `maas user password`: users, their bearer tokens and staff
passwords (the first admin is made here)."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import click

from maas.cli.common import fail, json_encoder, load_settings, with_connection
from maas.model import ROLES, Role, User
from maas.settings import Settings

if TYPE_CHECKING:
    import uuid

    from maas.db import Connection

T = TypeVar("T")


@click.group()
def user() -> None:
    """Users, API tokens and staff passwords (the first admin is created here)."""


def _run(settings: Settings, work: Callable[[Connection], Awaitable[T]]) -> T:
    """`work` on a connection; what the service refuses (a short password, a login taken) fails with its reason."""
    from maas.errors import MaasError

    try:
        return with_connection(settings, work)
    except MaasError as exc:
        fail(str(exc))


def _read_password(from_stdin: bool) -> str:
    """The new password from stdin (one line) or a hidden prompt asked twice: never from the command line,
    which other users of the machine can see."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("new password", hide_input=True, confirmation_prompt=True, err=True)
    if not password:
        fail("no password given")
    return password


@user.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--phone", default=None)
@click.option("--agency", default=None, help="The agency an agency user publishes for.")
@click.option("--login", default=None, help="Sign-in name of an operator, agency or admin (with a password).")
@click.option("--password-stdin", is_flag=True, help="Read the password for --login from stdin (one line).")
@click.option("--json", "as_json", is_flag=True, help="Print {user, token} as JSON.")
def user_create(
    name: str,
    role: Role,
    phone: str | None,
    agency: str | None,
    login: str | None,
    password_stdin: bool,
    as_json: bool,
) -> None:
    """Create a user in the database of MAAS_DATABASE_URL (or the embedded one) and print a bearer token;
    with --login, also a password to sign in with (POST /sessions)."""
    from maas.db.users import create_user
    from maas.sessions import issue_token, set_credentials

    if role == "agency" and not agency:
        fail("an agency user needs --agency")
    if password_stdin and login is None:
        fail("--password-stdin goes with --login")
    password = _read_password(password_stdin) if login is not None else None
    settings = load_settings()

    async def work(conn: Connection) -> tuple[User, str]:
        async with conn.transaction():
            created = await create_user(conn, name, role, phone, agency)
            if password is not None:
                await set_credentials(conn, created, login, password)
            return created, await issue_token(conn, settings, created)

    created, token = _run(settings, work)
    if as_json:
        click.echo(
            json_encoder.encode(
                {"user": {"id": str(created.id), "name": created.name, "role": created.role}, "token": token}
            ).decode()
        )
    else:
        click.echo(f"{created.role} {created.name}: {created.id}\ntoken: {token}")


def _user_id(text: str) -> uuid.UUID:
    import uuid

    try:
        return uuid.UUID(text)
    except ValueError:
        fail(f"{text!r} is not a user id (a UUID)")


@user.command("token")
@click.argument("user_id")
@click.option("--ttl-s", type=int, default=None, help="Lifetime in seconds (default MAAS_TOKEN_TTL_S).")
def user_token(user_id: str, ttl_s: int | None) -> None:
    """Print a new bearer token for an existing user."""
    from maas.db.users import find_user
    from maas.sessions import issue_token

    wanted = _user_id(user_id)
    settings = load_settings()

    async def work(conn: Connection) -> str | None:
        found = await find_user(conn, wanted)
        return None if found is None else await issue_token(conn, settings, found, ttl_s)

    token = _run(settings, work)
    if token is None:
        fail(f"no user {user_id}")
    click.echo(token)


@user.command("password")
@click.argument("user_id")
@click.option("--login", default=None, help="Sign-in name (needed the first time; kept otherwise).")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (one line) instead of a prompt.")
def user_password(user_id: str, login: str | None, password_stdin: bool) -> None:
    """Set the password (and login) an operator, agency or admin signs in with; ends their sessions."""
    from maas.db.users import find_user
    from maas.sessions import set_credentials

    wanted = _user_id(user_id)
    password = _read_password(password_stdin)
    settings = load_settings()

    async def work(conn: Connection) -> str | None:
        async with conn.transaction():
            found = await find_user(conn, wanted)
            return None if found is None else await set_credentials(conn, found, login, password)

    stored = _run(settings, work)
    if stored is None:
        fail(f"no user {user_id}")
    click.echo(f"login {stored} can sign in (POST /sessions); their earlier sessions have ended", err=True)
