"""Vehicle positions: the full trail (bulk-copied) and the latest one per vehicle."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

import asyncpg
import msgspec

from maas.db import Connection

COLUMNS = ("vehicle_id", "at", "lat", "lon", "speed_mps", "heading_deg")
# A batch may arrive after a newer one (a phone catching up): the latest row only moves forward.
UPSERT_LATEST = (
    "INSERT INTO latest_positions (vehicle_id, at, lat, lon, speed_mps, heading_deg)"
    " VALUES ($1, $2, $3, $4, $5, $6)"
    " ON CONFLICT (vehicle_id) DO UPDATE SET at = excluded.at, lat = excluded.lat, lon = excluded.lon,"
    " speed_mps = excluded.speed_mps, heading_deg = excluded.heading_deg"
    " WHERE latest_positions.at <= excluded.at"
)
LATEST = "SELECT vehicle_id, at, lat, lon, speed_mps, heading_deg FROM latest_positions"
# The trail, not the latest row: a stop event reported late is checked against where the vehicle was then.
AT_OR_BEFORE = (
    "SELECT vehicle_id, at, lat, lon, speed_mps, heading_deg FROM positions"
    " WHERE vehicle_id = $1 AND at <= $2 ORDER BY at DESC LIMIT 1"
)


class Position(msgspec.Struct, frozen=True, kw_only=True):
    vehicle_id: uuid.UUID
    at: dt.datetime
    lat: float
    lon: float
    speed_mps: float | None = None
    heading_deg: float | None = None


def _position(r: asyncpg.Record) -> Position:
    return Position(
        vehicle_id=r["vehicle_id"],
        at=r["at"],
        lat=r["lat"],
        lon=r["lon"],
        speed_mps=r["speed_mps"],
        heading_deg=r["heading_deg"],
    )


async def insert_positions(conn: Connection, positions: Sequence[Position]) -> None:
    """Append to the trail with COPY and move each vehicle's latest position forward."""
    await conn.copy_records_to_table(
        "positions",
        columns=COLUMNS,
        records=[(p.vehicle_id, p.at, p.lat, p.lon, p.speed_mps, p.heading_deg) for p in positions],
    )
    newest: dict[uuid.UUID, Position] = {}
    for p in positions:
        known = newest.get(p.vehicle_id)
        if known is None or p.at >= known.at:
            newest[p.vehicle_id] = p
    await conn.executemany(
        UPSERT_LATEST, [(p.vehicle_id, p.at, p.lat, p.lon, p.speed_mps, p.heading_deg) for p in newest.values()]
    )


async def list_latest(conn: Connection) -> list[Position]:
    return [_position(r) for r in await conn.fetch(LATEST)]


async def find_position_before(conn: Connection, vehicle_id: uuid.UUID, at: dt.datetime) -> Position | None:
    """The vehicle's last GPS fix at or before `at`, if any."""
    row = await conn.fetchrow(AT_OR_BEFORE, vehicle_id, at)
    return None if row is None else _position(row)
