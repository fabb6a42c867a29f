"""Admins: users, their tokens, passwords and sessions; operators and admins: the audit log."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from maas.api.sessions import Login, Password, SessionOut, current_session, session_out
from maas.auth import roles
from maas.model import Role, User
from maas.settings import Settings
from maas.users import MAX_AUDIT_ENTRIES, AuditEntry, UserService
from maas.wire import ExternalId, Name, Phone, Timestamp, iso


class NewUser(msgspec.Struct, frozen=True, kw_only=True):
    name: Name
    role: Role
    phone: Phone | None = None
    agency: ExternalId | None = None


class TokenRequest(msgspec.Struct, frozen=True, kw_only=True):
    user_id: uuid.UUID
    ttl_s: Annotated[int, msgspec.Meta(ge=1)] | None = None  # at most MAAS_TOKEN_MAX_TTL_S (default 30 days)


class RoleChange(msgspec.Struct, frozen=True, kw_only=True):
    role: Role
    agency: str | None = None


class NewPassword(msgspec.Struct, frozen=True, kw_only=True):
    login: Login | None = None  # needed the first time; kept when left out
    password: Password


class CredentialsOut(msgspec.Struct, frozen=True, kw_only=True):
    user_id: uuid.UUID
    login: str


class RevokedOut(msgspec.Struct, frozen=True, kw_only=True):
    revoked: int  # how many sessions were still live


class UserOut(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    name: str
    role: Role
    phone: str | None
    agency: str | None


class TokenOut(msgspec.Struct, frozen=True, kw_only=True):
    token: str


class NewUserOut(msgspec.Struct, frozen=True, kw_only=True):
    user: UserOut
    token: str


class AuditEntryOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    actor: uuid.UUID | None
    action: str
    subject: str | None
    details: dict[str, Any]
    at: Timestamp


def user_out(user: User) -> UserOut:
    return UserOut(id=user.id, name=user.name, role=user.role, phone=user.phone, agency=user.agency)


def audit_out(e: AuditEntry) -> AuditEntryOut:
    return AuditEntryOut(id=e.id, actor=e.actor, action=e.action, subject=e.subject, details=e.details, at=iso(e.at))


class AdminController(Controller):
    path = "/admin"
    guards = [roles("admin")]

    @post("/users")
    async def new_user(
        self,
        request: Request[User, Any, Any],
        settings: NamedDependency[Settings],
        users: NamedDependency[UserService],
        data: JSONBody[NewUser],
    ) -> NewUserOut:
        """Create a user of any role and return a bearer token for it."""
        user = await users.create(request.user, data.name, data.role, data.phone, data.agency)
        return NewUserOut(user=user_out(user), token=await users.issue_token(settings, request.user, user.id, None))

    @get("/users")
    async def users(self, users: NamedDependency[UserService]) -> list[UserOut]:
        return [user_out(u) for u in await users.list_users()]

    @post("/tokens")
    async def token(
        self,
        request: Request[User, Any, Any],
        settings: NamedDependency[Settings],
        users: NamedDependency[UserService],
        data: JSONBody[TokenRequest],
    ) -> TokenOut:
        """A new bearer token for an existing user, living `ttl_s` (1 s to MAAS_TOKEN_MAX_TTL_S, default
        MAAS_TOKEN_TTL_S); 422 beyond."""
        return TokenOut(token=await users.issue_token(settings, request.user, data.user_id, data.ttl_s))

    @put("/users/{user_id:uuid}/role")
    async def role(
        self,
        request: Request[User, Any, Any],
        users: NamedDependency[UserService],
        user_id: FromPath[uuid.UUID],
        data: JSONBody[RoleChange],
    ) -> UserOut:
        """Give a user another role: every session of theirs ends and their sockets close (4403)."""
        return user_out(await users.set_role(request.user, user_id, data.role, data.agency))

    @put("/users/{user_id:uuid}/password")
    async def password(
        self,
        request: Request[User, Any, Any],
        users: NamedDependency[UserService],
        user_id: FromPath[uuid.UUID],
        data: JSONBody[NewPassword],
    ) -> CredentialsOut:
        """Set an operator's, agency's or admin's login and password (argon2id, at least 12 characters);
        their other sessions end."""
        login = await users.set_password(request.user, user_id, data.login, data.password, current_session(request))
        return CredentialsOut(user_id=user_id, login=login)

    @get("/users/{user_id:uuid}/sessions")
    async def sessions(self, users: NamedDependency[UserService], user_id: FromPath[uuid.UUID]) -> list[SessionOut]:
        """A user's live sessions, newest first."""
        return [session_out(s) for s in await users.list_sessions(user_id)]

    @delete("/users/{user_id:uuid}/sessions", status_code=200)
    async def revoke(
        self, request: Request[User, Any, Any], users: NamedDependency[UserService], user_id: FromPath[uuid.UUID]
    ) -> RevokedOut:
        """End every session of a user: their tokens stop working in every worker process within seconds."""
        return RevokedOut(revoked=await users.revoke_sessions(request.user, user_id))


class AuditController(Controller):
    path = "/audit"
    guards = [roles("operator", "admin")]

    @get("/")
    async def entries(
        self,
        users: NamedDependency[UserService],
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_AUDIT_ENTRIES)] = 100,
    ) -> list[AuditEntryOut]:
        """The newest audit entries: who did what to which booking, vehicle, user or feed."""
        return [audit_out(e) for e in await users.audit_entries(limit)]
