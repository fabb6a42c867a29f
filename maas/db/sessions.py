"""Sessions (one per bearer token), staff credentials, sign-in attempts and one-time socket tickets."""

from __future__ import annotations

import hashlib
import uuid
from typing import Literal

import asyncpg

from maas.db import Connection, returned
from maas.db.users import user_of
from maas.model import Issuer, RevokeReason, Session, User

_COLUMNS = (
    "s.id, s.user_id, s.role, s.issued_at, s.expires_at, s.issued_by, s.issuer_id, s.revoked_at, s.revoked_reason"
)
INSERT = (
    "INSERT INTO sessions (id, user_id, role, issued_at, expires_at, issued_by, issuer_id)"
    " VALUES ($1, $2, $3, now(), now() + make_interval(secs => $4), $5, $6)"
    f" RETURNING {_COLUMNS.replace('s.', '')}"
)
# Long expired sessions are of no use to anyone; they go when new ones are issued.
PRUNE = "DELETE FROM sessions WHERE expires_at < now() - interval '30 days'"
WITH_USER = (
    f"SELECT {_COLUMNS}, u.name, u.role AS user_role, u.phone, u.agency"
    " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1"
)
LIST_ACTIVE = (
    f"SELECT {_COLUMNS} FROM sessions s"
    " WHERE s.user_id = $1 AND s.revoked_at IS NULL AND s.expires_at > now() ORDER BY s.issued_at DESC"
)
REVOKE = (
    "UPDATE sessions SET revoked_at = now(), revoked_reason = $2"
    " WHERE id = $1 AND revoked_at IS NULL AND expires_at > now() AND ($3::uuid IS NULL OR user_id = $3)"
    f" RETURNING {_COLUMNS.replace('s.', '')}"
)
REVOKE_ALL = (
    "UPDATE sessions SET revoked_at = now(), revoked_reason = $2"
    " WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now() AND ($3::uuid IS NULL OR id <> $3)"
)

CREDENTIALS = "SELECT user_id, password_hash FROM credentials WHERE login = $1"
SET_CREDENTIALS = (
    "INSERT INTO credentials (user_id, login, password_hash) VALUES ($1, $2, $3)"
    " ON CONFLICT (user_id) DO UPDATE SET login = EXCLUDED.login, password_hash = EXCLUDED.password_hash,"
    " updated_at = now()"
)
LOGIN_OF = "SELECT login FROM credentials WHERE user_id = $1"
SET_HASH = "UPDATE credentials SET password_hash = $2, updated_at = now() WHERE user_id = $1"

PRUNE_ATTEMPTS = "DELETE FROM sign_in_attempts WHERE at < now() - make_interval(secs => $1)"
ADD_ATTEMPT = "INSERT INTO sign_in_attempts (login, address) VALUES ($1, $2) RETURNING id"
COUNT_ATTEMPTS = (
    "SELECT count(*) FILTER (WHERE login = $1) AS by_login, count(*) FILTER (WHERE address = $2) AS by_address"
    " FROM sign_in_attempts WHERE (login = $1 OR address = $2) AND at > now() - make_interval(secs => $3)"
)
# When the `limit`-th newest attempt of a login (or of an address) leaves the window, another is allowed.
_FREED_IN = (
    "SELECT extract(epoch FROM at + make_interval(secs => $2) - now())::float8 FROM sign_in_attempts"
    " WHERE {key} = $1 AND at > now() - make_interval(secs => $2) ORDER BY at DESC OFFSET $3 - 1 LIMIT 1"
)
FREED_IN = {"login": _FREED_IN.format(key="login"), "address": _FREED_IN.format(key="address")}
DROP_ATTEMPT = "DELETE FROM sign_in_attempts WHERE id = $1"
FORGET_LOGIN = "DELETE FROM sign_in_attempts WHERE login = $1"

ADD_TICKET = (
    "INSERT INTO socket_tickets (hash, session_id, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))"
)
PRUNE_TICKETS = "DELETE FROM socket_tickets WHERE expires_at < now()"
# Taking a ticket deletes it: of two connections racing with one ticket, one gets the row.
TAKE_TICKET = "DELETE FROM socket_tickets WHERE hash = $1 RETURNING session_id, expires_at > now() AS fresh"


def _session(row: asyncpg.Record) -> Session:
    return Session(
        id=row["id"],
        user_id=row["user_id"],
        role=row["role"],
        issued_at=row["issued_at"],
        expires_at=row["expires_at"],
        issued_by=row["issued_by"],
        issuer_id=row["issuer_id"],
        revoked_at=row["revoked_at"],
        revoked_reason=row["revoked_reason"],
    )


async def create_session(
    conn: Connection, user: User, ttl_s: int, issued_by: Issuer, issuer_id: uuid.UUID | None = None
) -> Session:
    await conn.execute(PRUNE)
    row = await conn.fetchrow(INSERT, uuid.uuid4(), user.id, user.role, float(ttl_s), issued_by, issuer_id)
    return _session(returned(row))


async def find_session(conn: Connection, session_id: uuid.UUID) -> tuple[Session, User] | None:
    """The session and its user as they are now; None when either is gone."""
    row = await conn.fetchrow(WITH_USER, session_id)
    if row is None:
        return None
    user = user_of(
        {
            "id": row["user_id"],
            "name": row["name"],
            "role": row["user_role"],
            "phone": row["phone"],
            "agency": row["agency"],
        }
    )
    return _session(row), user


async def list_active_sessions(conn: Connection, user_id: uuid.UUID) -> list[Session]:
    return [_session(r) for r in await conn.fetch(LIST_ACTIVE, user_id)]


async def revoke_session(
    conn: Connection, session_id: uuid.UUID, reason: RevokeReason, user_id: uuid.UUID | None = None
) -> Session | None:
    """End one live session (of `user_id`, when given): as it is now; None when there was no such session."""
    row = await conn.fetchrow(REVOKE, session_id, reason, user_id)
    return None if row is None else _session(row)


async def revoke_sessions(
    conn: Connection, user_id: uuid.UUID, reason: RevokeReason, keep: uuid.UUID | None = None
) -> int:
    """End every live session of a user but `keep`; how many were ended."""
    status = await conn.execute(REVOKE_ALL, user_id, reason, keep)
    return int(status.rsplit(" ", 1)[1])


async def find_credentials(conn: Connection, login: str) -> tuple[uuid.UUID, str] | None:
    row = await conn.fetchrow(CREDENTIALS, login)
    return None if row is None else (row["user_id"], row["password_hash"])


async def find_login(conn: Connection, user_id: uuid.UUID) -> str | None:
    login: str | None = await conn.fetchval(LOGIN_OF, user_id)
    return login


async def set_credentials(conn: Connection, user_id: uuid.UUID, login: str, password_hash: str) -> None:
    await conn.execute(SET_CREDENTIALS, user_id, login, password_hash)


async def set_password_hash(conn: Connection, user_id: uuid.UUID, password_hash: str) -> None:
    await conn.execute(SET_HASH, user_id, password_hash)


async def add_attempt(conn: Connection, login: str, address: str, window_s: int) -> tuple[int, int, int]:
    """Record a sign-in attempt (committed at once, so other processes count it); its id and the
    attempts of its login and of its address in the window, itself included."""
    await conn.execute(PRUNE_ATTEMPTS, float(window_s))
    attempt = await conn.fetchval(ADD_ATTEMPT, login, address)
    counts = returned(await conn.fetchrow(COUNT_ATTEMPTS, login, address, float(window_s)))
    return attempt, counts["by_login"], counts["by_address"]


async def freed_in_s(
    conn: Connection, key: Literal["login", "address"], value: str, window_s: int, limit: int
) -> float:
    """Seconds until fewer than `limit` attempts of this login (or address) are in the window."""
    seconds = await conn.fetchval(FREED_IN[key], value, float(window_s), limit)
    return float(seconds or 0.0)


async def drop_attempt(conn: Connection, attempt: int) -> None:
    await conn.execute(DROP_ATTEMPT, attempt)


async def forget_attempts(conn: Connection, login: str) -> None:
    await conn.execute(FORGET_LOGIN, login)


def ticket_hash(ticket: str) -> bytes:
    return hashlib.sha256(ticket.encode()).digest()


async def add_ticket(conn: Connection, ticket: str, session_id: uuid.UUID, ttl_s: int) -> None:
    await conn.execute(PRUNE_TICKETS)
    await conn.execute(ADD_TICKET, ticket_hash(ticket), session_id, float(ttl_s))


async def take_ticket(conn: Connection, ticket: str) -> uuid.UUID | None:
    """The session of a ticket not yet used nor expired; the ticket cannot be used again."""
    row = await conn.fetchrow(TAKE_TICKET, ticket_hash(ticket))
    return row["session_id"] if row is not None and row["fresh"] else None
