"""JWT bearer tokens and role guards."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.security.jwt import JWTAuth, Token

from maas.api.deps import services_of
from maas.db.users import find_user
from maas.model import Role, User
from maas.settings import Settings

PUBLIC = ["/health", "/ready", "/schema", "/metrics"]
USER_CACHE_S = 30.0


def jwt_auth(settings: Settings) -> JWTAuth[User]:
    # Users change rarely; a short-lived cache spares every request a database round trip.
    cache: dict[uuid.UUID, tuple[float, User | None]] = {}

    async def retrieve_user(token: Token, connection: ASGIConnection[Any, Any, Any, Any]) -> User | None:
        try:
            user_id = uuid.UUID(token.sub)
        except ValueError:
            return None
        now = time.monotonic()
        known = cache.get(user_id)
        if known is not None and now - known[0] < USER_CACHE_S:
            return known[1]
        async with services_of(connection.app).db.pool.acquire() as conn:
            user = await find_user(conn, user_id)
        if len(cache) > 100_000:
            cache.clear()
        cache[user_id] = (now, user)
        return user

    return JWTAuth[User](
        token_secret=settings.jwt_secret,
        retrieve_user_handler=retrieve_user,
        exclude=PUBLIC,
        default_token_expiration=dt.timedelta(seconds=settings.token_ttl_s),
    )


def issue_token(settings: Settings, user: User, ttl_s: int | None = None) -> str:
    """A signed bearer token for `user`."""
    return jwt_auth(settings).create_token(
        identifier=str(user.id),
        token_expiration=dt.timedelta(seconds=ttl_s or settings.token_ttl_s),
        token_extras={"role": user.role},
    )


Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], None]


def roles(*allowed: Role) -> Guard:
    """A guard letting only users of the given roles through (403 for the others)."""

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        user = connection.scope.get("user")
        if not isinstance(user, User):
            raise NotAuthorizedException("a bearer token is needed")
        if user.role not in allowed:
            raise PermissionDeniedException(f"this needs the role {' or '.join(allowed)}, not {user.role}")

    return guard
