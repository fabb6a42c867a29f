"""Bookings and their event history."""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg
import msgspec

from maas.db import Connection, locks, returned
from maas.db import fleet as fleet_repo
from maas.model import BookingRecord

COLUMNS = (
    "id, rider_id, caller_name, caller_phone, created_by, origin_lat, origin_lon, destination_lat,"
    " destination_lon, seated, wheelchairs, earliest_pickup, latest_arrival, status, vehicle_id, shift_id,"
    " pickup_earliest, pickup_latest, dropoff_latest, created_at, offer_id, request_hash"
)
# A booking is written only by maas_book (migrations 0012, 0015, 0023), together with its shift's plan.
BOOK = "SELECT outcome, version, changed, known FROM maas_book($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7)"
GET = f"SELECT {COLUMNS} FROM bookings WHERE id = $1"
BY_KEY = f"SELECT {COLUMNS} FROM bookings WHERE created_by = $1 AND idempotency_key = $2"
BY_OFFER = f"SELECT {COLUMNS} FROM bookings WHERE offer_id = $1"
FOR_RIDER = f"SELECT {COLUMNS} FROM bookings WHERE rider_id = $1 ORDER BY created_at DESC LIMIT $2"
ALL = f"SELECT {COLUMNS} FROM bookings ORDER BY created_at DESC LIMIT $1"
ACTIVE = f"SELECT {COLUMNS} FROM bookings WHERE status IN ('confirmed', 'picked_up')"
SET_STATUS = "UPDATE bookings SET status = $2 WHERE id = $1"
SET_VEHICLE = "UPDATE bookings SET vehicle_id = $2, shift_id = $3 WHERE id = $1"
SET_PROMISE = (
    "UPDATE bookings SET pickup_earliest = $2, pickup_latest = $3, dropoff_latest = $4, vehicle_id = $5, shift_id = $6"
    " WHERE id = $1"
)
# An event happened now unless its time is given (a driver's phone reports when it stopped).
EVENT = (
    "INSERT INTO booking_events (booking_id, status, actor, reason, at) VALUES ($1, $2, $3, $4, coalesce($5, now()))"
)

# The fleet's and the service area's versions with the booking a key made, in one statement and so one
# snapshot: a refusal decided on the plans of that fleet version knew that the key had booked nothing.
KEY_AND_VERSIONS = (
    f"SELECT v.fleet AS fleet_version, v.area AS area_version, b.* FROM ({fleet_repo.VERSIONS}) AS v"
    f" LEFT JOIN (SELECT {COLUMNS} FROM bookings WHERE created_by = $1 AND idempotency_key = $2) AS b ON true"
)

_encode = msgspec.json.Encoder().encode


class KeyAndVersions(msgspec.Struct, frozen=True, kw_only=True):
    known: BookingRecord | None  # the booking the key made
    fleet_version: int
    area_version: int | None


def _booking(r: asyncpg.Record) -> BookingRecord:
    return BookingRecord(**dict(r.items()))


class BookOutcome(msgspec.Struct, frozen=True, kw_only=True):
    outcome: str  # booked | replay | stale | area (see maas_book, migration 0015)
    version: int | None
    changed: list[uuid.UUID]
    known: uuid.UUID | None


async def book(
    conn: Connection,
    expected: int,
    area_version: int | None,
    booking: BookingRecord,
    stops: list[tuple[str, str]],
    idempotency_key: str | None,
) -> BookOutcome:
    """Store a booking and its shift's new plan in one round trip, if the copy it was planned on (fleet
    version `expected`) still holds for that shift and the service area is `area_version`."""
    assert booking.shift_id is not None
    row = returned(
        await conn.fetchrow(
            BOOK,
            expected,
            area_version,
            booking.shift_id,
            _encode([list(s) for s in stops]).decode(),
            _encode(booking).decode(),
            idempotency_key,
            locks.FLEET,
        )
    )
    return BookOutcome(
        outcome=row["outcome"], version=row["version"], changed=list(row["changed"] or []), known=row["known"]
    )


async def find_booking(conn: Connection, booking_id: uuid.UUID) -> BookingRecord | None:
    row = await conn.fetchrow(GET, booking_id)
    return None if row is None else _booking(row)


async def find_by_idempotency_key(conn: Connection, user_id: uuid.UUID, key: str) -> BookingRecord | None:
    row = await conn.fetchrow(BY_KEY, user_id, key)
    return None if row is None else _booking(row)


async def find_with_versions(conn: Connection, user_id: uuid.UUID, key: str | None) -> KeyAndVersions:
    """The booking `key` made for the user (None without a key) and the versions read at the same instant."""
    fields = dict(returned(await conn.fetchrow(KEY_AND_VERSIONS, user_id, key)).items())
    fleet_version, area_version = int(fields.pop("fleet_version")), fields.pop("area_version")
    known = None if fields["id"] is None else BookingRecord(**fields)
    return KeyAndVersions(known=known, fleet_version=fleet_version, area_version=area_version)


async def find_by_offer(conn: Connection, offer_id: uuid.UUID) -> BookingRecord | None:
    row = await conn.fetchrow(BY_OFFER, offer_id)
    return None if row is None else _booking(row)


async def list_for_rider(conn: Connection, rider_id: uuid.UUID, limit: int = 100) -> list[BookingRecord]:
    return [_booking(r) for r in await conn.fetch(FOR_RIDER, rider_id, limit)]


async def list_all(conn: Connection, limit: int = 500) -> list[BookingRecord]:
    return [_booking(r) for r in await conn.fetch(ALL, limit)]


async def list_active(conn: Connection) -> list[BookingRecord]:
    return [_booking(r) for r in await conn.fetch(ACTIVE)]


async def set_status(
    conn: Connection,
    booking_id: uuid.UUID,
    status: str,
    actor: uuid.UUID | None,
    reason: str | None,
    at: dt.datetime | None = None,
) -> None:
    """The booking's new status and its event (at `at`, default now)."""
    await conn.execute(SET_STATUS, booking_id, status)
    await conn.execute(EVENT, booking_id, status, actor, reason, at)


async def set_vehicle(conn: Connection, booking_id: uuid.UUID, vehicle_id: uuid.UUID, shift_id: uuid.UUID) -> None:
    await conn.execute(SET_VEHICLE, booking_id, vehicle_id, shift_id)


async def set_promise(conn: Connection, booking: BookingRecord, reason: str, actor: uuid.UUID | None) -> None:
    """A confirmed ride's new promise (and vehicle), with the reason as an event."""
    await conn.execute(
        SET_PROMISE,
        booking.id,
        booking.pickup_earliest,
        booking.pickup_latest,
        booking.dropoff_latest,
        booking.vehicle_id,
        booking.shift_id,
    )
    await conn.execute(EVENT, booking.id, booking.status, actor, reason, None)


async def add_event(
    conn: Connection, booking_id: uuid.UUID, status: str, actor: uuid.UUID | None, reason: str | None
) -> None:
    await conn.execute(EVENT, booking_id, status, actor, reason, None)


def utc(epoch_s: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch_s, dt.UTC)
