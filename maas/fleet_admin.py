"""Operators' fleet: vehicles, shifts, and what the fleet looks like now."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

import asyncpg
import msgspec

from maas.db import audit, locks
from maas.db import bookings as booking_repo
from maas.db import fleet as fleet_repo
from maas.db import stops as stop_repo
from maas.db.bookings import ListedBooking
from maas.db.database import Database
from maas.db.fleet import DriverShift
from maas.db.users import find_user
from maas.definition import check_plausible
from maas.driving import Schedules
from maas.errors import Conflict, Invalid, NotFound
from maas.model import ShiftRecord, User, VehicleRecord
from maas.served import Serving

MAX_SHIFT = dt.timedelta(hours=16)


class VehicleNow(msgspec.Struct, frozen=True, kw_only=True):
    """A vehicle, the shift it is on now (if any) and how many stops that shift has planned."""

    vehicle: VehicleRecord
    shift: ShiftRecord | None
    planned_stops: int | None


DayStopKind = Literal["pickup", "dropoff", "break", "depot"]
# A booking's stop the driver reported, by the status it reported: served at the pickup or the drop-off.
SERVED_AT: dict[str, DayStopKind] = {"picked_up": "pickup", "no_show": "pickup", "completed": "dropoff"}


class DayStop(msgspec.Struct, frozen=True, kw_only=True):
    """One stop of a shift's day: served (the driver's time), planned (the plan's time) or neither yet."""

    kind: DayStopKind
    booking: ListedBooking | None  # None at a break or the depot
    break_id: str | None = None
    planned_at: dt.datetime | None = None
    served_at: dt.datetime | None = None
    lat: float | None = None
    lon: float | None = None


class DayPlan(msgspec.Struct, frozen=True, kw_only=True):
    shift: DriverShift
    stops: list[DayStop]  # in the order the vehicle serves them: the served ones, then the plan's


class FleetAdmin:
    """Adding vehicles and shifts, each change audited in its own transaction; the fleet's day."""

    def __init__(self, db: Database, serving: Serving, schedules: Schedules) -> None:
        self.db = db
        self.serving = serving
        self.schedules = schedules

    async def add_vehicle(
        self, user: User, name: str, seats: int, wheelchair_places: int, depot_lat: float, depot_lon: float
    ) -> VehicleRecord:
        """A new vehicle; Invalid for no places or a depot off the roads, Conflict when the name is taken."""
        if seats < 0 or wheelchair_places < 0 or seats + wheelchair_places == 0:
            raise Invalid("a vehicle needs seats or wheelchair places and no negative counts")
        name = name.strip()
        if not name:
            raise Invalid("a vehicle needs a name")
        fleet = self.serving.fleet()
        if fleet is not None:
            fleet.snap(depot_lat, depot_lon)  # a depot off the road network is refused now
        try:
            async with self.db.pool.acquire() as conn, conn.transaction():
                vehicle = await fleet_repo.create_vehicle(conn, name, seats, wheelchair_places, depot_lat, depot_lon)
                await audit.record(conn, user.id, "create_vehicle", str(vehicle.id), {"name": vehicle.name})
        except asyncpg.UniqueViolationError:  # vehicles.name is UNIQUE: two racing adds cannot both win
            raise Conflict(f"a vehicle named {name!r} exists") from None
        return vehicle

    async def list_vehicles(self) -> list[VehicleRecord]:
        async with self.db.pool.acquire() as conn:
            return await fleet_repo.list_vehicles(conn)

    async def add_shift(
        self,
        user: User,
        vehicle_id: uuid.UUID,
        starts_at: dt.datetime,
        ends_at: dt.datetime,
        driver_id: uuid.UUID | None,
    ) -> ShiftRecord:
        """Put a vehicle on shift; its plan starts empty and every process rebuilds its plans with it."""
        if starts_at.tzinfo is None or ends_at.tzinfo is None:
            raise Invalid("shift times need a UTC offset")
        check_plausible(starts_at, "starts_at", dt.datetime.now(dt.UTC))  # no shift in 1900 or 9999
        if ends_at <= starts_at:
            raise Invalid("a shift ends after it starts")
        if ends_at - starts_at > MAX_SHIFT:
            raise Invalid("a shift lasts at most 16 hours")
        async with self.db.pool.acquire() as conn, conn.transaction():
            await locks.lock_fleet(conn)
            if await fleet_repo.find_vehicle(conn, vehicle_id) is None:
                raise NotFound(f"no vehicle {vehicle_id}")
            if driver_id is not None:
                driver = await find_user(conn, driver_id)
                if driver is None or driver.role != "driver":
                    raise Invalid(f"{driver_id} is not a driver")
            if await fleet_repo.count_overlapping_shifts(conn, vehicle_id, starts_at, ends_at):
                raise Conflict("the vehicle already has a shift in that time")
            shift = await fleet_repo.create_shift(conn, vehicle_id, driver_id, starts_at, ends_at)
            await fleet_repo.save_plan(conn, shift.id, [])
            await fleet_repo.bump_fleet_version(conn)
            await audit.record(conn, user.id, "create_shift", str(shift.id), {"vehicle": str(vehicle_id)})
        return shift

    async def list_current_shifts(self) -> list[ShiftRecord]:
        """Shifts that have not ended."""
        async with self.db.pool.acquire() as conn:
            return await fleet_repo.list_current_shifts(conn, dt.datetime.now(dt.UTC))

    async def now(self) -> list[VehicleNow]:
        """Every vehicle with the shift it is on now and that shift's planned stop count."""
        now = dt.datetime.now(dt.UTC)
        async with self.db.pool.acquire() as conn:
            vehicles = await fleet_repo.list_vehicles(conn)
            running = {s.vehicle_id: s for s in await fleet_repo.list_current_shifts(conn, now) if s.starts_at <= now}
            plans = await fleet_repo.load_plans(conn, [s.id for s in running.values()])
        out = []
        for v in vehicles:
            shift = running.get(v.id)
            planned = None if shift is None else len(plans.get(shift.id, []))
            out.append(VehicleNow(vehicle=v, shift=shift, planned_stops=planned))
        return out

    async def day_plans(self, day: dt.date) -> list[DayPlan]:
        """Every shift running some time on `day` (in the network's time zone), with its stops from the
        depot back to it: those served (with the driver's times), then those planned (with the plan's)."""
        zone = self.serving.zone()
        start = dt.datetime.combine(day, dt.time(0), tzinfo=zone)
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
        async with self.db.pool.acquire() as conn:
            shifts = await fleet_repo.list_driver_shifts(conn, None, start, end)
            booked = await booking_repo.list_on_shifts(conn, [s.shift.id for s in shifts])
            served = await stop_repo.list_served(conn, [b.booking.id for b in booked])
        by_shift: dict[uuid.UUID, list[ListedBooking]] = {}
        for b in booked:
            assert b.booking.shift_id is not None
            by_shift.setdefault(b.booking.shift_id, []).append(b)
        return [await self._day(s, by_shift.get(s.shift.id, []), served) for s in shifts]

    async def _day(
        self, shift: DriverShift, booked: list[ListedBooking], served: dict[tuple[uuid.UUID, str], dt.datetime]
    ) -> DayPlan:
        vehicle = shift.vehicle
        bookings = {str(b.booking.id): b for b in booked}
        done = sorted(
            (
                _booking_stop(SERVED_AT[status], b, served_at=at)
                for b in booked
                for status in SERVED_AT
                if (at := served.get((b.booking.id, status))) is not None
            ),
            key=lambda stop: (stop.served_at, stop.kind != "pickup"),
        )
        seen: set[tuple[str, str]] = {
            (str(stop.booking.booking.id), stop.kind) for stop in done if stop.booking is not None
        }
        fleet = self.serving.fleet()
        planned = []
        for stop in await self.schedules.stops(shift.shift.id):
            at = None if stop.planned_s is None else dt.datetime.fromtimestamp(stop.planned_s, dt.UTC)
            if stop.kind == "break":
                graph = fleet.times.graph if fleet is not None else None
                lat = None if graph is None else float(graph.node_lat[stop.node])
                lon = None if graph is None else float(graph.node_lon[stop.node])
                planned.append(DayStop(kind="break", booking=None, break_id=stop.id, planned_at=at, lat=lat, lon=lon))
            elif (b := bookings.get(stop.id)) is not None and (stop.id, stop.kind) not in seen:
                seen.add((stop.id, stop.kind))
                planned.append(_booking_stop("pickup" if stop.kind == "pickup" else "dropoff", b, planned_at=at))
        # A ride still to be served that the plans do not hold (a shift not in the served plans) is shown unplanned.
        waiting = [
            _booking_stop(kind, b)
            for b in sorted(booked, key=lambda b: b.booking.pickup_earliest)
            for kind in _STILL_TO_SERVE.get(b.booking.status, ())
            if (str(b.booking.id), kind) not in seen
        ]
        return DayPlan(
            shift=shift,
            stops=[
                DayStop(
                    kind="depot",
                    booking=None,
                    planned_at=shift.shift.starts_at,
                    lat=vehicle.depot_lat,
                    lon=vehicle.depot_lon,
                ),
                *done,
                *planned,
                *waiting,
                DayStop(
                    kind="depot",
                    booking=None,
                    planned_at=shift.shift.ends_at,
                    lat=vehicle.depot_lat,
                    lon=vehicle.depot_lon,
                ),
            ],
        )


_STILL_TO_SERVE: dict[str, tuple[DayStopKind, ...]] = {"confirmed": ("pickup", "dropoff"), "picked_up": ("dropoff",)}


def _booking_stop(
    kind: DayStopKind, b: ListedBooking, planned_at: dt.datetime | None = None, served_at: dt.datetime | None = None
) -> DayStop:
    """A booking's pickup (at its origin) or drop-off (at its destination)."""
    r = b.booking
    pickup = kind == "pickup"
    return DayStop(
        kind=kind,
        booking=b,
        planned_at=planned_at,
        served_at=served_at,
        lat=r.origin_lat if pickup else r.destination_lat,
        lon=r.origin_lon if pickup else r.destination_lon,
    )
