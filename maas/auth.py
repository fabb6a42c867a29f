"""Bearer tokens (JWT, each naming its session) and role guards.

Only `Authorization: Bearer <token>` is taken (the scheme in any case); a token is good while its
session is (maas/sessions.py: not expired, revoked, nor issued for a role its user no longer has).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware.authentication import AuthenticationResult
from litestar.security.jwt import JWTAuth, JWTAuthenticationMiddleware, Token

from maas.api.deps import services_of
from maas.model import Role, Session, User
from maas.sessions import ALGORITHM
from maas.settings import Settings

PUBLIC = ["/health", "/ready", "/schema", "/metrics"]
ENDED = {
    "expired": "this token has expired: sign in again or ask for a new one",
    "revoked": "this token's session has ended (logged out, revoked by an admin, or the password was reset)",
    "role_changed": "this token was issued for a role its user no longer has: sign in again",
    "gone": "this token's user no longer exists",
}


def bearer_token(header: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header; NotAuthorizedException for any other."""
    if not header:
        raise NotAuthorizedException("a bearer token is needed: send 'Authorization: Bearer <token>'")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise NotAuthorizedException(
            f"the Authorization scheme must be Bearer ('Authorization: Bearer <token>'), not {scheme[:20]!r}"
        )
    if not token.strip():
        raise NotAuthorizedException("the Authorization header has no token after 'Bearer'")
    return token.strip()


async def session_of(app: Litestar, token: Token) -> tuple[Session, User]:
    """The live session a decoded token names, and its user; NotAuthorizedException saying why not."""
    try:
        session_id, user_id = uuid.UUID(str(token.jti)), uuid.UUID(token.sub)
    except ValueError:
        raise NotAuthorizedException(
            "this token names no session (it predates revocable ones): sign in again"
        ) from None
    checked = await services_of(app).users.sessions.check(session_id)
    if checked.verdict != "valid":
        raise NotAuthorizedException(ENDED[checked.verdict])
    assert checked.session is not None and checked.user is not None  # a valid session has both
    if checked.session.user_id != user_id:
        raise NotAuthorizedException("this token does not match its session")
    return checked.session, checked.user


def decode(app: Litestar, encoded: str) -> Token:
    """A token whose signature and expiry hold (NotAuthorizedException otherwise)."""
    return Token.decode(encoded, services_of(app).settings.jwt_secret, ALGORITHM)


class BearerAuthentication(JWTAuthenticationMiddleware):
    """Litestar's JWT middleware, but refusing any scheme other than Bearer (it takes whatever comes
    before the first space)."""

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        encoded = bearer_token(connection.headers.get(self.auth_header))
        return await self.authenticate_token(encoded_token=encoded, connection=connection)


def jwt_auth(settings: Settings) -> JWTAuth[User]:
    async def retrieve_user(token: Token, connection: ASGIConnection[Any, Any, Any, Any]) -> User:
        return (await session_of(connection.app, token))[1]

    return JWTAuth[User](
        token_secret=settings.jwt_secret,
        algorithm=ALGORITHM,
        retrieve_user_handler=retrieve_user,
        exclude=PUBLIC,
        authentication_middleware_class=BearerAuthentication,
    )


Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]


def roles(*allowed: Role) -> Guard:
    """A guard letting only users of the given roles through (403 for the others)."""

    # async: Litestar runs a sync guard in a worker thread, which costs every request a thread hop.
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        user = connection.scope.get("user")
        if not isinstance(user, User):
            raise NotAuthorizedException("a bearer token is needed")
        if user.role not in allowed:
            raise PermissionDeniedException(f"this needs the role {' or '.join(allowed)}, not {user.role}")

    return guard
