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
from maas.fleet_admin import FleetAdmin
from maas.model import ShiftRecord, User, VehicleRecord
from maas.wire import Name, SeatCount, Timestamp, iso, iso_or_none


class NewVehicle(msgspec.Struct, frozen=True, kw_only=True):
    name: Name
    seats: SeatCount
    wheelchair_places: SeatCount = 0
    depot: Place


class NewShift(msgspec.Struct, frozen=True, kw_only=True):
    vehicle_id: uuid.UUID
    starts_at: dt.datetime
    ends_at: dt.datetime
    driver_id: uuid.UUID | None = None


class VehicleOut(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    name: str
    seats: int
    wheelchair_places: int
    depot: Place
    active: bool


class ShiftOut(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    vehicle_id: uuid.UUID
    driver_id: uuid.UUID | None  # the driver it is assigned to; None: any driver may take it
    starts_at: Timestamp
    ends_at: Timestamp
    signed_in_at: Timestamp | None
    signed_in_by: uuid.UUID | None  # the driver signed in to it now


def vehicle_out(v: VehicleRecord) -> VehicleOut:
    return VehicleOut(
        id=v.id,
        name=v.name,
        seats=v.seats,
        wheelchair_places=v.wheelchair_places,
        depot=Place(lat=v.depot_lat, lon=v.depot_lon),
        active=v.active,
    )


def shift_out(s: ShiftRecord) -> ShiftOut:
    return ShiftOut(
        id=s.id,
        vehicle_id=s.vehicle_id,
        driver_id=s.driver_id,
        starts_at=iso(s.starts_at),
        ends_at=iso(s.ends_at),
        signed_in_at=iso_or_none(s.signed_in_at),
        signed_in_by=s.signed_in_by,
    )


class FleetController(Controller):
    guards = [roles("operator", "admin")]

    @post("/vehicles")
    async def new_vehicle(
        self, request: Request[User, Any, Any], fleet_admin: NamedDependency[FleetAdmin], data: JSONBody[NewVehicle]
    ) -> VehicleOut:
        """Add a vehicle: seats, wheelchair places (each may also take the room of two seats), depot."""
        vehicle = await fleet_admin.add_vehicle(
            request.user, data.name, data.seats, data.wheelchair_places, data.depot.lat, data.depot.lon
        )
        return vehicle_out(vehicle)

    @get("/vehicles")
    async def vehicles(self, fleet_admin: NamedDependency[FleetAdmin]) -> list[VehicleOut]:
        return [vehicle_out(v) for v in await fleet_admin.list_vehicles()]

    @post("/shifts")
    async def new_shift(
        self, request: Request[User, Any, Any], fleet_admin: NamedDependency[FleetAdmin], data: JSONBody[NewShift]
    ) -> ShiftOut:
        """Put a vehicle on shift; its plans start empty and bookings can use it at once."""
        shift = await fleet_admin.add_shift(request.user, data.vehicle_id, data.starts_at, data.ends_at, data.driver_id)
        return shift_out(shift)

    @get("/shifts")
    async def shifts(self, fleet_admin: NamedDependency[FleetAdmin]) -> list[ShiftOut]:
        """Shifts that have not ended."""
        return [shift_out(s) for s in await fleet_admin.list_current_shifts()]
