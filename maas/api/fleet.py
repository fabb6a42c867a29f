"""Operators: vehicles and shifts."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from maas.auth import roles
from maas.booking import Place
from maas.db import audit, locks
from maas.db import fleet as fleet_repo
from maas.db.database import Database
from maas.db.users import find_user
from maas.errors import Conflict, Invalid, NotFound
from maas.model import ShiftRecord, User, VehicleRecord
from maas.served import Serving


class NewVehicle(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    seats: int
    wheelchair_places: int = 0
    depot: Place


class NewShift(msgspec.Struct, frozen=True, kw_only=True):
    vehicle_id: uuid.UUID
    starts_at: dt.datetime
    ends_at: dt.datetime
    driver_id: uuid.UUID | None = None


def vehicle_out(v: VehicleRecord) -> dict[str, Any]:
    return {
        "id": str(v.id),
        "name": v.name,
        "seats": v.seats,
        "wheelchair_places": v.wheelchair_places,
        "depot": {"lat": v.depot_lat, "lon": v.depot_lon},
        "active": v.active,
    }


def shift_out(s: ShiftRecord) -> dict[str, Any]:
    return {
        "id": str(s.id),
        "vehicle_id": str(s.vehicle_id),
        "driver_id": str(s.driver_id) if s.driver_id else None,
        "starts_at": s.starts_at.isoformat(),
        "ends_at": s.ends_at.isoformat(),
        "signed_in_at": s.signed_in_at.isoformat() if s.signed_in_at else None,
    }


class FleetController(Controller):
    guards = [roles("operator", "admin")]

    @post("/vehicles")
    async def new_vehicle(
        self,
        request: Request[User, Any, Any],
        serving: NamedDependency[Serving],
        db: NamedDependency[Database],
        data: JSONBody[NewVehicle],
    ) -> dict[str, Any]:
        """Add a vehicle: seats, wheelchair places (each may also take the room of two seats), depot."""
        if data.seats < 0 or data.wheelchair_places < 0 or data.seats + data.wheelchair_places == 0:
            raise Invalid("a vehicle needs seats or wheelchair places and no negative counts")
        if not data.name.strip():
            raise Invalid("a vehicle needs a name")
        fleet = serving.fleet()
        if fleet is not None:
            fleet.snap(data.depot.lat, data.depot.lon)  # a depot off the road network is refused now
        async with db.pool.acquire() as conn, conn.transaction():
            if any(v.name == data.name.strip() for v in await fleet_repo.list_vehicles(conn)):
                raise Conflict(f"a vehicle named {data.name!r} exists")
            vehicle = await fleet_repo.create_vehicle(
                conn, data.name.strip(), data.seats, data.wheelchair_places, data.depot.lat, data.depot.lon
            )
            await audit.record(conn, request.user.id, "create_vehicle", str(vehicle.id), {"name": vehicle.name})
        return vehicle_out(vehicle)

    @get("/vehicles")
    async def vehicles(self, request: Request[User, Any, Any], db: NamedDependency[Database]) -> list[dict[str, Any]]:
        async with db.pool.acquire() as conn:
            return [vehicle_out(v) for v in await fleet_repo.list_vehicles(conn)]

    @post("/shifts")
    async def new_shift(
        self, request: Request[User, Any, Any], db: NamedDependency[Database], data: JSONBody[NewShift]
    ) -> dict[str, Any]:
        """Put a vehicle on shift; its plans start empty and bookings can use it at once."""
        if data.starts_at.tzinfo is None or data.ends_at.tzinfo is None:
            raise Invalid("shift times need a UTC offset")
        if data.ends_at <= data.starts_at:
            raise Invalid("a shift ends after it starts")
        if data.ends_at - data.starts_at > dt.timedelta(hours=16):
            raise Invalid("a shift lasts at most 16 hours")
        async with db.pool.acquire() as conn, conn.transaction():
            await locks.lock_fleet(conn)
            if await fleet_repo.find_vehicle(conn, data.vehicle_id) is None:
                raise NotFound(f"no vehicle {data.vehicle_id}")
            if data.driver_id is not None:
                driver = await find_user(conn, data.driver_id)
                if driver is None or driver.role != "driver":
                    raise Invalid(f"{data.driver_id} is not a driver")
            if await fleet_repo.count_overlapping_shifts(conn, data.vehicle_id, data.starts_at, data.ends_at):
                raise Conflict("the vehicle already has a shift in that time")
            shift = await fleet_repo.create_shift(conn, data.vehicle_id, data.driver_id, data.starts_at, data.ends_at)
            await fleet_repo.save_plan(conn, shift.id, [])
            await fleet_repo.bump_fleet_version(conn)  # every process rebuilds its plans with the new shift
            await audit.record(conn, request.user.id, "create_shift", str(shift.id), {"vehicle": str(data.vehicle_id)})
        return shift_out(shift)

    @get("/shifts")
    async def shifts(self, request: Request[User, Any, Any], db: NamedDependency[Database]) -> list[dict[str, Any]]:
        """Shifts that have not ended."""
        async with db.pool.acquire() as conn:
            now = dt.datetime.now(dt.UTC)
            return [shift_out(s) for s in await fleet_repo.list_current_shifts(conn, now)]
