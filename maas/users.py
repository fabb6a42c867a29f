"""Admins' users, their tokens, passwords and sessions; the audit log operators and admins read."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec

from maas.db import Connection, audit
from maas.db import sessions as session_repo
from maas.db.database import Database
from maas.db.users import create_user, find_user, list_users, set_role
from maas.errors import Invalid, NotFound
from maas.model import Role, Session, User
from maas.sessions import Sessions, issue_token, set_credentials, token_ttl
from maas.settings import Settings

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
        self.sessions = Sessions(db)

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

    async def issue_token(self, settings: Settings, actor: User, user_id: uuid.UUID, ttl_s: int | None) -> str:
        """A new bearer token for an existing user (audited); Invalid for a lifetime out of bounds (then
        nothing is issued nor audited), NotFound for an unknown user."""
        ttl = token_ttl(settings, ttl_s)
        async with self.db.pool.acquire() as conn, conn.transaction():
            user = await self._get(conn, user_id)
            token = await issue_token(conn, settings, user, ttl, "admin", actor.id)
            await audit.record(conn, actor.id, "issue_token", str(user.id), {"ttl_s": ttl})
        return token

    async def set_role(self, actor: User, user_id: uuid.UUID, role: Role, agency: str | None) -> User:
        """Give a user another role (audited): every session of theirs ends, open sockets close."""
        if role == "agency" and not agency:
            raise Invalid("an agency user needs the agency it publishes for")
        async with self.db.pool.acquire() as conn, conn.transaction():
            user = await set_role(conn, user_id, role, agency if role == "agency" else None)
            if user is None:
                raise NotFound(f"no user {user_id}")
            await audit.record(conn, actor.id, "change_role", str(user.id), {"role": role})
        self.sessions.forget()
        return user

    async def set_password(
        self, actor: User, user_id: uuid.UUID, login: str | None, password: str, keep: uuid.UUID | None
    ) -> str:
        """Set a staff user's login and password (audited, without either); their other sessions end."""
        async with self.db.pool.acquire() as conn, conn.transaction():
            user = await self._get(conn, user_id)
            stored = await set_credentials(conn, user, login, password, keep)
            await audit.record(conn, actor.id, "set_password", str(user.id), {"login": stored})
        self.sessions.forget()
        return stored

    async def list_sessions(self, user_id: uuid.UUID) -> list[Session]:
        async with self.db.pool.acquire() as conn:
            await self._get(conn, user_id)
        return await self.sessions.list_active(user_id)

    async def revoke_sessions(self, actor: User, user_id: uuid.UUID) -> int:
        """End every session of a user (audited); how many were live."""
        async with self.db.pool.acquire() as conn, conn.transaction():
            user = await self._get(conn, user_id)
            ended = await session_repo.revoke_sessions(conn, user.id, "revoked")
            await audit.record(conn, actor.id, "revoke_sessions", str(user.id), {"sessions": ended})
        self.sessions.forget()
        return ended

    async def _get(self, conn: Connection, user_id: uuid.UUID) -> User:
        user = await find_user(conn, user_id)
        if user is None:
            raise NotFound(f"no user {user_id}")
        return user

    async def audit_entries(self, limit: int) -> list[AuditEntry]:
        """The newest `limit` audit entries, newest first."""
        if not 1 <= limit <= MAX_AUDIT_ENTRIES:
            raise Invalid(f"limit must be between 1 and {MAX_AUDIT_ENTRIES}")
        async with self.db.pool.acquire() as conn:
            entries = await audit.list_entries(conn, limit)
        return [msgspec.convert(e, AuditEntry) for e in entries]
