"""Admins' users (their tokens are issued by maas.auth); the audit log operators and admins read."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec

from maas.db import audit
from maas.db.database import Database
from maas.db.users import create_user, find_user, list_users
from maas.errors import Invalid, NotFound
from maas.model import Role, User

MAX_AUDIT_ENTRIES = 1000


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    actor: uuid.UUID | None
    action: str
    subject: str | None
    details: dict[str, Any]
    at: dt.datetime


class UserService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, actor: User, name: str, role: Role, phone: str | None, agency: str | None) -> User:
        """A new user of any role; the creation is audited."""
        name = name.strip()
        if not name:
            raise Invalid("a user needs a name")
        if role == "agency" and not agency:
            raise Invalid("an agency user needs the agency it publishes for")
        async with self.db.pool.acquire() as conn, conn.transaction():
            user = await create_user(conn, name, role, phone, agency)
            await audit.record(conn, actor.id, "create_user", str(user.id), {"role": user.role})
        return user

    async def list_users(self) -> list[User]:
        async with self.db.pool.acquire() as conn:
            return await list_users(conn)

    async def get_for_token(self, actor: User, user_id: uuid.UUID) -> User:
        """An existing user a bearer token is issued for (audited); NotFound for an unknown one."""
        async with self.db.pool.acquire() as conn, conn.transaction():
            user = await find_user(conn, user_id)
            if user is None:
                raise NotFound(f"no user {user_id}")
            await audit.record(conn, actor.id, "issue_token", str(user.id))
        return user

    async def audit_entries(self, limit: int) -> list[AuditEntry]:
        """The newest `limit` audit entries, newest first."""
        if not 1 <= limit <= MAX_AUDIT_ENTRIES:
            raise Invalid(f"limit must be between 1 and {MAX_AUDIT_ENTRIES}")
        async with self.db.pool.acquire() as conn:
            entries = await audit.list_entries(conn, limit)
        return [msgspec.convert(e, AuditEntry) for e in entries]
