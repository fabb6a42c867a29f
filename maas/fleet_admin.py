"""Operators' fleet: vehicles, shifts, and what the fleet looks like now."""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg
import msgspec

from maas.db import audit, locks
from maas.db import fleet as fleet_repo
from maas.db.database import Database
from maas.db.users import find_user
from maas.definition import check_plausible
from maas.errors import Conflict, Invalid, NotFound
from maas.model import ShiftRecord, User, VehicleRecord
from maas.served import Serving

MAX_SHIFT = dt.timedelta(hours=16)


class VehicleNow(msgspec.Struct, frozen=True, kw_only=True):
    """A vehicle, the shift it is on now (if any) and how many stops that shift has planned."""

    vehicle: VehicleRecord
    shift: ShiftRecord | None
    planned_stops: int | None


class FleetAdmin:
    """Adding vehicles and shifts, each change audited in its own transaction."""

    def __init__(self, db: Database, serving: Serving) -> None:
        self.db = db
        self.serving = serving

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
