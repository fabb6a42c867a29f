"""Users: riders, drivers, operators, agencies and admins."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import asyncpg

from maas.db import Connection
from maas.model import ROLES, Role, User

INSERT = "INSERT INTO users (id, name, role, phone, agency) VALUES ($1, $2, $3, $4, $5)"
GET = "SELECT id, name, role, phone, agency FROM users WHERE id = $1"
LIST = "SELECT id, name, role, phone, agency FROM users ORDER BY created_at"


def _role(text: str) -> Role:
    if text not in ROLES:  # the database's CHECK constraint lists the same roles
        raise ValueError(f"unknown role {text!r}")
    return text


def user_of(row: asyncpg.Record | Mapping[str, Any]) -> User:
    """The user of a row with the users table's columns."""
    return User(id=row["id"], name=row["name"], role=_role(row["role"]), phone=row["phone"], agency=row["agency"])


async def create_user(
    conn: Connection, name: str, role: Role, phone: str | None = None, agency: str | None = None
) -> User:
    user = User(id=uuid.uuid4(), name=name, role=role, phone=phone, agency=agency)
    await conn.execute(INSERT, user.id, name, role, phone, agency)
    return user


async def find_user(conn: Connection, user_id: uuid.UUID) -> User | None:
    row = await conn.fetchrow(GET, user_id)
    return None if row is None else user_of(row)


async def list_users(conn: Connection) -> list[User]:
    return [user_of(r) for r in await conn.fetch(LIST)]


SET_ROLE = "UPDATE users SET role = $2, agency = $3 WHERE id = $1 RETURNING id, name, role, phone, agency"


async def set_role(conn: Connection, user_id: uuid.UUID, role: Role, agency: str | None) -> User | None:
    """The user with a new role (which ends their sessions: migration 0026's trigger); None if unknown."""
    row = await conn.fetchrow(SET_ROLE, user_id, role, agency)
    return None if row is None else user_of(row)
