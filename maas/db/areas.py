"""The service definition (area and rules), one version per change."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from maas.db import Connection, returned
from maas.model import ServiceDefinition, ServiceRules

INSERT = (
    "INSERT INTO service_areas (name, geometry, rules, created_by) VALUES ($1, $2::jsonb, $3::jsonb, $4)"
    " RETURNING id, created_at"
)
CURRENT = "SELECT id, name, geometry, rules, created_at FROM service_areas ORDER BY id DESC LIMIT 1"
CURRENT_ID = "SELECT max(id) FROM service_areas"

_encode = msgspec.json.Encoder().encode
_rules = msgspec.json.Decoder(ServiceRules)


async def add_definition(
    conn: Connection, name: str, geometry: dict[str, Any], rules: ServiceRules, actor: uuid.UUID | None
) -> ServiceDefinition:
    row = returned(await conn.fetchrow(INSERT, name, _encode(geometry).decode(), _encode(rules).decode(), actor))
    return ServiceDefinition(version=row["id"], name=name, geometry=geometry, rules=rules, created_at=row["created_at"])


async def find_current_definition(conn: Connection) -> ServiceDefinition | None:
    row = await conn.fetchrow(CURRENT)
    if row is None:
        return None
    return ServiceDefinition(
        version=row["id"],
        name=row["name"],
        geometry=msgspec.json.decode(row["geometry"]),
        rules=_rules.decode(row["rules"]),
        created_at=row["created_at"],
    )


async def current_version(conn: Connection) -> int | None:
    version: int | None = await conn.fetchval(CURRENT_ID)
    return version
