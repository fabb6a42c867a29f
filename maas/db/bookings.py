"""Bookings and their event history."""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg

from maas.db import Connection
from maas.model import BookingRecord

COLUMNS = (
    "id, rider_id, caller_name, caller_phone, created_by, origin_lat, origin_lon, destination_lat,"
    " destination_lon, seated, wheelchairs, earliest_pickup, latest_arrival, status, vehicle_id, shift_id,"
    " pickup_earliest, pickup_latest, dropoff_latest, created_at"
)
# The booking and its first event in one round trip.
INSERT = (
    f"WITH booked AS (INSERT INTO bookings ({COLUMNS}, idempotency_key) VALUES"
    " ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)"
    " RETURNING id, status, created_by)"
    " INSERT INTO booking_events (booking_id, status, actor) SELECT id, status, created_by FROM booked"
)
GET = f"SELECT {COLUMNS} FROM bookings WHERE id = $1"
BY_KEY = f"SELECT {COLUMNS} FROM bookings WHERE created_by = $1 AND idempotency_key = $2"
FOR_RIDER = f"SELECT {COLUMNS} FROM bookings WHERE rider_id = $1 ORDER BY created_at DESC LIMIT $2"
ALL = f"SELECT {COLUMNS} FROM bookings ORDER BY created_at DESC LIMIT $1"
ACTIVE = f"SELECT {COLUMNS} FROM bookings WHERE status IN ('confirmed', 'picked_up')"
SET_STATUS = "UPDATE bookings SET status = $2 WHERE id = $1"
SET_VEHICLE = "UPDATE bookings SET vehicle_id = $2, shift_id = $3 WHERE id = $1"
EVENT = "INSERT INTO booking_events (booking_id, status, actor, reason) VALUES ($1, $2, $3, $4)"
EVENTS = "SELECT status, actor, reason, at FROM booking_events WHERE booking_id = $1 ORDER BY id"


def _booking(r: asyncpg.Record) -> BookingRecord:
    return BookingRecord(**dict(r.items()))


async def insert_booking(conn: Connection, booking: BookingRecord, idempotency_key: str | None) -> None:
    b = booking
    await conn.execute(
        INSERT,
        b.id,
        b.rider_id,
        b.caller_name,
        b.caller_phone,
        b.created_by,
        b.origin_lat,
        b.origin_lon,
        b.destination_lat,
        b.destination_lon,
        b.seated,
        b.wheelchairs,
        b.earliest_pickup,
        b.latest_arrival,
        b.status,
        b.vehicle_id,
        b.shift_id,
        b.pickup_earliest,
        b.pickup_latest,
        b.dropoff_latest,
        b.created_at,
        idempotency_key,
    )


async def find_booking(conn: Connection, booking_id: uuid.UUID) -> BookingRecord | None:
    row = await conn.fetchrow(GET, booking_id)
    return None if row is None else _booking(row)


async def find_by_idempotency_key(conn: Connection, user_id: uuid.UUID, key: str) -> BookingRecord | None:
    row = await conn.fetchrow(BY_KEY, user_id, key)
    return None if row is None else _booking(row)


async def list_for_rider(conn: Connection, rider_id: uuid.UUID, limit: int = 100) -> list[BookingRecord]:
    return [_booking(r) for r in await conn.fetch(FOR_RIDER, rider_id, limit)]


async def list_all(conn: Connection, limit: int = 500) -> list[BookingRecord]:
    return [_booking(r) for r in await conn.fetch(ALL, limit)]


async def list_active(conn: Connection) -> list[BookingRecord]:
    return [_booking(r) for r in await conn.fetch(ACTIVE)]


async def set_status(
    conn: Connection, booking_id: uuid.UUID, status: str, actor: uuid.UUID | None, reason: str | None
) -> None:
    await conn.execute(SET_STATUS, booking_id, status)
    await conn.execute(EVENT, booking_id, status, actor, reason)


async def set_vehicle(conn: Connection, booking_id: uuid.UUID, vehicle_id: uuid.UUID, shift_id: uuid.UUID) -> None:
    await conn.execute(SET_VEHICLE, booking_id, vehicle_id, shift_id)


async def add_event(
    conn: Connection, booking_id: uuid.UUID, status: str, actor: uuid.UUID | None, reason: str | None
) -> None:
    await conn.execute(EVENT, booking_id, status, actor, reason)


async def list_events(conn: Connection, booking_id: uuid.UUID) -> list[dict[str, object]]:
    return [dict(r) for r in await conn.fetch(EVENTS, booking_id)]


def utc(epoch_s: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch_s, dt.UTC)
