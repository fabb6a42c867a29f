"""The on-demand service area, one version per change."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from maas.db import Connection, returned

INSERT = "INSERT INTO service_areas (name, geometry, created_by) VALUES ($1, $2::jsonb, $3) RETURNING id, created_at"
CURRENT = "SELECT id, name, geometry, created_at FROM service_areas ORDER BY id DESC LIMIT 1"
CURRENT_ID = "SELECT max(id) FROM service_areas"

_encode = msgspec.json.Encoder().encode


async def add_area(conn: Connection, name: str, geometry: dict[str, Any], actor: uuid.UUID | None) -> dict[str, Any]:
    row = returned(await conn.fetchrow(INSERT, name, _encode(geometry).decode(), actor))
    return {"version": row["id"], "name": name, "geometry": geometry, "created_at": row["created_at"]}


async def find_current_area(conn: Connection) -> dict[str, Any] | None:
    row = await conn.fetchrow(CURRENT)
    if row is None:
        return None
    return {
        "version": row["id"],
        "name": row["name"],
        "geometry": msgspec.json.decode(row["geometry"]),
        "created_at": row["created_at"],
    }


async def current_area_version(conn: Connection) -> int | None:
    version: int | None = await conn.fetchval(CURRENT_ID)
    return version
