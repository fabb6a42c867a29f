"""Following vehicles live: riders their ride's vehicle and arrival time, operators the whole fleet."""

from __future__ import annotations

import uuid
from typing import Any, Literal

import msgspec
from litestar import Controller, Request, WebSocket, get, websocket
from litestar.di import NamedDependency
from litestar.params import FromPath

from maas.api.fleet import ShiftOut, VehicleOut, shift_out, vehicle_out
from maas.api.sockets import FORBIDDEN, NOT_FOUND, UNAUTHORIZED, push, refuse, socket_user
from maas.auth import roles
from maas.booking import BookingService
from maas.db.bookings import utc
from maas.driving import Schedules
from maas.errors import NotFound
from maas.fleet_admin import FleetAdmin
from maas.model import BookingRecord, BookingStatus, User
from maas.realtime import FLEET, Hub, PositionOut, booking_topic, position_out, shift_topic, vehicle_topic
from maas.wire import Timestamp, iso

FOLLOWED = ("confirmed", "picked_up")  # a ride's vehicle is visible only until the rider leaves it


class RideVehicleOut(msgspec.Struct, frozen=True, kw_only=True):
    """A booking's vehicle: where it is and when it is planned at the rider's next stop."""

    booking_id: uuid.UUID
    status: BookingStatus
    vehicle_id: uuid.UUID | None
    position: PositionOut | None
    eta: Timestamp | None
    eta_stop: Literal["pickup", "dropoff"] | None
    stops_before: int | None


class FleetVehicleOut(msgspec.Struct, frozen=True, kw_only=True):
    vehicle: VehicleOut
    position: PositionOut | None
    shift: ShiftOut | None  # the shift it is on now
    planned_stops: int | None


async def ride_view(hub: Hub, schedules: Schedules, b: BookingRecord) -> RideVehicleOut:
    """The booking's vehicle: where it is and when it is planned at the rider's next stop."""
    if b.status not in FOLLOWED or b.vehicle_id is None or b.shift_id is None:
        return RideVehicleOut(
            booking_id=b.id, status=b.status, vehicle_id=None, position=None, eta=None, eta_stop=None, stops_before=None
        )
    position = hub.latest.get(b.vehicle_id)
    kind: Literal["pickup", "dropoff"] = "pickup" if b.status == "confirmed" else "dropoff"
    eta, stops_before = None, None
    for n, (rid, stop_kind, at_s) in enumerate(await schedules.of(b.shift_id)):
        if rid == str(b.id) and stop_kind == kind:
            eta, stops_before = None if at_s is None else iso(utc(at_s)), n
            break
    return RideVehicleOut(
        booking_id=b.id,
        status=b.status,
        vehicle_id=b.vehicle_id,
        position=None if position is None else position_out(position),
        eta=eta,
        eta_stop=kind,
        stops_before=stops_before,
    )


async def fleet_view(fleet_admin: FleetAdmin, hub: Hub) -> list[FleetVehicleOut]:
    """Every vehicle with its latest position, the shift it is on now and how many stops it has planned."""
    out = []
    for now in await fleet_admin.now():
        position = hub.latest.get(now.vehicle.id)
        out.append(
            FleetVehicleOut(
                vehicle=vehicle_out(now.vehicle),
                position=None if position is None else position_out(position),
                shift=None if now.shift is None else shift_out(now.shift),
                planned_stops=now.planned_stops,
            )
        )
    return out


def _message(kind: str, view: RideVehicleOut) -> dict[str, Any]:
    return {"type": kind, **msgspec.to_builtins(view)}


def _snapshot(vehicles: list[FleetVehicleOut]) -> dict[str, Any]:
    return {"type": "snapshot", "vehicles": msgspec.to_builtins(vehicles)}


class RideVehicleController(Controller):
    path = "/bookings"

    @get("/{booking_id:uuid}/vehicle", guards=[roles("rider", "operator", "admin")])
    async def ride_vehicle(
        self,
        request: Request[User, Any, Any],
        bookings: NamedDependency[BookingService],
        hub: NamedDependency[Hub],
        schedules: NamedDependency[Schedules],
        booking_id: FromPath[uuid.UUID],
    ) -> RideVehicleOut:
        """Your ride's vehicle: latest position and planned time at your pickup (or drop-off once aboard)."""
        booking = await bookings.get(request.user, booking_id)
        return await ride_view(hub, schedules, booking)


class FleetLiveController(Controller):
    path = "/fleet"
    guards = [roles("operator", "admin")]

    @get("/live")
    async def live(self, fleet_admin: NamedDependency[FleetAdmin], hub: NamedDependency[Hub]) -> list[FleetVehicleOut]:
        """Every vehicle: latest position, current shift, planned stops."""
        return await fleet_view(fleet_admin, hub)


@websocket("/ws/bookings/{booking_id:uuid}", exclude_from_auth=True)
async def ride_socket(
    socket: WebSocket[Any, Any, Any],
    bookings: NamedDependency[BookingService],
    hub: NamedDependency[Hub],
    schedules: NamedDependency[Schedules],
    booking_id: FromPath[uuid.UUID],
) -> None:
    """Your ride's vehicle, pushed on each of its positions, each plan change and each status change."""
    user = await socket_user(socket)
    if user is None:
        return await refuse(socket, UNAUTHORIZED, "a valid bearer token is needed")
    if user.role not in ("rider", "operator", "admin"):
        return await refuse(socket, FORBIDDEN, "this needs the role rider, operator or admin")
    try:
        booking = await bookings.get(user, booking_id)
    except NotFound as exc:
        return await refuse(socket, NOT_FOUND, str(exc))
    await socket.accept()
    current = booking

    async def render(message: dict[str, Any]) -> dict[str, Any] | None:
        nonlocal current
        if message["type"] in ("booking", "resync"):
            current = await bookings.get(user, booking_id)
        elif message["type"] == "positions" and message.get("vehicle_id") != str(current.vehicle_id):
            return None
        return _message(message["type"], await ride_view(hub, schedules, current))

    topics = [booking_topic(booking.id)]
    if booking.vehicle_id is not None and booking.shift_id is not None:
        topics += [vehicle_topic(booking.vehicle_id), shift_topic(booking.shift_id)]
    with hub.subscribe(*topics) as subscription:
        await push(socket, subscription, _message("snapshot", await ride_view(hub, schedules, booking)), render)
    return None


@websocket("/ws/fleet", exclude_from_auth=True)
async def fleet_socket(
    socket: WebSocket[Any, Any, Any], fleet_admin: NamedDependency[FleetAdmin], hub: NamedDependency[Hub]
) -> None:
    """Operators: the fleet now, then every position batch, plan change and booking status change."""
    user = await socket_user(socket)
    if user is None:
        return await refuse(socket, UNAUTHORIZED, "a valid bearer token is needed")
    if user.role not in ("operator", "admin"):
        return await refuse(socket, FORBIDDEN, "this needs the role operator or admin")
    await socket.accept()

    async def render(message: dict[str, Any]) -> dict[str, Any] | None:
        if message["type"] == "resync":
            return _snapshot(await fleet_view(fleet_admin, hub))
        return message

    with hub.subscribe(FLEET) as subscription:
        await push(socket, subscription, _snapshot(await fleet_view(fleet_admin, hub)), render)
    return None
