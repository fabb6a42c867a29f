"""Admins: users and their tokens; operators and admins: the audit log."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody

from maas.auth import issue_token, roles
from maas.db import audit
from maas.db.database import Database
from maas.db.users import create_user, find_user, list_users
from maas.errors import Invalid, NotFound
from maas.model import ROLES, User
from maas.settings import Settings


class NewUser(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    role: str
    phone: str | None = None
    agency: str | None = None


class TokenRequest(msgspec.Struct, frozen=True, kw_only=True):
    user_id: uuid.UUID
    ttl_s: int | None = None


def user_out(user: User) -> dict[str, Any]:
    return {"id": str(user.id), "name": user.name, "role": user.role, "phone": user.phone, "agency": user.agency}


class AdminController(Controller):
    path = "/admin"
    guards = [roles("admin")]

    @post("/users")
    async def new_user(
        self,
        request: Request[User, Any, Any],
        settings: NamedDependency[Settings],
        db: NamedDependency[Database],
        data: JSONBody[NewUser],
    ) -> dict[str, Any]:
        """Create a user of any role and return a bearer token for it."""
        if data.role not in ROLES:
            raise Invalid(f"role must be one of {', '.join(ROLES)}")
        if not data.name.strip():
            raise Invalid("a user needs a name")
        if data.role == "agency" and not data.agency:
            raise Invalid("an agency user needs the agency it publishes for")
        async with db.pool.acquire() as conn, conn.transaction():
            user = await create_user(conn, data.name.strip(), data.role, data.phone, data.agency)
            await audit.record(conn, request.user.id, "create_user", str(user.id), {"role": user.role})
        return {"user": user_out(user), "token": issue_token(settings, user)}

    @get("/users")
    async def users(self, request: Request[User, Any, Any], db: NamedDependency[Database]) -> list[dict[str, Any]]:
        async with db.pool.acquire() as conn:
            return [user_out(u) for u in await list_users(conn)]

    @post("/tokens")
    async def token(
        self,
        request: Request[User, Any, Any],
        settings: NamedDependency[Settings],
        db: NamedDependency[Database],
        data: JSONBody[TokenRequest],
    ) -> dict[str, Any]:
        """A new bearer token for an existing user."""
        async with db.pool.acquire() as conn, conn.transaction():
            user = await find_user(conn, data.user_id)
            if user is None:
                raise NotFound(f"no user {data.user_id}")
            await audit.record(conn, request.user.id, "issue_token", str(user.id))
        return {"token": issue_token(settings, user, data.ttl_s)}


class AuditController(Controller):
    path = "/audit"
    guards = [roles("operator", "admin")]

    @get("/")
    async def entries(
        self, request: Request[User, Any, Any], db: NamedDependency[Database], limit: FromQuery[int] = 100
    ) -> list[dict[str, Any]]:
        """The newest audit entries: who did what to which booking, vehicle, user or feed."""
        if not 1 <= limit <= 1000:
            raise Invalid("limit must be between 1 and 1000")
        async with db.pool.acquire() as conn:
            entries = await audit.list_entries(conn, limit)
        return [{**e, "actor": str(e["actor"]) if e["actor"] else None, "at": e["at"].isoformat()} for e in entries]
