"""GTFS feed versions uploaded by agencies: the zip, its validation report, its publishing status."""

from __future__ import annotations

import uuid

import asyncpg
import msgspec

from feeds.model import ValidationReport
from maas.db import Connection, locks, returned
from maas.model import FeedStatus, FeedVersion

_COLUMNS = "id, agency, feed_id, uploaded_by, sha256, size_bytes, report, status, error, created_at, published_at"
INSERT = (
    "INSERT INTO feed_versions (id, agency, feed_id, uploaded_by, sha256, size_bytes, content, report, status)"
    f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9) RETURNING {_COLUMNS}"
)
GET = f"SELECT {_COLUMNS} FROM feed_versions WHERE id = $1"
GET_FOR_UPDATE = f"SELECT {_COLUMNS} FROM feed_versions WHERE id = $1 FOR UPDATE"
LIST_ALL = f"SELECT {_COLUMNS} FROM feed_versions ORDER BY created_at DESC, id"
LIST_OF_AGENCY = f"SELECT {_COLUMNS} FROM feed_versions WHERE agency = $1 ORDER BY created_at DESC, id"
LIST_PUBLISHED = f"SELECT {_COLUMNS} FROM feed_versions WHERE status = 'published' ORDER BY agency, feed_id"
FEED_OWNER = "SELECT agency FROM feed_owners WHERE feed_id = $1"
CLAIM_FEED = "INSERT INTO feed_owners (feed_id, agency) VALUES ($1, $2)"
CONTENT = "SELECT content FROM feed_versions WHERE id = $1"
SET_STATUS = f"UPDATE feed_versions SET status = $2, error = $3 WHERE id = $1 RETURNING {_COLUMNS}"
# What the active network contains is 'published'; what it no longer contains but did is 'retired'.
RETIRE_OTHERS = "UPDATE feed_versions SET status = 'retired' WHERE status = 'published' AND NOT (id = ANY($1::uuid[]))"
PUBLISH = (
    "UPDATE feed_versions SET status = 'published', error = NULL, published_at = now()"
    " WHERE id = ANY($1::uuid[]) AND status <> 'published'"
)

DELETE = "DELETE FROM feed_versions WHERE id = $1"
# What an agency's versions take in the database (octet_length reads the stored size, not the content).
STORED_BYTES = "SELECT coalesce(sum(octet_length(content)), 0) FROM feed_versions WHERE agency = $1"
LOCK_STORAGE = "SELECT pg_advisory_xact_lock($1, hashtext($2))"
# What a rejected upload keeps of its content, for diagnosis (migration 0025's CHECK).
REJECTED_KEPT_BYTES = 64 * 1024

_encode = msgspec.json.Encoder().encode
_decode_report = msgspec.json.Decoder(ValidationReport).decode


def _version(row: asyncpg.Record) -> FeedVersion:
    return FeedVersion(
        id=row["id"],
        agency=row["agency"],
        feed_id=row["feed_id"],
        uploaded_by=row["uploaded_by"],
        sha256=row["sha256"],
        size_bytes=row["size_bytes"],
        report=_decode_report(row["report"]),
        status=row["status"],
        error=row["error"],
        created_at=row["created_at"],
        published_at=row["published_at"],
    )


async def create_version(
    conn: Connection,
    *,
    agency: str,
    feed_id: str,
    uploaded_by: uuid.UUID,
    sha256: str,
    content: bytes,
    report: ValidationReport,
    status: FeedStatus,
) -> FeedVersion:
    """Store one upload; of a rejected one only its first REJECTED_KEPT_BYTES (size_bytes is the upload's)."""
    stored = content[:REJECTED_KEPT_BYTES] if status == "rejected" else content
    row = await conn.fetchrow(
        INSERT,
        uuid.uuid4(),
        agency,
        feed_id,
        uploaded_by,
        sha256,
        len(content),
        stored,
        _encode(report).decode(),
        status,
    )
    return _version(returned(row))


async def find_version(conn: Connection, version_id: uuid.UUID, *, for_update: bool = False) -> FeedVersion | None:
    row = await conn.fetchrow(GET_FOR_UPDATE if for_update else GET, version_id)
    return None if row is None else _version(row)


async def list_versions(conn: Connection, agency: str | None = None) -> list[FeedVersion]:
    """Every version, newest first; only one agency's when `agency` is given."""
    rows = await conn.fetch(LIST_ALL) if agency is None else await conn.fetch(LIST_OF_AGENCY, agency)
    return [_version(r) for r in rows]


async def list_published(conn: Connection) -> list[FeedVersion]:
    return [_version(r) for r in await conn.fetch(LIST_PUBLISHED)]


async def find_owner(conn: Connection, feed_id: str) -> str | None:
    """The agency that uploads under `feed_id`, if any does."""
    owner: str | None = await conn.fetchval(FEED_OWNER, feed_id)
    return owner


async def claim_feed(conn: Connection, feed_id: str, agency: str) -> None:
    """Make `agency` the owner of a new feed id; asyncpg.UniqueViolationError when it has one."""
    await conn.execute(CLAIM_FEED, feed_id, agency)


async def get_content(conn: Connection, version_id: uuid.UUID) -> bytes:
    content = await conn.fetchval(CONTENT, version_id)
    if content is None:
        raise LookupError(f"no feed version {version_id}")
    return bytes(content)


async def set_status(
    conn: Connection, version_id: uuid.UUID, status: FeedStatus, error: str | None = None
) -> FeedVersion:
    return _version(returned(await conn.fetchrow(SET_STATUS, version_id, status, error)))


async def mark_published(conn: Connection, version_ids: list[uuid.UUID]) -> None:
    """Make exactly `version_ids` the published versions (the contents of the network just activated)."""
    await conn.execute(RETIRE_OTHERS, version_ids)
    await conn.execute(PUBLISH, version_ids)


async def lock_storage(conn: Connection, agency: str) -> None:
    """Serialise uploads of `agency` until the transaction ends, so that two cannot both fit its quota."""
    await conn.execute(LOCK_STORAGE, locks.FEED_STORAGE, agency)


async def stored_bytes(conn: Connection, agency: str) -> int:
    """Bytes the feed versions of `agency` take."""
    used: int = await conn.fetchval(STORED_BYTES, agency)
    return used


async def delete_version(conn: Connection, version_id: uuid.UUID) -> None:
    await conn.execute(DELETE, version_id)
