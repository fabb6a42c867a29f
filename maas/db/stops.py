"""Drivers' stop events in the booking's event history: arrivals at pickups (they change no status)
and when the driver said a ride's status changed."""

from __future__ import annotations

import datetime as dt
import uuid

from maas.db import Connection

ARRIVED = "INSERT INTO booking_events (booking_id, status, actor, reason, at) VALUES ($1, 'arrived', $2, $3, $4)"
# When each of these bookings was picked up, reported a no-show, and dropped off (its status 'completed').
SERVED = (
    "SELECT booking_id, status, max(at) AS at FROM booking_events"
    " WHERE booking_id = ANY($1::uuid[]) AND status IN ('picked_up', 'no_show', 'completed')"
    " GROUP BY booking_id, status"
)
LAST_EVENT = "SELECT max(at) FROM booking_events WHERE booking_id = $1 AND status = $2"


async def record_arrival(
    conn: Connection, booking_id: uuid.UUID, driver_id: uuid.UUID, at: dt.datetime, note: str | None = None
) -> None:
    """An arrival at the booking's pickup; `note` says what could not be checked."""
    await conn.execute(ARRIVED, booking_id, driver_id, note, at)


async def find_arrival(conn: Connection, booking_id: uuid.UUID) -> dt.datetime | None:
    """When the driver last reported arriving for this booking's pickup."""
    return await find_last(conn, booking_id, "arrived")


async def find_last(conn: Connection, booking_id: uuid.UUID, status: str) -> dt.datetime | None:
    """When the booking's last event of `status` happened."""
    at: dt.datetime | None = await conn.fetchval(LAST_EVENT, booking_id, status)
    return at


async def list_served(conn: Connection, booking_ids: list[uuid.UUID]) -> dict[tuple[uuid.UUID, str], dt.datetime]:
    """When the driver reported each booking picked_up, no_show or completed (dropped off), by (booking, status)."""
    return {(r["booking_id"], r["status"]): r["at"] for r in await conn.fetch(SERVED, booking_ids)}
