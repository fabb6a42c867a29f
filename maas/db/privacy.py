"""Personal data: the retention job's batches, a rider's export and erasure, a phone caller's erasure.

Every batch statement touches at most `limit` rows and commits on its own, so that the job never
holds many row locks for long; a statement that finds nothing to do changes nothing (the job is
idempotent). Pseudonyms are made from the row's own id: they tell rows apart and say nothing of the
person.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg
import msgspec

from maas.db import Connection, returned
from maas.db import bookings as booking_repo
from maas.db import journeys as journey_repo
from maas.model import BookingRecord, JourneyEvent, JourneyLegRecord, Role, User

# Who the bookings of erased riders name from then on: one account nobody signs in to.
ERASED_RIDERS = uuid.UUID(int=0)
ROUND_DIGITS = 3  # an erased ride's places are kept to about 100 m: enough for demand maps, not for a door

_HOUR = "date_trunc('hour', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
# Metres between a fix and the one before it (haversine; the Earth's mean radius as in feeds.geo).
_STEP_M = (
    "2 * 6371008.8 * asin(sqrt(power(sin(radians(lat - prev_lat) / 2), 2)"
    " + cos(radians(prev_lat)) * cos(radians(lat)) * power(sin(radians(lon - prev_lon) / 2), 2)))"
)
# A batch is whole hours of one vehicle's fixes older than $1 (an hour boundary): the hours of the first
# $2 fixes found. Each hour's fixes leave the trail together and become that hour's aggregate; a fix that
# arrives for an hour already aggregated (a phone catching up after a month) is merged into it.
SEED_HOURS = f"""
SELECT DISTINCT vehicle_id, {_HOUR} AS hour FROM (SELECT vehicle_id, at FROM positions WHERE at < $1 LIMIT $2) s
"""
AGGREGATE_POSITIONS = f"""
WITH gone AS (
    -- One index range per hour: OFFSET 0 keeps the planner from joining the hours with the whole trail.
    DELETE FROM positions WHERE ctid = ANY (ARRAY(
        SELECT q.ctid FROM unnest($1::uuid[], $2::timestamptz[]) AS seeds (vehicle_id, hour), LATERAL (
            SELECT ctid FROM positions
            WHERE vehicle_id = seeds.vehicle_id AND at >= seeds.hour AND at < seeds.hour + interval '1 hour'
            OFFSET 0) q))
    RETURNING vehicle_id, at, lat, lon
), steps AS (
    SELECT vehicle_id, {_HOUR} AS hour, at, lat, lon,
           lag(lat) OVER w AS prev_lat, lag(lon) OVER w AS prev_lon
    FROM gone WINDOW w AS (PARTITION BY vehicle_id, {_HOUR} ORDER BY at)
), hours AS (
    SELECT vehicle_id, hour, count(*)::integer, min(at), max(at), avg(lat), avg(lon), coalesce(sum({_STEP_M}), 0)
    FROM steps GROUP BY vehicle_id, hour
), kept AS (
    INSERT INTO position_hours AS h (vehicle_id, hour, positions, first_at, last_at, lat, lon, distance_m)
    SELECT * FROM hours
    ON CONFLICT (vehicle_id, hour) DO UPDATE SET
        positions = h.positions + excluded.positions,
        first_at = least(h.first_at, excluded.first_at),
        last_at = greatest(h.last_at, excluded.last_at),
        lat = (h.lat * h.positions + excluded.lat * excluded.positions) / (h.positions + excluded.positions),
        lon = (h.lon * h.positions + excluded.lon * excluded.positions) / (h.positions + excluded.positions),
        distance_m = h.distance_m + excluded.distance_m
    RETURNING 1
)
SELECT (SELECT count(*) FROM gone) AS positions, (SELECT count(*) FROM kept) AS hours
"""
COUNT_OLD_POSITIONS = (
    f"SELECT count(*) AS positions, count(DISTINCT (vehicle_id, {_HOUR})) AS hours FROM positions WHERE at < $1"
)
FORGET_LATEST = "DELETE FROM latest_positions WHERE at < $1"
COUNT_OLD_LATEST = "SELECT count(*) FROM latest_positions WHERE at < $1"

# Riders whose last ride (or journey, or sign-up without either) ended before $1.
_DUE_RIDERS = """
SELECT u.id FROM users u
WHERE u.role = 'rider' AND u.pseudonymised_at IS NULL
  AND greatest(u.created_at,
               (SELECT max(b.dropoff_latest) FROM bookings b WHERE b.rider_id = u.id),
               (SELECT max(j.arrival) FROM journeys j WHERE j.rider_id = u.id)) < $1
"""
PSEUDONYMISE_RIDERS = f"""
WITH due AS ({_DUE_RIDERS} LIMIT $2)
UPDATE users u SET name = 'rider ' || left(md5(u.id::text), 8), phone = NULL, pseudonymised_at = now()
FROM due WHERE u.id = due.id
"""
COUNT_DUE_RIDERS = f"SELECT count(*) FROM ({_DUE_RIDERS}) due"


def _digits(column: str) -> str:
    """A phone number as its digits only, so that "+49 7032 123" and "+497032123" are one caller."""
    return f"regexp_replace({column}, '[^0-9]', '', 'g')"


# Callers' numbers (as digits) whose last ride and last journey (an operator booked) ended before $1.
_DUE_CALLER_NUMBERS = f"""
SELECT number FROM (
    SELECT {_digits("caller_phone")} AS number, dropoff_latest AS ended FROM bookings WHERE caller_phone IS NOT NULL
    UNION ALL
    SELECT {_digits("caller_phone")}, arrival FROM journeys WHERE caller_phone IS NOT NULL) seen
GROUP BY number HAVING max(ended) < $1
"""
# Phone bookings of callers (told apart by their number) past their time.
_DUE_CALLER_BOOKINGS = f"""
SELECT b.id FROM bookings b
WHERE b.caller_phone IS NOT NULL AND {_digits("b.caller_phone")} IN ({_DUE_CALLER_NUMBERS})
"""
_DUE_CALLER_JOURNEYS = f"""
SELECT j.id FROM journeys j
WHERE j.caller_phone IS NOT NULL AND {_digits("j.caller_phone")} IN ({_DUE_CALLER_NUMBERS})
"""
_CALLER_PSEUDONYM = "'caller ' || left(md5(b.id::text), 8)"
_JOURNEY_CALLER_PSEUDONYM = "'caller ' || left(md5(j.id::text), 8)"
# The audit entries of the pseudonymised phone bookings name the pseudonym too.
_AUDITED = """
audited AS (
    UPDATE audit_log a SET details = a.details || jsonb_build_object('caller', done.caller_name)
    FROM done WHERE a.action = 'phone_booking' AND a.subject = done.id::text
    RETURNING 1
)
SELECT (SELECT count(*) FROM done) AS bookings, (SELECT count(*) FROM audited) AS audit_entries
"""
PSEUDONYMISE_CALLERS = f"""
WITH due AS ({_DUE_CALLER_BOOKINGS} LIMIT $2), done AS (
    UPDATE bookings b SET caller_name = {_CALLER_PSEUDONYM}, caller_phone = NULL, pseudonymised_at = now()
    FROM due WHERE b.id = due.id RETURNING b.id, b.caller_name
), {_AUDITED}
"""
PSEUDONYMISE_CALLER_JOURNEYS = f"""
WITH due AS ({_DUE_CALLER_JOURNEYS} LIMIT $2)
UPDATE journeys j SET caller_name = {_JOURNEY_CALLER_PSEUDONYM}, caller_phone = NULL, pseudonymised_at = now()
FROM due WHERE j.id = due.id
"""
COUNT_DUE_CALLER_JOURNEYS = f"SELECT count(*) FROM ({_DUE_CALLER_JOURNEYS}) due"
COUNT_DUE_CALLERS = f"""
SELECT (SELECT count(*) FROM ({_DUE_CALLER_BOOKINGS}) due) AS bookings,
       (SELECT count(*) FROM audit_log a WHERE a.action = 'phone_booking'
        AND a.subject IN (SELECT id::text FROM ({_DUE_CALLER_BOOKINGS}) due)) AS audit_entries
"""


def _coarse(column: str) -> str:
    return f"{column} = round({column}::numeric, {ROUND_DIGITS})::double precision"


_COARSE_PLACES = ", ".join(_coarse(c) for c in ("origin_lat", "origin_lon", "destination_lat", "destination_lon"))
ERASE_CALLER = f"""
WITH done AS (
    UPDATE bookings b SET caller_name = {_CALLER_PSEUDONYM}, caller_phone = NULL, {_COARSE_PLACES},
                          pseudonymised_at = now()
    WHERE b.caller_phone IS NOT NULL AND {_digits("b.caller_phone")} = $1 RETURNING b.id, b.caller_name
), {_AUDITED}
"""
# A caller's journeys on erasure: the name and number go, and the places of the itinerary as booked
# are kept to about 100 m (its legs' geometries, which trace them, go).
_COARSE_PLACE = (
    "(leg->'{end}') || jsonb_build_object('lat', round((leg->'{end}'->>'lat')::numeric, {digits}),"
    " 'lon', round((leg->'{end}'->>'lon')::numeric, {digits}))"
)
_COARSE_LEGS = (
    "SELECT jsonb_agg(leg || jsonb_build_object('geometry', '', 'from', "
    + _COARSE_PLACE.format(end="from", digits=ROUND_DIGITS)
    + ", 'to', "
    + _COARSE_PLACE.format(end="to", digits=ROUND_DIGITS)
    + ") ORDER BY n) FROM jsonb_array_elements(j.itinerary->'legs') WITH ORDINALITY AS l (leg, n)"
)
ERASE_CALLER_JOURNEYS = f"""
UPDATE journeys j SET caller_name = {_JOURNEY_CALLER_PSEUDONYM}, caller_phone = NULL, pseudonymised_at = now(),
                      itinerary = jsonb_set(j.itinerary, '{{legs}}', coalesce(({_COARSE_LEGS}), '[]'::jsonb))
WHERE j.caller_phone IS NOT NULL AND {_digits("j.caller_phone")} = $1
"""
CALLER_RIDES_UNDER_WAY = (
    "SELECT id FROM bookings WHERE caller_phone IS NOT NULL AND "
    + _digits("caller_phone")
    + " = $1 AND status IN ('confirmed', 'picked_up') ORDER BY pickup_earliest"
)

# Offers and itineraries (with the places asked for) once expired for a day, as the booking and
# journey services forget them when they next write some.
FORGET_OFFERS = "DELETE FROM offers WHERE id = ANY (ARRAY(SELECT id FROM offers WHERE expires_at < $1 LIMIT $2))"
FORGET_ITINERARIES = (
    "DELETE FROM itineraries WHERE id = ANY (ARRAY(SELECT id FROM itineraries WHERE expires_at < $1 LIMIT $2))"
)
COUNT_OFFERS = "SELECT count(*) FROM offers WHERE expires_at < $1"
COUNT_ITINERARIES = "SELECT count(*) FROM itineraries WHERE expires_at < $1"

LAST_RUN = "SELECT max(started_at) FROM retention_runs"
RECORD_RUN = "INSERT INTO retention_runs (started_at, finished_at, report) VALUES ($1, now(), $2::jsonb)"

# -- a rider's own data -------------------------------------------------------------------------------
PROFILE = "SELECT id, name, role, phone, agency, created_at, pseudonymised_at FROM users WHERE id = $1"
RIDER_BOOKINGS = f"SELECT {booking_repo.COLUMNS} FROM bookings WHERE rider_id = $1 ORDER BY created_at"
RIDER_BOOKING_EVENTS = """
SELECT e.booking_id, e.status, e.actor, e.reason, e.at FROM booking_events e
JOIN bookings b ON b.id = e.booking_id WHERE b.rider_id = $1 ORDER BY e.id
"""
RIDER_JOURNEYS = f"SELECT {journey_repo.JOURNEY_COLUMNS} FROM journeys WHERE rider_id = $1 ORDER BY created_at"
ACTIONS = "SELECT id, action, subject, details::text, at FROM audit_log WHERE actor = $1 ORDER BY id"
RIDES_ON_BOARD = "SELECT id FROM bookings WHERE rider_id = $1 AND status = 'picked_up'"
RIDES_CONFIRMED = "SELECT id FROM bookings WHERE rider_id = $1 AND status = 'confirmed' ORDER BY pickup_earliest"

ADD_ERASED_RIDERS = (
    "INSERT INTO users (id, name, role, pseudonymised_at) VALUES ($1, 'erased riders', 'rider', now())"
    " ON CONFLICT (id) DO NOTHING"
)
_RIDER_JOURNEYS = "SELECT id FROM journeys WHERE rider_id = $1"
ERASE_RIDER = [
    f"DELETE FROM journey_events WHERE journey_id IN ({_RIDER_JOURNEYS})",
    f"DELETE FROM journey_legs WHERE journey_id IN ({_RIDER_JOURNEYS})",
    "DELETE FROM offers WHERE created_by = $1",
    "DELETE FROM itineraries WHERE owner_id = $1",
    "UPDATE booking_events SET reason = NULL WHERE actor = $1",  # what the rider wrote (a cancellation's reason)
]
ERASE_JOURNEYS = "DELETE FROM journeys WHERE rider_id = $1"
ANONYMISE_RIDES = f"UPDATE bookings SET rider_id = $2, {_COARSE_PLACES}, pseudonymised_at = now() WHERE rider_id = $1"
# Every other column that names a user, in the tables of today and of later migrations: NULL where it
# may be, else the erased riders' account; references the database clears itself are left to it.
REFERENCES = """
SELECT c.conrelid::regclass::text AS tab, quote_ident(a.attname) AS col, a.attnotnull AS required
FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
WHERE c.contype = 'f' AND c.confrelid = 'users'::regclass AND c.confdeltype NOT IN ('c', 'n', 'd')
ORDER BY 1, 2
"""
DELETE_USER = "DELETE FROM users WHERE id = $1"

_encode = msgspec.json.Encoder().encode


def changed(status: str) -> int:
    """Rows a statement changed, from its status ("DELETE 12", "UPDATE 3")."""
    return int(status.rsplit(" ", 1)[-1])


async def aggregate_positions(conn: Connection, before: dt.datetime, limit: int) -> tuple[int, int]:
    """(fixes removed, hourly aggregates written) of one batch (in the caller's transaction)."""
    seeds = await conn.fetch(SEED_HOURS, before, limit)
    if not seeds:
        return 0, 0
    await conn.execute("SET LOCAL jit = off")  # compiling a batch's plan would take longer than running it
    row = returned(
        await conn.fetchrow(AGGREGATE_POSITIONS, [r["vehicle_id"] for r in seeds], [r["hour"] for r in seeds])
    )
    return row["positions"], row["hours"]


async def count_old_positions(conn: Connection, before: dt.datetime) -> tuple[int, int]:
    row = returned(await conn.fetchrow(COUNT_OLD_POSITIONS, before))
    return row["positions"], row["hours"]


async def forget_latest_positions(conn: Connection, before: dt.datetime) -> int:
    return changed(await conn.execute(FORGET_LATEST, before))


async def count_old_latest_positions(conn: Connection, before: dt.datetime) -> int:
    return int(await conn.fetchval(COUNT_OLD_LATEST, before))


async def pseudonymise_riders(conn: Connection, before: dt.datetime, limit: int) -> int:
    return changed(await conn.execute(PSEUDONYMISE_RIDERS, before, limit))


async def count_due_riders(conn: Connection, before: dt.datetime) -> int:
    return int(await conn.fetchval(COUNT_DUE_RIDERS, before))


async def pseudonymise_callers(conn: Connection, before: dt.datetime, limit: int) -> tuple[int, int]:
    """(phone bookings, their audit entries) pseudonymised in one batch."""
    row = returned(await conn.fetchrow(PSEUDONYMISE_CALLERS, before, limit))
    return row["bookings"], row["audit_entries"]


async def pseudonymise_caller_journeys(conn: Connection, before: dt.datetime, limit: int) -> int:
    """Callers' journeys (an operator booked) pseudonymised in one batch."""
    return changed(await conn.execute(PSEUDONYMISE_CALLER_JOURNEYS, before, limit))


async def count_due_caller_journeys(conn: Connection, before: dt.datetime) -> int:
    return int(await conn.fetchval(COUNT_DUE_CALLER_JOURNEYS, before))


async def count_due_callers(conn: Connection, before: dt.datetime) -> tuple[int, int]:
    row = returned(await conn.fetchrow(COUNT_DUE_CALLERS, before))
    return row["bookings"], row["audit_entries"]


async def forget_expired(conn: Connection, what: str, before: dt.datetime, limit: int) -> int:
    """One batch of expired `offers` or `itineraries` removed."""
    sql = {"offers": FORGET_OFFERS, "itineraries": FORGET_ITINERARIES}[what]
    return changed(await conn.execute(sql, before, limit))


async def count_expired(conn: Connection, what: str, before: dt.datetime) -> int:
    sql = {"offers": COUNT_OFFERS, "itineraries": COUNT_ITINERARIES}[what]
    return int(await conn.fetchval(sql, before))


async def last_run(conn: Connection) -> dt.datetime | None:
    started: dt.datetime | None = await conn.fetchval(LAST_RUN)
    return started


async def record_run(conn: Connection, started_at: dt.datetime, report: msgspec.Struct) -> None:
    await conn.execute(RECORD_RUN, started_at, _encode(report).decode())


# -- export and erasure ----------------------------------------------------------------------------------
class Profile(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    name: str
    role: Role
    phone: str | None
    agency: str | None
    created_at: dt.datetime
    pseudonymised_at: dt.datetime | None


class BookingEvent(msgspec.Struct, frozen=True, kw_only=True):
    booking_id: uuid.UUID
    status: str
    actor: uuid.UUID | None
    reason: str | None
    at: dt.datetime


class JourneyData(msgspec.Struct, frozen=True, kw_only=True):
    """A booked journey as stored: the itinerary as the rider booked it, its legs and events."""

    id: uuid.UUID
    created_by: uuid.UUID
    status: str
    departure: dt.datetime
    arrival: dt.datetime
    created_at: dt.datetime
    itinerary: dict[str, Any]
    legs: list[JourneyLegRecord]
    events: list[JourneyEvent]


class AuditAction(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    action: str
    subject: str | None
    details: dict[str, Any]
    at: dt.datetime


class StoredData(msgspec.Struct, frozen=True, kw_only=True):
    """Everything stored about one user: their account, rides, journeys and what they did."""

    profile: Profile
    bookings: list[BookingRecord]
    booking_events: list[BookingEvent]
    journeys: list[JourneyData]
    actions: list[AuditAction]


async def find_stored_data(conn: Connection, user_id: uuid.UUID) -> StoredData | None:
    row = await conn.fetchrow(PROFILE, user_id)
    if row is None:
        return None
    journeys = [
        JourneyData(
            id=r["id"],
            created_by=r["created_by"],
            status=r["status"],
            departure=r["departure"],
            arrival=r["arrival"],
            created_at=r["created_at"],
            itinerary=msgspec.json.decode(r["itinerary"]),
            legs=await journey_repo.list_legs(conn, r["id"]),
            events=await journey_repo.list_events(conn, r["id"]),
        )
        for r in await conn.fetch(RIDER_JOURNEYS, user_id)
    ]
    return StoredData(
        profile=Profile(**dict(row.items())),
        bookings=[BookingRecord(**dict(r.items())) for r in await conn.fetch(RIDER_BOOKINGS, user_id)],
        booking_events=[BookingEvent(**dict(r.items())) for r in await conn.fetch(RIDER_BOOKING_EVENTS, user_id)],
        journeys=journeys,
        actions=[_action(r) for r in await conn.fetch(ACTIONS, user_id)],
    )


def _action(r: asyncpg.Record) -> AuditAction:
    return AuditAction(
        id=r["id"], action=r["action"], subject=r["subject"], details=msgspec.json.decode(r["details"]), at=r["at"]
    )


async def list_rides(conn: Connection, user: User, status: str) -> list[uuid.UUID]:
    """The ids of the rider's bookings in `status` (picked_up or confirmed)."""
    sql = RIDES_ON_BOARD if status == "picked_up" else RIDES_CONFIRMED
    return [r["id"] for r in await conn.fetch(sql, user.id)]


async def erase_rider(conn: Connection, user_id: uuid.UUID) -> tuple[int, int]:
    """Remove the rider's account, journeys, offers and words; their rides stay as the erased riders'
    with places kept to about 100 m. (journeys removed, rides kept); in the caller's transaction."""
    await conn.execute(ADD_ERASED_RIDERS, ERASED_RIDERS)
    for sql in ERASE_RIDER:
        await conn.execute(sql, user_id)
    journeys = changed(await conn.execute(ERASE_JOURNEYS, user_id))
    rides = changed(await conn.execute(ANONYMISE_RIDES, user_id, ERASED_RIDERS))
    for r in await conn.fetch(REFERENCES):
        value = ERASED_RIDERS if r["required"] else None
        await conn.execute(f"UPDATE {r['tab']} SET {r['col']} = $2 WHERE {r['col']} = $1", user_id, value)
    await conn.execute(DELETE_USER, user_id)
    return journeys, rides


async def list_caller_rides_under_way(conn: Connection, digits: str) -> list[uuid.UUID]:
    return [r["id"] for r in await conn.fetch(CALLER_RIDES_UNDER_WAY, digits)]


async def erase_caller(conn: Connection, digits: str) -> tuple[int, int]:
    """Pseudonymise every phone booking of the caller with these digits: (bookings, audit entries)."""
    row = returned(await conn.fetchrow(ERASE_CALLER, digits))
    return row["bookings"], row["audit_entries"]


async def erase_caller_journeys(conn: Connection, digits: str) -> int:
    """Pseudonymise every journey booked for the caller with these digits, its places coarsened."""
    return changed(await conn.execute(ERASE_CALLER_JOURNEYS, digits))
