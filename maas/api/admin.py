"""Admins: users and their tokens; operators and admins: the audit log."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter

from maas.auth import issue_token, roles
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
    ttl_s: int | None = None


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
        return NewUserOut(user=user_out(user), token=issue_token(settings, user))

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
        """A new bearer token for an existing user."""
        user = await users.get_for_token(request.user, data.user_id)
        return TokenOut(token=issue_token(settings, user, data.ttl_s))


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
