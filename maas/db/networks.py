"""Network versions: built directories, which feed versions each holds, which one is active."""

from __future__ import annotations

import uuid

import asyncpg
import msgspec

from maas.db import Connection, returned
from maas.model import NetworkFeed, NetworkVersion

_COLUMNS = (
    "id, directory, status, feeds, osm, error, created_by, build_seconds, active, created_at, built_at,"
    " activated_at, pruned_at"
)
INSERT = (
    "INSERT INTO networks (directory, status, feeds, osm, created_by, built_at)"
    f" VALUES ($1, $2, $3::jsonb, $4, $5, CASE WHEN $2 = 'built' THEN now() END) RETURNING {_COLUMNS}"
)
GET = f"SELECT {_COLUMNS} FROM networks WHERE id = $1"
GET_BY_DIRECTORY = f"SELECT {_COLUMNS} FROM networks WHERE directory = $1 AND status = 'built' ORDER BY id DESC LIMIT 1"
GET_ACTIVE = f"SELECT {_COLUMNS} FROM networks WHERE active"
LIST = f"SELECT {_COLUMNS} FROM networks ORDER BY id DESC"
SET_DIRECTORY = "UPDATE networks SET directory = $2 WHERE id = $1"
FINISH = (
    "UPDATE networks SET status = $2, error = $3, build_seconds = $4,"
    f" built_at = CASE WHEN $2 = 'built' THEN now() END WHERE id = $1 RETURNING {_COLUMNS}"
)
DEACTIVATE = "UPDATE networks SET active = false WHERE active AND id <> $1"
ACTIVATE = f"UPDATE networks SET active = true, activated_at = now() WHERE id = $1 RETURNING {_COLUMNS}"
LIST_BUILT = f"SELECT {_COLUMNS} FROM networks WHERE status = 'built' ORDER BY id DESC"
# Never the active network, whatever the caller chose.
PRUNE = (
    "WITH pruned AS (UPDATE networks SET status = 'pruned', pruned_at = now()"
    f" WHERE id = ANY($1::int[]) AND status = 'built' AND NOT active RETURNING {_COLUMNS})"
    f" SELECT {_COLUMNS} FROM pruned ORDER BY id DESC"
)

_encode = msgspec.json.Encoder().encode
_decode_feeds = msgspec.json.Decoder(list[NetworkFeed]).decode


def _network(row: asyncpg.Record) -> NetworkVersion:
    return NetworkVersion(
        id=row["id"],
        directory=row["directory"],
        status=row["status"],
        feeds=_decode_feeds(row["feeds"]),
        osm=row["osm"],
        error=row["error"],
        created_by=row["created_by"],
        build_seconds=row["build_seconds"],
        active=row["active"],
        created_at=row["created_at"],
        built_at=row["built_at"],
        activated_at=row["activated_at"],
        pruned_at=row["pruned_at"],
    )


async def create_network(
    conn: Connection,
    *,
    directory: str,
    status: str,
    feeds: list[NetworkFeed],
    osm: str | None,
    created_by: uuid.UUID | None,
) -> NetworkVersion:
    return _network(returned(await conn.fetchrow(INSERT, directory, status, _encode(feeds).decode(), osm, created_by)))


async def set_directory(conn: Connection, network_id: int, directory: str) -> None:
    await conn.execute(SET_DIRECTORY, network_id, directory)


async def finish_network(
    conn: Connection, network_id: int, status: str, error: str | None, build_seconds: float
) -> NetworkVersion:
    return _network(returned(await conn.fetchrow(FINISH, network_id, status, error, build_seconds)))


async def find_network(conn: Connection, network_id: int) -> NetworkVersion | None:
    row = await conn.fetchrow(GET, network_id)
    return None if row is None else _network(row)


async def find_network_by_directory(conn: Connection, directory: str) -> NetworkVersion | None:
    row = await conn.fetchrow(GET_BY_DIRECTORY, directory)
    return None if row is None else _network(row)


async def find_active_network(conn: Connection) -> NetworkVersion | None:
    row = await conn.fetchrow(GET_ACTIVE)
    return None if row is None else _network(row)


async def list_networks(conn: Connection) -> list[NetworkVersion]:
    return [_network(r) for r in await conn.fetch(LIST)]


async def activate_network(conn: Connection, network_id: int) -> NetworkVersion:
    """Make `network_id` the one active network (call inside a transaction)."""
    await conn.execute(DEACTIVATE, network_id)
    return _network(returned(await conn.fetchrow(ACTIVATE, network_id)))


async def list_built_networks(conn: Connection) -> list[NetworkVersion]:
    """Networks whose directories are kept (status 'built'), newest first."""
    return [_network(r) for r in await conn.fetch(LIST_BUILT)]


async def mark_pruned(conn: Connection, network_ids: list[int]) -> list[NetworkVersion]:
    """Mark the built, inactive networks of `network_ids` 'pruned'; returns them newest first (never the active one)."""
    return [_network(r) for r in await conn.fetch(PRUNE, network_ids)]
