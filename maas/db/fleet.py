"""Vehicles, shifts, their plans, and the fleet's version number."""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg
import msgspec

from maas.db import Connection, returned
from maas.model import BookingRecord, ShiftRecord, VehicleRecord

INSERT_VEHICLE = (
    "INSERT INTO vehicles (id, name, seats, wheelchair_places, depot_lat, depot_lon) VALUES ($1, $2, $3, $4, $5, $6)"
)
VEHICLE_COLUMNS = "id, name, seats, wheelchair_places, depot_lat, depot_lon, active"
LIST_VEHICLES = f"SELECT {VEHICLE_COLUMNS} FROM vehicles ORDER BY name"
GET_VEHICLE = f"SELECT {VEHICLE_COLUMNS} FROM vehicles WHERE id = $1"
INSERT_SHIFT = "INSERT INTO shifts (id, vehicle_id, driver_id, starts_at, ends_at) VALUES ($1, $2, $3, $4, $5)"
SHIFT_COLUMNS = "id, vehicle_id, driver_id, starts_at, ends_at, signed_in_at, signed_in_by"
CURRENT_SHIFTS = f"SELECT {SHIFT_COLUMNS} FROM shifts WHERE ends_at > $1 ORDER BY starts_at"
GET_SHIFT = f"SELECT {SHIFT_COLUMNS} FROM shifts WHERE id = $1"
# Only into a shift nobody is signed in to: two drivers racing for one cannot both win, lock or not.
SIGN_IN = (
    "UPDATE shifts SET signed_in_by = $2, signed_in_at = now() WHERE id = $1 AND signed_in_by IS NULL RETURNING id"
)
SIGN_OUT = "UPDATE shifts SET signed_in_by = NULL, signed_in_at = NULL WHERE id = $1"
# A shift that has ended no longer holds its driver: the next sign-in ends that one.
END_PAST_SIGN_INS = (
    "UPDATE shifts SET signed_in_by = NULL, signed_in_at = NULL WHERE signed_in_by = $1 AND ends_at <= $2"
)
SIGNED_IN = f"SELECT {SHIFT_COLUMNS} FROM shifts WHERE signed_in_by = $1 AND ends_at > $2"
# The shifts a driver may take or is on between $2 and $3: assigned to them, or to nobody.
DRIVER_SHIFTS = (
    "SELECT s.id, s.vehicle_id, s.driver_id, s.starts_at, s.ends_at, s.signed_in_at, s.signed_in_by,"
    " v.name, v.seats, v.wheelchair_places, v.depot_lat, v.depot_lon, v.active, u.name AS signed_in_name"
    " FROM shifts s JOIN vehicles v ON v.id = s.vehicle_id LEFT JOIN users u ON u.id = s.signed_in_by"
    " WHERE s.ends_at > $2 AND s.starts_at < $3"
    " AND ($1::uuid IS NULL OR s.driver_id = $1 OR s.driver_id IS NULL OR s.signed_in_by = $1)"
    " ORDER BY s.starts_at, v.name"
)
ON_BOARD = "SELECT count(*) FROM bookings WHERE shift_id = $1 AND status = 'picked_up'"
OVERLAPPING = "SELECT count(*) FROM shifts WHERE vehicle_id = $1 AND starts_at < $3 AND ends_at > $2"
VERSION = "SELECT version FROM fleet_state WHERE id = 1"
BUMP = "UPDATE fleet_state SET version = version + 1 WHERE id = 1 RETURNING version"
SAVE_PLAN = (
    "INSERT INTO shift_plans (shift_id, stops, updated_at) VALUES ($1, $2::jsonb, now())"
    " ON CONFLICT (shift_id) DO UPDATE SET stops = excluded.stops, updated_at = now()"
)
PLANS = "SELECT shift_id, stops FROM shift_plans WHERE shift_id = ANY($1::uuid[])"
# Read after taking the lock, in a statement of its own: a statement's snapshot is taken when it
# starts, so versions read in the statement that waited for the lock could be stale.
VERSIONS = "SELECT (SELECT version FROM fleet_state WHERE id = 1) AS fleet, (SELECT max(id) FROM service_areas) AS area"
SAVE_PLAN_AND_BUMP = (
    "WITH saved AS (INSERT INTO shift_plans (shift_id, stops, updated_at) VALUES ($1, $2::jsonb, now())"
    " ON CONFLICT (shift_id) DO UPDATE SET stops = excluded.stops, updated_at = now()),"
    " bumped AS (UPDATE fleet_state SET version = version + 1 WHERE id = 1 RETURNING version),"
    " noted AS (INSERT INTO fleet_changes (version, shifts) SELECT version, ARRAY[$1::uuid] FROM bumped)"
    " SELECT version FROM bumped"
)
# One statement, so one snapshot: the rides and the plans of the shifts agree even without the lock.
SHIFTS_STATE = (
    "SELECT (SELECT coalesce(jsonb_agg(to_jsonb(b) - 'idempotency_key'), '[]') FROM bookings b"
    "        WHERE b.shift_id = ANY($1::uuid[]) AND b.status IN ('confirmed', 'picked_up')) AS rides,"
    " (SELECT coalesce(jsonb_agg(jsonb_build_array(p.shift_id, p.stops, p.start_lat, p.start_lon,"
    "                                               p.start_at)), '[]') FROM shift_plans p"
    "        WHERE p.shift_id = ANY($1::uuid[])) AS plans"
)
SAVE_START = "UPDATE shift_plans SET start_lat = $2, start_lon = $3, start_at = $4 WHERE shift_id = $1"
NOTE_CHANGE = "INSERT INTO fleet_changes (version, shifts) VALUES ($1, $2::uuid[])"
CHANGES_SINCE = "SELECT version, shifts FROM fleet_changes WHERE version > $1 AND version <= $2 ORDER BY version"
FORGET_CHANGES = "DELETE FROM fleet_changes WHERE at < now() - interval '1 hour'"

_encode = msgspec.json.Encoder().encode


def _vehicle(r: asyncpg.Record) -> VehicleRecord:
    return VehicleRecord(
        id=r["id"],
        name=r["name"],
        seats=r["seats"],
        wheelchair_places=r["wheelchair_places"],
        depot_lat=r["depot_lat"],
        depot_lon=r["depot_lon"],
        active=r["active"],
    )


def _shift(r: asyncpg.Record) -> ShiftRecord:
    return ShiftRecord(
        id=r["id"],
        vehicle_id=r["vehicle_id"],
        driver_id=r["driver_id"],
        starts_at=r["starts_at"],
        ends_at=r["ends_at"],
        signed_in_at=r["signed_in_at"],
        signed_in_by=r["signed_in_by"],
    )


async def create_vehicle(
    conn: Connection, name: str, seats: int, wheelchair_places: int, depot_lat: float, depot_lon: float
) -> VehicleRecord:
    vehicle = VehicleRecord(
        id=uuid.uuid4(),
        name=name,
        seats=seats,
        wheelchair_places=wheelchair_places,
        depot_lat=depot_lat,
        depot_lon=depot_lon,
    )
    await conn.execute(INSERT_VEHICLE, vehicle.id, name, seats, wheelchair_places, depot_lat, depot_lon)
    return vehicle


async def list_vehicles(conn: Connection) -> list[VehicleRecord]:
    return [_vehicle(r) for r in await conn.fetch(LIST_VEHICLES)]


async def find_vehicle(conn: Connection, vehicle_id: uuid.UUID) -> VehicleRecord | None:
    row = await conn.fetchrow(GET_VEHICLE, vehicle_id)
    return None if row is None else _vehicle(row)


async def create_shift(
    conn: Connection,
    vehicle_id: uuid.UUID,
    driver_id: uuid.UUID | None,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
) -> ShiftRecord:
    shift = ShiftRecord(
        id=uuid.uuid4(), vehicle_id=vehicle_id, driver_id=driver_id, starts_at=starts_at, ends_at=ends_at
    )
    await conn.execute(INSERT_SHIFT, shift.id, vehicle_id, driver_id, starts_at, ends_at)
    return shift


async def count_overlapping_shifts(
    conn: Connection, vehicle_id: uuid.UUID, starts_at: dt.datetime, ends_at: dt.datetime
) -> int:
    return int(await conn.fetchval(OVERLAPPING, vehicle_id, starts_at, ends_at))


async def list_current_shifts(conn: Connection, after: dt.datetime) -> list[ShiftRecord]:
    return [_shift(r) for r in await conn.fetch(CURRENT_SHIFTS, after)]


async def find_shift(conn: Connection, shift_id: uuid.UUID) -> ShiftRecord | None:
    row = await conn.fetchrow(GET_SHIFT, shift_id)
    return None if row is None else _shift(row)


async def sign_in(conn: Connection, shift_id: uuid.UUID, driver_id: uuid.UUID) -> bool:
    """Sign the driver in; False when someone is signed in to the shift already,
    asyncpg.UniqueViolationError when the driver is signed in to another shift."""
    return await conn.fetchval(SIGN_IN, shift_id, driver_id) is not None


async def sign_out(conn: Connection, shift_id: uuid.UUID) -> None:
    await conn.execute(SIGN_OUT, shift_id)


async def end_past_sign_ins(conn: Connection, driver_id: uuid.UUID, now: dt.datetime) -> None:
    await conn.execute(END_PAST_SIGN_INS, driver_id, now)


async def find_signed_in_shift(conn: Connection, driver_id: uuid.UUID, now: dt.datetime) -> ShiftRecord | None:
    """The shift, not ended, that the driver is signed in to (one at most: a unique index)."""
    row = await conn.fetchrow(SIGNED_IN, driver_id, now)
    return None if row is None else _shift(row)


class DriverShift(msgspec.Struct, frozen=True, kw_only=True):
    """A shift as a driver sees it: its vehicle and, when someone is signed in, their name."""

    shift: ShiftRecord
    vehicle: VehicleRecord
    signed_in_name: str | None


async def list_driver_shifts(
    conn: Connection, driver_id: uuid.UUID | None, after: dt.datetime, before: dt.datetime
) -> list[DriverShift]:
    """Shifts assigned to the driver or to nobody (or that the driver is signed in to; every shift
    for None) that run some time between `after` and `before`, by start."""
    rows = await conn.fetch(DRIVER_SHIFTS, driver_id, after, before)
    return [
        DriverShift(
            shift=_shift(r),
            vehicle=VehicleRecord(
                id=r["vehicle_id"],
                name=r["name"],
                seats=r["seats"],
                wheelchair_places=r["wheelchair_places"],
                depot_lat=r["depot_lat"],
                depot_lon=r["depot_lon"],
                active=r["active"],
            ),
            signed_in_name=r["signed_in_name"],
        )
        for r in rows
    ]


async def count_on_board(conn: Connection, shift_id: uuid.UUID) -> int:
    """How many of the shift's rides have been picked up and not yet dropped off."""
    return int(await conn.fetchval(ON_BOARD, shift_id))


async def read_versions(conn: Connection) -> tuple[int, int | None]:
    """(fleet version, service area version or None), without the lock: for a copy that `book` checks."""
    row = returned(await conn.fetchrow(VERSIONS))
    return int(row["fleet"]), row["area"]


_decode_rides = msgspec.json.Decoder(list[BookingRecord]).decode


class PlanStart(msgspec.Struct, frozen=True, kw_only=True):
    """Where and when a vehicle's plan starts after stop events moved it from the depot."""

    lat: float
    lon: float
    at: dt.datetime


class StoredPlan(msgspec.Struct, frozen=True, kw_only=True):
    stops: list[tuple[str, str]]
    start: PlanStart | None


_decode_plans = msgspec.json.Decoder(
    list[tuple[uuid.UUID, list[tuple[str, str]], float | None, float | None, dt.datetime | None]]
).decode


async def read_shifts(
    conn: Connection, shift_ids: list[uuid.UUID]
) -> tuple[list[BookingRecord], dict[uuid.UUID, StoredPlan]]:
    """The active rides and the plans of some shifts, as of one moment."""
    row = returned(await conn.fetchrow(SHIFTS_STATE, shift_ids))
    plans = {}
    for shift_id, stops, lat, lon, at in _decode_plans(row["plans"]):
        start = PlanStart(lat=lat, lon=lon, at=at) if lat is not None and lon is not None and at is not None else None
        plans[shift_id] = StoredPlan(stops=stops, start=start)
    return _decode_rides(row["rides"]), plans


async def save_start(conn: Connection, shift_id: uuid.UUID, start: PlanStart) -> None:
    await conn.execute(SAVE_START, shift_id, start.lat, start.lon, start.at)


async def save_plan_and_bump(conn: Connection, shift_id: uuid.UUID, stops: list[tuple[str, str]]) -> int:
    """Store one shift's plan and return the fleet's new version, in one round trip."""
    return int(await conn.fetchval(SAVE_PLAN_AND_BUMP, shift_id, _encode([list(s) for s in stops]).decode()))


async def note_change(conn: Connection, version: int, shifts: list[uuid.UUID]) -> None:
    await conn.execute(NOTE_CHANGE, version, shifts)


async def changed_shifts(conn: Connection, after: int, upto: int) -> set[uuid.UUID] | None:
    """The shifts changed by versions after..upto, or None when some version left no note (rebuild all)."""
    if after == upto:
        return set()
    rows = await conn.fetch(CHANGES_SINCE, after, upto)
    if len(rows) != upto - after:
        return None
    return {shift for r in rows for shift in r["shifts"]}


async def forget_old_changes(conn: Connection) -> None:
    await conn.execute(FORGET_CHANGES)


async def fleet_version(conn: Connection) -> int:
    return int(await conn.fetchval(VERSION))


async def bump_fleet_version(conn: Connection) -> int:
    return int(await conn.fetchval(BUMP))


async def save_plan(conn: Connection, shift_id: uuid.UUID, stops: list[tuple[str, str]]) -> None:
    await conn.execute(SAVE_PLAN, shift_id, _encode([list(s) for s in stops]).decode())


async def load_plans(conn: Connection, shift_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[tuple[str, str]]]:
    return {
        r["shift_id"]: [tuple(s) for s in msgspec.json.decode(r["stops"])] for r in await conn.fetch(PLANS, shift_ids)
    }
