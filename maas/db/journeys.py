"""Itineraries shown to riders (until their offers expire) and journeys booked from them."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

import asyncpg
import msgspec

from maas.db import Connection, like_pattern, matched
from maas.model import ConnectionState, JourneyEvent, JourneyLegRecord, JourneyRecord, JourneyStatus

SAVE_ITINERARIES = """
INSERT INTO itineraries (id, owner_id, network_id, service_version, expires_at, request, itinerary, rides)
SELECT i.id, $1, $2, $3, $4, $5::jsonb, i.itinerary::jsonb, i.rides::jsonb
FROM unnest($6::uuid[], $7::text[], $8::text[]) AS i (id, itinerary, rides)
"""
GET_ITINERARY = (
    "SELECT id, owner_id, network_id, service_version, created_at, expires_at, request::text, itinerary::text,"
    " rides::text FROM itineraries WHERE id = $1"
)
FORGET_ITINERARIES = "DELETE FROM itineraries WHERE expires_at < $1"

JOURNEY_COLUMNS = (
    "id, rider_id, created_by, itinerary_id, status, departure, arrival, itinerary::text AS itinerary, created_at,"
    " caller_name, caller_phone"
)
INSERT_JOURNEY = """
INSERT INTO journeys (id, rider_id, created_by, itinerary_id, status, departure, arrival, itinerary, idempotency_key,
                      caller_name, caller_phone)
VALUES ($1, $2, $3, $4, 'confirmed', $5, $6, $7::jsonb, $8, $9, $10) RETURNING created_at
"""
INSERT_LEG = """
INSERT INTO journey_legs (journey_id, leg, mode, booking_id, connection_kind, connection_stop, connection_trip,
                          connection_at, change_s)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
"""
LEG_COLUMNS = (
    "journey_id, leg, mode, booking_id, connection_kind, connection_stop, connection_trip, connection_at, change_s,"
    " connection_expected_at, connection_state"
)
GET_JOURNEY = f"SELECT {JOURNEY_COLUMNS} FROM journeys WHERE id = $1"
BY_KEY = f"SELECT {JOURNEY_COLUMNS} FROM journeys WHERE created_by = $1 AND idempotency_key = $2"
BY_ITINERARY = f"SELECT {JOURNEY_COLUMNS} FROM journeys WHERE itinerary_id = $1 AND status <> 'cancelled'"
LEGS = f"SELECT {LEG_COLUMNS} FROM journey_legs WHERE journey_id = $1 ORDER BY leg"
OF_BOOKING = f"SELECT {LEG_COLUMNS} FROM journey_legs WHERE booking_id = $1"
ON_TRIP = f"SELECT {LEG_COLUMNS} FROM journey_legs WHERE connection_trip = $1"
SET_STATUS = "UPDATE journeys SET status = $2 WHERE id = $1"
# Rides waiting for their pickup whose connection is a trip, around now.
PROTECTED = f"""
SELECT {", ".join("l." + c.strip() for c in LEG_COLUMNS.split(","))}
FROM journey_legs l JOIN journeys j ON j.id = l.journey_id JOIN bookings b ON b.id = l.booking_id
WHERE l.connection_kind IN ('first_mile', 'last_mile') AND l.connection_trip IS NOT NULL
  AND j.status IN ('confirmed', 'at_risk') AND b.status = 'confirmed'
  AND l.connection_at BETWEEN $1 AND $2
ORDER BY l.connection_at
"""
SET_CONNECTION = (
    "UPDATE journey_legs SET connection_expected_at = $3, connection_state = $4 WHERE journey_id = $1 AND leg = $2"
)
GET_LEG = f"SELECT {LEG_COLUMNS} FROM journey_legs WHERE journey_id = $1 AND leg = $2"
EVENT = "INSERT INTO journey_events (journey_id, kind, detail, actor) VALUES ($1, $2, $3, $4)"
EVENTS = "SELECT at, kind, detail, actor FROM journey_events WHERE journey_id = $1 ORDER BY id"


JourneySort = Literal["departure", "-departure", "created", "-created"]
_ORDER: dict[JourneySort, str] = {
    "departure": "j.departure, j.id",
    "-departure": "j.departure DESC, j.id DESC",
    "created": "j.created_at, j.id",
    "-created": "j.created_at DESC, j.id DESC",
}
# The journeys a search matches: $1 a rider's own (None: everyone's), $2 statuses, $3 a LIKE pattern of
# the rider's or phone caller's name, $4 of an id prefix. Every filter is off when its parameter is NULL.
# A phone caller's journey has no rider: the join keeps it.
_MATCHING = """
FROM journeys j LEFT JOIN users u ON u.id = j.rider_id
WHERE ($1::uuid IS NULL OR j.rider_id = $1)
  AND ($2::text[] IS NULL OR j.status = ANY($2))
  AND ($3::text IS NULL OR u.name ILIKE $3 ESCAPE '\\' OR j.caller_name ILIKE $3 ESCAPE '\\'
       OR j.id::text LIKE $4 ESCAPE '\\')
"""
SEARCH: dict[JourneySort, str] = {
    sort: f"SELECT {', '.join('j.' + c.strip() for c in JOURNEY_COLUMNS.split(','))}, count(*) OVER () AS total"
    f" {_MATCHING} ORDER BY {order} LIMIT $5 OFFSET $6"
    for sort, order in _ORDER.items()
}
COUNT = f"SELECT count(*) {_MATCHING}"


class JourneySearch(msgspec.Struct, frozen=True, kw_only=True):
    """What GET /journeys asks for; None leaves a filter off."""

    rider_id: uuid.UUID | None = None
    statuses: list[JourneyStatus] | None = None
    q: str | None = None  # the rider's name or the start of a journey id
    sort: JourneySort = "-created"
    limit: int = 100
    offset: int = 0


class JourneyPage(msgspec.Struct, frozen=True, kw_only=True):
    journeys: list[JourneyRecord]
    total: int


async def search(conn: Connection, s: JourneySearch) -> JourneyPage:
    """One page of the journeys the search matches, in its order, and how many match in all."""
    q = s.q.strip() if s.q is not None else None
    args = (s.rider_id, s.statuses, f"%{like_pattern(q)}%" if q else None, f"{like_pattern(q.lower())}%" if q else None)
    rows = await conn.fetch(SEARCH[s.sort], *args, s.limit, s.offset)
    total = await matched(conn, rows, COUNT, args, s.offset)
    return JourneyPage(journeys=[_journey(r, "total") for r in rows], total=total)


class StoredItinerary(msgspec.Struct, frozen=True, kw_only=True):
    """An itinerary as kept for booking: its JSON parts stay encoded (the service decodes them)."""

    id: uuid.UUID
    owner_id: uuid.UUID
    network_id: int | None
    service_version: int | None
    created_at: dt.datetime
    expires_at: dt.datetime
    request: str
    itinerary: str
    rides: str


async def save_itineraries(
    conn: Connection,
    owner: uuid.UUID,
    network_id: int | None,
    service_version: int | None,
    expires_at: dt.datetime,
    request: bytes,
    itineraries: list[tuple[uuid.UUID, bytes, bytes]],
) -> None:
    """Keep the itineraries of one plan (id, itinerary JSON, rides JSON) in one round trip."""
    await conn.execute(
        SAVE_ITINERARIES,
        owner,
        network_id,
        service_version,
        expires_at,
        request.decode(),
        [i for i, _, _ in itineraries],
        [it.decode() for _, it, _ in itineraries],
        [rides.decode() for _, _, rides in itineraries],
    )


async def find_itinerary(conn: Connection, itinerary_id: uuid.UUID) -> StoredItinerary | None:
    row = await conn.fetchrow(GET_ITINERARY, itinerary_id)
    return None if row is None else StoredItinerary(**dict(row.items()))


async def forget_itineraries(conn: Connection, before: dt.datetime) -> None:
    await conn.execute(FORGET_ITINERARIES, before)


def _journey(r: asyncpg.Record, *extra: str) -> JourneyRecord:
    values = {k: v for k, v in r.items() if k not in extra}
    values["itinerary"] = values["itinerary"].encode()
    return JourneyRecord(**values)


async def insert_journey(
    conn: Connection,
    journey_id: uuid.UUID,
    rider: uuid.UUID | None,
    created_by: uuid.UUID,
    itinerary_id: uuid.UUID,
    departure: dt.datetime,
    arrival: dt.datetime,
    itinerary: bytes,
    idempotency_key: str | None,
    caller: tuple[str, str] | None = None,
) -> None:
    """Store a rider's journey, or (rider None) a phone caller's: `caller` is (name, phone)."""
    await conn.execute(
        INSERT_JOURNEY,
        journey_id,
        rider,
        created_by,
        itinerary_id,
        departure,
        arrival,
        itinerary.decode(),
        idempotency_key,
        caller[0] if caller else None,
        caller[1] if caller else None,
    )


async def insert_leg(conn: Connection, leg: JourneyLegRecord) -> None:
    await conn.execute(
        INSERT_LEG,
        leg.journey_id,
        leg.leg,
        leg.mode,
        leg.booking_id,
        leg.connection_kind,
        leg.connection_stop,
        leg.connection_trip,
        leg.connection_at,
        leg.change_s,
    )


async def find_journey(conn: Connection, journey_id: uuid.UUID) -> JourneyRecord | None:
    row = await conn.fetchrow(GET_JOURNEY, journey_id)
    return None if row is None else _journey(row)


async def find_by_idempotency_key(conn: Connection, user: uuid.UUID, key: str) -> JourneyRecord | None:
    row = await conn.fetchrow(BY_KEY, user, key)
    return None if row is None else _journey(row)


async def find_by_itinerary(conn: Connection, itinerary_id: uuid.UUID) -> JourneyRecord | None:
    row = await conn.fetchrow(BY_ITINERARY, itinerary_id)
    return None if row is None else _journey(row)


async def list_legs(conn: Connection, journey_id: uuid.UUID) -> list[JourneyLegRecord]:
    return [JourneyLegRecord(**dict(r.items())) for r in await conn.fetch(LEGS, journey_id)]


async def find_leg_of_booking(conn: Connection, booking_id: uuid.UUID) -> JourneyLegRecord | None:
    row = await conn.fetchrow(OF_BOOKING, booking_id)
    return None if row is None else JourneyLegRecord(**dict(row.items()))


async def list_legs_on_trip(conn: Connection, trip: str) -> list[JourneyLegRecord]:
    return [JourneyLegRecord(**dict(r.items())) for r in await conn.fetch(ON_TRIP, trip)]


async def list_protected(conn: Connection, after: dt.datetime, before: dt.datetime) -> list[JourneyLegRecord]:
    return [JourneyLegRecord(**dict(r.items())) for r in await conn.fetch(PROTECTED, after, before)]


async def find_leg(conn: Connection, journey_id: uuid.UUID, leg: int) -> JourneyLegRecord | None:
    row = await conn.fetchrow(GET_LEG, journey_id, leg)
    return None if row is None else JourneyLegRecord(**dict(row.items()))


async def set_connection(
    conn: Connection, journey_id: uuid.UUID, leg: int, expected: dt.datetime | None, state: ConnectionState
) -> None:
    await conn.execute(SET_CONNECTION, journey_id, leg, expected, state)


async def set_status(conn: Connection, journey_id: uuid.UUID, status: JourneyStatus) -> None:
    await conn.execute(SET_STATUS, journey_id, status)


async def add_event(
    conn: Connection, journey_id: uuid.UUID, kind: str, detail: str | None, actor: uuid.UUID | None
) -> None:
    await conn.execute(EVENT, journey_id, kind, detail, actor)


async def list_events(conn: Connection, journey_id: uuid.UUID) -> list[JourneyEvent]:
    return [JourneyEvent(**dict(r.items())) for r in await conn.fetch(EVENTS, journey_id)]


CONNECTION_NAMES = """
SELECT t->>'route_name' AS route_name,
       CASE $3 WHEN 'first_mile' THEN t->'from'->>'name' ELSE t->'to'->>'name' END AS stop_name
FROM journeys j, jsonb_array_elements(j.itinerary->'legs') AS t
WHERE j.id = $1 AND t->>'trip' = $2 LIMIT 1
"""


async def connection_names(conn: Connection, leg: JourneyLegRecord) -> tuple[str | None, str | None]:
    """(route, station) of a leg's connection as its booked itinerary names them: "S1", "Herrenberg"."""
    row = await conn.fetchrow(CONNECTION_NAMES, leg.journey_id, leg.connection_trip, leg.connection_kind)
    return (None, None) if row is None else (row["route_name"], row["stop_name"])
