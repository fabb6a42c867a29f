"""Revocable sessions behind the bearer tokens, staff sign-in, and one-time WebSocket tickets.

Every token carries the id of a session row (its `jti`). Each process checks a token's session on
every request, from a cache of at most `SESSION_CACHE_S` seconds: a revocation in one worker process
holds in every other within that time (and at once in its own, which drops its cache). A session ends
when it expires, on logout, when an admin revokes it, when its user's role changes or their password
is set, and when the user is deleted.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import re
import secrets
import time
import uuid
from typing import Literal

import msgspec
from litestar.security.jwt import Token

from maas.db import Connection
from maas.db import sessions as repo
from maas.db.database import Database
from maas.db.users import find_user
from maas.errors import Conflict, Invalid, MaasError
from maas.model import Issuer, Role, Session, User
from maas.passwords import PasswordRefused, hash_password, needs_rehash, verify_password
from maas.settings import Settings

SESSION_CACHE_S = 3.0
TICKET_TTL_S = 30
ADDRESS_FACTOR = 4  # an address (an office, a proxy) may fail four times as often as one login
SIGN_IN_ROLES: tuple[Role, ...] = ("operator", "agency", "admin")  # riders and drivers get issued tokens
LOGIN = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,99}$")  # migration 0026 checks the same
ALGORITHM = "HS256"

# What a token's session is now: valid, or why not. `gone`: the user (and with them the session) was deleted.
Verdict = Literal["valid", "expired", "revoked", "role_changed", "gone"]


class WrongCredentials(MaasError):
    """Unknown login, wrong password, or an account that does not sign in (401)."""


class TooManyAttempts(MaasError):
    """Too many failed sign-ins of this login or from this address lately (429)."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many failed sign-ins; try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class Checked(msgspec.Struct, frozen=True, kw_only=True):
    verdict: Verdict
    session: Session | None = None
    user: User | None = None  # the user as they are now


def token_ttl(settings: Settings, ttl_s: int | None) -> int:
    """The lifetime of a new token: `ttl_s` (default MAAS_TOKEN_TTL_S) within 1 s .. MAAS_TOKEN_MAX_TTL_S."""
    ttl = settings.token_ttl_s if ttl_s is None else ttl_s
    if not 1 <= ttl <= settings.token_max_ttl_s:
        raise Invalid(
            f"ttl_s must be between 1 and {settings.token_max_ttl_s} seconds"
            f" ({settings.token_max_ttl_s / 86400:g} days), got {ttl}"
        )
    return ttl


def encode_token(settings: Settings, session: Session) -> str:
    token = Token(sub=str(session.user_id), exp=session.expires_at, jti=str(session.id), extras={"role": session.role})
    return token.encode(settings.jwt_secret, ALGORITHM)


async def issue_token(
    conn: Connection,
    settings: Settings,
    user: User,
    ttl_s: int | None = None,
    issued_by: Issuer = "cli",
    issuer_id: uuid.UUID | None = None,
) -> str:
    """A signed bearer token for `user` and the session it stands for (Invalid for a lifetime out of bounds)."""
    session = await repo.create_session(conn, user, token_ttl(settings, ttl_s), issued_by, issuer_id)
    return encode_token(settings, session)


def normal_login(login: str) -> str:
    return login.strip().lower()


async def set_credentials(
    conn: Connection, user: User, login: str | None, password: str, keep: uuid.UUID | None = None
) -> str:
    """Give a staff user a login (kept when None) and a new password; their other sessions end (all
    but `keep`). The login, as stored."""
    if user.role not in SIGN_IN_ROLES:
        raise Invalid(f"a {user.role} has no password: riders and drivers use tokens the service issues")
    login = normal_login(login) if login is not None else await repo.find_login(conn, user.id)
    if login is None:
        raise Invalid("this user has no login yet: give one")
    if not LOGIN.match(login):
        raise Invalid("a login is 1-100 of a-z, 0-9 and . _ @ - (starting with a letter or digit)")
    try:
        password_hash = await asyncio.to_thread(hash_password, password)
    except PasswordRefused as exc:
        raise Invalid(str(exc)) from exc
    taken = await repo.find_credentials(conn, login)
    if taken is not None and taken[0] != user.id:
        raise Conflict(f"the login {login!r} is taken")
    await repo.set_credentials(conn, user.id, login, password_hash)
    await repo.revoke_sessions(conn, user.id, "password_set", keep)
    return login


def _judge(found: tuple[Session, User] | None) -> Checked:
    if found is None:
        return Checked(verdict="gone")
    session, user = found
    verdict: Verdict = "valid"
    if session.role != user.role or session.revoked_reason == "role_changed":
        verdict = "role_changed"
    elif session.revoked_at is not None:
        verdict = "revoked"
    elif session.expires_at <= dt.datetime.now(dt.UTC):
        verdict = "expired"
    return Checked(verdict=verdict, session=session, user=user)


class Sessions:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[uuid.UUID, tuple[float, tuple[Session, User] | None]] = {}

    async def check(self, session_id: uuid.UUID) -> Checked:
        """What the session is now (seen at most SESSION_CACHE_S ago)."""
        now = time.monotonic()
        known = self._cache.get(session_id)
        if known is not None and now - known[0] < SESSION_CACHE_S:
            return _judge(known[1])
        async with self.db.pool.acquire() as conn:
            found = await repo.find_session(conn, session_id)
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[session_id] = (now, found)
        return _judge(found)

    def forget(self) -> None:
        """Drop the cache, so that a change made here holds in this process at once."""
        self._cache.clear()

    async def sign_in(self, settings: Settings, login: str, password: str, address: str) -> tuple[str, Session]:
        """A token for the staff user of `login` and `password`; WrongCredentials or TooManyAttempts.

        The attempt is counted before the password is checked, so that attempts in parallel count
        each other; an unknown login costs a hash like a known one and is limited the same way."""
        login, address = normal_login(login)[:100] or "-", address[:100] or "-"
        window, limit = settings.sign_in_window_s, settings.sign_in_max_failures
        async with self.db.pool.acquire() as conn:
            attempt, by_login, by_address = await repo.add_attempt(conn, login, address, window)
            if by_login > limit or by_address > limit * ADDRESS_FACTOR:
                await repo.drop_attempt(conn, attempt)
                waits = [await repo.freed_in_s(conn, "login", login, window, limit)] if by_login > limit else []
                if by_address > limit * ADDRESS_FACTOR:
                    waits.append(await repo.freed_in_s(conn, "address", address, window, limit * ADDRESS_FACTOR))
                raise TooManyAttempts(max(1, math.ceil(max(waits))))
            found = await repo.find_credentials(conn, login) if LOGIN.match(login) else None
        # No pool connection is held while hashing.
        if not await verify_password(found[1] if found else None, password) or found is None:
            raise WrongCredentials("wrong login or password")
        async with self.db.pool.acquire() as conn, conn.transaction():
            user = await find_user(conn, found[0])
            if user is None or user.role not in SIGN_IN_ROLES:
                raise WrongCredentials("wrong login or password")
            await repo.forget_attempts(conn, login)
            if needs_rehash(found[1]):
                await repo.set_password_hash(conn, user.id, await asyncio.to_thread(hash_password, password))
            session = await repo.create_session(conn, user, settings.token_ttl_s, "sign_in")
        return encode_token(settings, session), session

    async def list_active(self, user_id: uuid.UUID) -> list[Session]:
        """The user's sessions that still let a token in, newest first."""
        async with self.db.pool.acquire() as conn:
            return await repo.list_active_sessions(conn, user_id)

    async def end(self, user: User, session_id: uuid.UUID) -> Session | None:
        """Log out one of the user's own sessions: as it is now; None when it is not theirs or already over."""
        async with self.db.pool.acquire() as conn:
            ended = await repo.revoke_session(conn, session_id, "logout", user.id)
        self.forget()
        return ended

    async def socket_ticket(self, session_id: uuid.UUID) -> tuple[str, dt.datetime]:
        """A ticket for one WebSocket connection of this session within TICKET_TTL_S, and when it expires."""
        ticket = secrets.token_urlsafe(32)
        async with self.db.pool.acquire() as conn:
            await repo.add_ticket(conn, ticket, session_id, TICKET_TTL_S)
        return ticket, dt.datetime.now(dt.UTC) + dt.timedelta(seconds=TICKET_TTL_S)

    async def take_ticket(self, ticket: str) -> uuid.UUID | None:
        """The session of an unused, unexpired ticket; the ticket is used up."""
        async with self.db.pool.acquire() as conn:
            return await repo.take_ticket(conn, ticket)
