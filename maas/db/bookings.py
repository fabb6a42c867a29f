"""Bookings and their event history."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

import asyncpg
import msgspec

from maas.db import Connection, like_pattern, locks, matched, returned
from maas.db import fleet as fleet_repo
from maas.model import BookingRecord, BookingStatus

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

BookingSort = Literal["pickup", "-pickup", "created", "-created", "status", "-status", "vehicle", "-vehicle"]
ConnectionFilter = Literal["any", "none", "first_mile", "last_mile"]
# A booking's statuses in the order of its life, for sorting by status.
LIFECYCLE = "ARRAY['confirmed', 'picked_up', 'completed', 'no_show', 'cancelled']"
_ORDER: dict[BookingSort, str] = {
    "pickup": "b.pickup_earliest, b.id",
    "-pickup": "b.pickup_earliest DESC, b.id DESC",
    "created": "b.created_at, b.id",
    "-created": "b.created_at DESC, b.id DESC",
    "status": f"array_position({LIFECYCLE}, b.status), b.pickup_earliest, b.id",
    "-status": f"array_position({LIFECYCLE}, b.status) DESC, b.pickup_earliest, b.id",
    "vehicle": "v.name NULLS LAST, b.pickup_earliest, b.id",
    "-vehicle": "v.name DESC NULLS LAST, b.pickup_earliest, b.id",
}
# The bookings a search matches: $1 a rider's own (None: everyone's), $2 statuses, $3 a LIKE pattern of
# names, $4 of an id prefix, $5 the digits of a phone number ('' none), $6 the vehicle, $7/$8 the pickup
# window overlaps [from, to], $9 the connection filter. Every filter is off when its parameter is NULL.
_MATCHING = """
FROM bookings b
LEFT JOIN users u ON u.id = b.rider_id
LEFT JOIN vehicles v ON v.id = b.vehicle_id
LEFT JOIN journey_legs l ON l.booking_id = b.id
WHERE ($1::uuid IS NULL OR b.rider_id = $1)
  AND ($2::text[] IS NULL OR b.status = ANY($2))
  AND ($3::text IS NULL OR b.caller_name ILIKE $3 ESCAPE '\\' OR u.name ILIKE $3 ESCAPE '\\'
       OR b.id::text LIKE $4 ESCAPE '\\'
       OR ($5::text <> '' AND regexp_replace(b.caller_phone, '[^0-9]', '', 'g') LIKE '%' || $5 || '%'))
  AND ($6::uuid IS NULL OR b.vehicle_id = $6)
  AND ($7::timestamptz IS NULL OR b.pickup_latest >= $7)
  AND ($8::timestamptz IS NULL OR b.pickup_earliest <= $8)
  AND ($9::text IS NULL OR CASE $9
        WHEN 'any' THEN coalesce(l.connection_kind IN ('first_mile', 'last_mile'), false)
        WHEN 'none' THEN coalesce(l.connection_kind NOT IN ('first_mile', 'last_mile'), true)
        ELSE coalesce(l.connection_kind = $9, false) END)
"""
# What a dispatcher's table shows besides the booking: the rider's and the vehicle's names, and the
# train or bus its journey ties it to, named as the booked itinerary names it (only the page's rows).
_LISTED = f"""
SELECT {", ".join("b." + c.strip() for c in COLUMNS.split(","))},
       u.name AS rider_name, v.name AS vehicle_name, l.journey_id, l.connection_kind, l.connection_stop,
       l.connection_trip, l.connection_at, l.change_s, c.stop_name, c.route_name
FROM bookings b
LEFT JOIN users u ON u.id = b.rider_id
LEFT JOIN vehicles v ON v.id = b.vehicle_id
LEFT JOIN journey_legs l ON l.booking_id = b.id
LEFT JOIN journeys j ON j.id = l.journey_id
LEFT JOIN LATERAL (
    SELECT t->>'route_name' AS route_name,
           CASE l.connection_kind WHEN 'first_mile' THEN t->'from'->>'name' ELSE t->'to'->>'name' END AS stop_name
    FROM jsonb_array_elements(j.itinerary->'legs') AS t
    WHERE t->>'trip' = l.connection_trip LIMIT 1
) c ON true
"""
SEARCH: dict[BookingSort, str] = {
    sort: f"""
WITH page AS (
    SELECT b.id, count(*) OVER () AS total, row_number() OVER (ORDER BY {order}) AS n
    {_MATCHING}
    ORDER BY {order} LIMIT $10 OFFSET $11
)
SELECT page.total, listed.* FROM page JOIN ({_LISTED}) AS listed ON listed.id = page.id ORDER BY page.n
"""
    for sort, order in _ORDER.items()
}
COUNT = f"SELECT count(*) {_MATCHING}"
LISTED = f"{_LISTED} WHERE b.id = $1"
ON_SHIFTS = f"{_LISTED} WHERE b.shift_id = ANY($1::uuid[])"


class KeyAndVersions(msgspec.Struct, frozen=True, kw_only=True):
    known: BookingRecord | None  # the booking the key made
    fleet_version: int
    area_version: int | None


def _booking(r: asyncpg.Record) -> BookingRecord:
    return BookingRecord(**dict(r.items()))


class BookingSearch(msgspec.Struct, frozen=True, kw_only=True):
    """What GET /bookings asks for; None leaves a filter off."""

    rider_id: uuid.UUID | None = None  # only this rider's bookings
    statuses: list[BookingStatus] | None = None
    q: str | None = None  # a caller's or rider's name, a phone number, or the start of a booking id
    vehicle_id: uuid.UUID | None = None
    after: dt.datetime | None = None  # the pickup window ends at or after
    before: dt.datetime | None = None  # and begins at or before
    connection: ConnectionFilter | None = None
    sort: BookingSort = "pickup"
    limit: int = 100
    offset: int = 0


class BookedConnection(msgspec.Struct, frozen=True, kw_only=True):
    """The train or bus a booking's journey ties it to, as the journey's leg stores it."""

    kind: str  # first_mile | last_mile | direct
    stop: str | None  # the station's namespaced id
    stop_name: str | None
    trip: str | None
    route_name: str | None
    at: dt.datetime | None
    change_s: int | None


class ListedBooking(msgspec.Struct, frozen=True, kw_only=True):
    """A booking with what a dispatcher's table shows of it."""

    booking: BookingRecord
    rider_name: str | None
    vehicle_name: str | None
    journey_id: uuid.UUID | None
    connection: BookedConnection | None


class BookingPage(msgspec.Struct, frozen=True, kw_only=True):
    bookings: list[ListedBooking]
    total: int  # every booking the search matches


_BOOKING_FIELDS = frozenset(f.strip() for f in COLUMNS.split(","))


def _listed(r: asyncpg.Record) -> ListedBooking:
    kind = r["connection_kind"]
    connection = None
    if kind is not None:
        connection = BookedConnection(
            kind=kind,
            stop=r["connection_stop"],
            stop_name=r["stop_name"],
            trip=r["connection_trip"],
            route_name=r["route_name"],
            at=r["connection_at"],
            change_s=r["change_s"],
        )
    return ListedBooking(
        booking=BookingRecord(**{k: v for k, v in r.items() if k in _BOOKING_FIELDS}),
        rider_name=r["rider_name"],
        vehicle_name=r["vehicle_name"],
        journey_id=r["journey_id"],
        connection=connection,
    )


async def search(conn: Connection, s: BookingSearch) -> BookingPage:
    """One page of the bookings the search matches, in its order, and how many match in all."""
    q = s.q.strip() if s.q is not None else None
    names = f"%{like_pattern(q)}%" if q else None
    prefix = f"{like_pattern(q.lower())}%" if q else None
    digits = "".join(ch for ch in q if ch.isdigit()) if q else ""
    args = (s.rider_id, s.statuses, names, prefix, digits, s.vehicle_id, s.after, s.before, s.connection)
    rows = await conn.fetch(SEARCH[s.sort], *args, s.limit, s.offset)
    total = await matched(conn, rows, COUNT, args, s.offset)
    return BookingPage(bookings=[_listed(r) for r in rows], total=total)


async def find_listed(conn: Connection, booking_id: uuid.UUID) -> ListedBooking | None:
    row = await conn.fetchrow(LISTED, booking_id)
    return None if row is None else _listed(row)


async def list_on_shifts(conn: Connection, shift_ids: list[uuid.UUID]) -> list[ListedBooking]:
    """Every booking ever planned on these shifts, with its names (served, cancelled and waiting ones)."""
    return [_listed(r) for r in await conn.fetch(ON_SHIFTS, shift_ids)]


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
