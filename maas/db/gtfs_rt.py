"""The latest GTFS-Realtime message of each feed and kind, and the versions that say which changed."""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg

from maas.db import Connection, returned
from maas.model import REALTIME_KINDS, RealtimeKind, StoredRealtime

_COLUMNS = "feed_id, kind, version, body, header_timestamp, entities, source, received_by, received_at"
STORE = (
    "INSERT INTO gtfs_rt_messages (feed_id, kind, body, header_timestamp, entities, source, received_by)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7)"
    " ON CONFLICT (feed_id, kind) DO UPDATE SET version = nextval('gtfs_rt_versions'), body = EXCLUDED.body,"
    " header_timestamp = EXCLUDED.header_timestamp, entities = EXCLUDED.entities, source = EXCLUDED.source,"
    " received_by = EXCLUDED.received_by, received_at = now()"
    f" RETURNING {_COLUMNS}"
)
VERSIONS = "SELECT feed_id, kind, version FROM gtfs_rt_messages"
GET_MANY = f"SELECT {_COLUMNS} FROM gtfs_rt_messages WHERE feed_id = ANY($1::text[]) AND kind = ANY($2::text[])"


def _kind(text: str) -> RealtimeKind:
    if text not in REALTIME_KINDS:  # the CHECK constraint of migration 0018 lists the same kinds
        raise ValueError(f"unknown GTFS-Realtime kind {text!r}")
    return text


def _stored(row: asyncpg.Record) -> StoredRealtime:
    return StoredRealtime(
        feed_id=row["feed_id"],
        kind=_kind(row["kind"]),
        version=row["version"],
        body=bytes(row["body"]),
        header_timestamp=row["header_timestamp"],
        entities=row["entities"],
        source=row["source"],
        received_by=row["received_by"],
        received_at=row["received_at"],
    )


async def store_message(
    conn: Connection,
    *,
    feed_id: str,
    kind: RealtimeKind,
    body: bytes,
    header_timestamp: dt.datetime | None,
    entities: int,
    source: str,
    received_by: uuid.UUID | None,
) -> StoredRealtime:
    """Replace the feed's message of `kind`; the row gets a new version."""
    row = await conn.fetchrow(STORE, feed_id, kind, body, header_timestamp, entities, source, received_by)
    return _stored(returned(row))


async def list_versions(conn: Connection) -> dict[tuple[str, RealtimeKind], int]:
    """The version of every stored message by (feed id, kind): one small query, no bodies."""
    return {(r["feed_id"], _kind(r["kind"])): r["version"] for r in await conn.fetch(VERSIONS)}


async def list_messages(conn: Connection, keys: list[tuple[str, RealtimeKind]]) -> list[StoredRealtime]:
    """The stored messages of the given (feed id, kind) pairs."""
    if not keys:
        return []
    rows = await conn.fetch(GET_MANY, sorted({f for f, _ in keys}), sorted({k for _, k in keys}))
    wanted = set(keys)
    return [m for m in map(_stored, rows) if (m.feed_id, m.kind) in wanted]
