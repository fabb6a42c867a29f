"""Delay alerts of rides: the level last alerted per ride and stop (migration 0024)."""

from __future__ import annotations

import datetime as dt
import uuid

from maas.db import Connection

# One statement each, so that two processes handling pings of one vehicle at once alert once.
RAISE = (
    "INSERT INTO ride_delays (booking_id, stop, level, late_s, eta, planned_at) VALUES ($1, $2, $3, $4, $5, $6)"
    " ON CONFLICT (booking_id, stop) DO UPDATE SET level = excluded.level, late_s = excluded.late_s,"
    " eta = excluded.eta, planned_at = excluded.planned_at, updated_at = now()"
    " WHERE ride_delays.level < excluded.level"
    " RETURNING level"
)
CLEAR = (
    "UPDATE ride_delays SET level = 0, late_s = $3, eta = $4, planned_at = $5, updated_at = now()"
    " WHERE booking_id = $1 AND stop = $2 AND level > 0 RETURNING level"
)


async def raise_level(
    conn: Connection,
    booking_id: uuid.UUID,
    stop: str,
    level: int,
    late_s: int,
    eta: dt.datetime,
    planned_at: dt.datetime,
) -> bool:
    """Record `level` if it is higher than the one last alerted; whether it was."""
    return await conn.fetchval(RAISE, booking_id, stop, level, late_s, eta, planned_at) is not None


async def clear(
    conn: Connection, booking_id: uuid.UUID, stop: str, late_s: int, eta: dt.datetime, planned_at: dt.datetime
) -> bool:
    """Back on time: level 0 if an alert was out; whether one was."""
    return await conn.fetchval(CLEAR, booking_id, stop, late_s, eta, planned_at) is not None
