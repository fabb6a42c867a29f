"""Drivers' arrivals at pickups, kept in the booking's event history (they change no status)."""

from __future__ import annotations

import datetime as dt
import uuid

from maas.db import Connection

ARRIVED = "INSERT INTO booking_events (booking_id, status, actor, reason, at) VALUES ($1, 'arrived', $2, NULL, $3)"
LAST_ARRIVAL = "SELECT max(at) FROM booking_events WHERE booking_id = $1 AND status = 'arrived'"


async def record_arrival(conn: Connection, booking_id: uuid.UUID, driver_id: uuid.UUID, at: dt.datetime) -> None:
    await conn.execute(ARRIVED, booking_id, driver_id, at)


async def find_arrival(conn: Connection, booking_id: uuid.UUID) -> dt.datetime | None:
    """When the driver last reported arriving for this booking's pickup."""
    at: dt.datetime | None = await conn.fetchval(LAST_ARRIVAL, booking_id)
    return at
