"""Signing in and out: staff sign in with a login and password; anyone lists and ends their own
sessions and asks for one-time WebSocket tickets."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotAuthorizedException, NotFoundException, TooManyRequestsException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody

from maas.errors import PROBLEM
from maas.model import Issuer, RevokeReason, Role, Session, User
from maas.passwords import MAX_LENGTH
from maas.sessions import Sessions, TooManyAttempts, WrongCredentials
from maas.settings import Settings
from maas.users import UserService
from maas.wire import Timestamp, iso, iso_or_none

Login = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_LENGTH)]


class SignIn(msgspec.Struct, frozen=True, kw_only=True):
    login: Login
    password: Password


class SessionOut(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    role: Role
    issued_at: Timestamp
    expires_at: Timestamp
    issued_by: Issuer
    current: bool = False  # the session of the request's own token
    revoked_at: Timestamp | None = None
    revoked_reason: RevokeReason | None = None


class SignedIn(msgspec.Struct, frozen=True, kw_only=True):
    token: str  # send as `Authorization: Bearer <token>`
    session: SessionOut


class TicketOut(msgspec.Struct, frozen=True, kw_only=True):
    ticket: str  # for one WebSocket connection: wss://host/ws/...?ticket=<ticket>
    expires_at: Timestamp


def session_out(session: Session, current: uuid.UUID | None = None) -> SessionOut:
    return SessionOut(
        id=session.id,
        role=session.role,
        issued_at=iso(session.issued_at),
        expires_at=iso(session.expires_at),
        issued_by=session.issued_by,
        current=session.id == current,
        revoked_at=iso_or_none(session.revoked_at),
        revoked_reason=session.revoked_reason,
    )


def current_session(request: Request[User, Any, Any]) -> uuid.UUID:
    """The session of the request's token (the JWT middleware has checked that it is live)."""
    return uuid.UUID(str(request.auth.jti))


def _sessions(users: NamedDependency[UserService]) -> Sessions:
    return users.sessions


async def _end(user: User, sessions: Sessions, session_id: uuid.UUID) -> SessionOut:
    ended = await sessions.end(user, session_id)
    if ended is None:
        raise NotFoundException(f"you have no live session {session_id}")
    return session_out(ended)


_PROBLEM = {
    401: ResponseSpec(None, description="Wrong login or password", media_type=PROBLEM),
    429: ResponseSpec(None, description="Too many failed sign-ins; see Retry-After", media_type=PROBLEM),
}


class SessionController(Controller):
    path = "/sessions"
    dependencies = {"sessions": Provide(_sessions, sync_to_thread=False)}

    @post("/", exclude_from_auth=True, security=[], responses=_PROBLEM)
    async def sign_in(
        self,
        request: Request[Any, Any, Any],
        settings: NamedDependency[Settings],
        sessions: NamedDependency[Sessions],
        data: JSONBody[SignIn],
    ) -> SignedIn:
        """Operators, agencies and admins: a bearer token for a login and password (riders and drivers
        get tokens from an admin). Failed attempts are limited per login and per address (429)."""
        address = request.client.host if request.client else "unknown"
        try:
            token, session = await sessions.sign_in(settings, data.login, data.password, address)
        except WrongCredentials as exc:
            raise NotAuthorizedException(str(exc)) from exc
        except TooManyAttempts as exc:
            raise TooManyRequestsException(str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from exc
        return SignedIn(token=token, session=session_out(session, session.id))

    @get("/")
    async def mine(self, request: Request[User, Any, Any], sessions: NamedDependency[Sessions]) -> list[SessionOut]:
        """Your sessions that are still live, newest first (`current`: this request's)."""
        current = current_session(request)
        return [session_out(s, current) for s in await sessions.list_active(request.user.id)]

    @delete("/current", status_code=200)
    async def log_out(self, request: Request[User, Any, Any], sessions: NamedDependency[Sessions]) -> SessionOut:
        """Log out: this request's token stops working (in every worker process within seconds); the
        session as it ended."""
        return await _end(request.user, sessions, current_session(request))

    @delete("/{session_id:uuid}", status_code=200)
    async def end(
        self, request: Request[User, Any, Any], sessions: NamedDependency[Sessions], session_id: FromPath[uuid.UUID]
    ) -> SessionOut:
        """End one of your sessions (another device's); 404 for one that is not yours or is over."""
        return await _end(request.user, sessions, session_id)

    @post("/socket-ticket", status_code=201)
    async def socket_ticket(self, request: Request[User, Any, Any], sessions: NamedDependency[Sessions]) -> TicketOut:
        """A ticket for one WebSocket connection (`?ticket=`) within 30 s, instead of a token in the URL;
        the socket stays tied to this session."""
        ticket, expires = await sessions.socket_ticket(current_session(request))
        return TicketOut(ticket=ticket, expires_at=iso(expires))
