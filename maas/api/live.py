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
from maas.eta import Etas, EtaSource
from maas.fleet_admin import FleetAdmin
from maas.model import BookingRecord, BookingStatus, User
from maas.realtime import FLEET, PositionOut, booking_topic, position_out, shift_topic, vehicle_topic
from maas.wire import Timestamp, iso

FOLLOWED = ("confirmed", "picked_up")  # a ride's vehicle is visible only until the rider leaves it
ALERTS = ("delay", "on_time")  # maas.eta's messages: passed on to the rider of their booking only


class RideVehicleOut(msgspec.Struct, frozen=True, kw_only=True):
    """A booking's vehicle: where it is and when it is expected at the rider's next stop."""

    booking_id: uuid.UUID
    status: BookingStatus
    vehicle_id: uuid.UUID | None
    position: PositionOut | None
    eta: Timestamp | None  # from the vehicle's latest GPS position when fresh, else the plan's time
    eta_stop: Literal["pickup", "dropoff"] | None
    stops_before: int | None
    eta_source: EtaSource | None = None  # gps, or plan (no position, or older than rules.position_max_age_s)
    position_age_s: float | None = None
    planned_at: Timestamp | None = None  # the plan's time at that stop
    late_s: int | None = None  # eta - planned_at, from GPS only
    note: str | None = None  # why the plan's time is shown, when it is


class NextStopOut(msgspec.Struct, frozen=True, kw_only=True):
    id: str  # the booking's id, or the break's
    kind: str
    eta: Timestamp | None
    planned_at: Timestamp | None


class FleetVehicleOut(msgspec.Struct, frozen=True, kw_only=True):
    vehicle: VehicleOut
    position: PositionOut | None
    shift: ShiftOut | None  # the shift it is on now
    planned_stops: int | None
    eta_source: EtaSource | None = None  # what next_stop's eta rests on; None off shift
    position_age_s: float | None = None
    next_stop: NextStopOut | None = None


def _at(epoch_s: float | None) -> str | None:
    return None if epoch_s is None else iso(utc(epoch_s))


async def ride_view(etas: Etas, schedules: Schedules, b: BookingRecord) -> RideVehicleOut:
    """The booking's vehicle: where it is and when it is expected at the rider's next stop."""
    if b.status not in FOLLOWED or b.vehicle_id is None or b.shift_id is None:
        return RideVehicleOut(
            booking_id=b.id, status=b.status, vehicle_id=None, position=None, eta=None, eta_stop=None, stops_before=None
        )
    position = etas.hub.latest.get(b.vehicle_id)
    kind: Literal["pickup", "dropoff"] = "pickup" if b.status == "confirmed" else "dropoff"
    vehicle_eta = await etas.vehicle(b.vehicle_id, await schedules.stops(b.shift_id))
    found = vehicle_eta.of(str(b.id), kind)
    eta, planned, stops_before, late_s = None, None, None, None
    if found is not None:
        stops_before, stop = found
        eta, planned = _at(stop.eta_s), _at(stop.planned_s)
        if vehicle_eta.source == "gps" and stop.eta_s is not None and stop.planned_s is not None:
            late_s = round(stop.eta_s - stop.planned_s)
    return RideVehicleOut(
        booking_id=b.id,
        status=b.status,
        vehicle_id=b.vehicle_id,
        position=None if position is None else position_out(position),
        eta=eta,
        eta_stop=kind,
        stops_before=stops_before,
        eta_source=vehicle_eta.source,
        position_age_s=vehicle_eta.position_age_s,
        planned_at=planned,
        late_s=late_s,
        note=vehicle_eta.note,
    )


async def fleet_view(fleet_admin: FleetAdmin, etas: Etas, schedules: Schedules) -> list[FleetVehicleOut]:
    """Every vehicle with its latest position, the shift it is on now, how many stops it has planned
    and when it is expected at the next."""
    out = []
    rules = await etas.rules()
    for now in await fleet_admin.now():
        position = etas.hub.latest.get(now.vehicle.id)
        source, age_s, next_stop = None, None, None
        if now.shift is not None:
            vehicle_eta = etas.estimate(now.vehicle.id, await schedules.stops(now.shift.id), rules)
            source, age_s = vehicle_eta.source, vehicle_eta.position_age_s
            if vehicle_eta.stops:
                first = vehicle_eta.stops[0]
                next_stop = NextStopOut(
                    id=first.id, kind=first.kind, eta=_at(first.eta_s), planned_at=_at(first.planned_s)
                )
        out.append(
            FleetVehicleOut(
                vehicle=vehicle_out(now.vehicle),
                position=None if position is None else position_out(position),
                shift=None if now.shift is None else shift_out(now.shift),
                planned_stops=now.planned_stops,
                eta_source=source,
                position_age_s=age_s,
                next_stop=next_stop,
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
        etas: NamedDependency[Etas],
        schedules: NamedDependency[Schedules],
        booking_id: FromPath[uuid.UUID],
    ) -> RideVehicleOut:
        """Your ride's vehicle: latest position and expected time at your pickup (or drop-off once aboard),
        from its GPS when fresh, else the plan's."""
        booking = await bookings.get(request.user, booking_id)
        return await ride_view(etas, schedules, booking)


class FleetLiveController(Controller):
    path = "/fleet"
    guards = [roles("operator", "admin")]

    @get("/live")
    async def live(
        self,
        fleet_admin: NamedDependency[FleetAdmin],
        etas: NamedDependency[Etas],
        schedules: NamedDependency[Schedules],
    ) -> list[FleetVehicleOut]:
        """Every vehicle: latest position, current shift, planned stops, expected time at the next stop."""
        return await fleet_view(fleet_admin, etas, schedules)


@websocket("/ws/bookings/{booking_id:uuid}", exclude_from_auth=True)
async def ride_socket(
    socket: WebSocket[Any, Any, Any],
    bookings: NamedDependency[BookingService],
    etas: NamedDependency[Etas],
    schedules: NamedDependency[Schedules],
    booking_id: FromPath[uuid.UUID],
) -> None:
    """Your ride's vehicle, pushed on each of its positions, each plan change and each status change;
    delay alerts of your ride ("delay", "on_time") as they are raised."""
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
        if message["type"] in ALERTS:
            return message if message.get("booking_id") == str(booking_id) else None
        if message["type"] in ("booking", "resync"):
            current = await bookings.get(user, booking_id)
        elif message["type"] == "positions" and message.get("vehicle_id") != str(current.vehicle_id):
            return None
        return _message(message["type"], await ride_view(etas, schedules, current))

    topics = [booking_topic(booking.id)]
    if booking.vehicle_id is not None and booking.shift_id is not None:
        topics += [vehicle_topic(booking.vehicle_id), shift_topic(booking.shift_id)]
    with etas.hub.subscribe(*topics) as subscription:
        await push(socket, subscription, _message("snapshot", await ride_view(etas, schedules, booking)), render)
    return None


@websocket("/ws/fleet", exclude_from_auth=True)
async def fleet_socket(
    socket: WebSocket[Any, Any, Any],
    fleet_admin: NamedDependency[FleetAdmin],
    etas: NamedDependency[Etas],
    schedules: NamedDependency[Schedules],
) -> None:
    """Operators: the fleet now, then every position batch, plan change, booking status change and
    delay alert."""
    user = await socket_user(socket)
    if user is None:
        return await refuse(socket, UNAUTHORIZED, "a valid bearer token is needed")
    if user.role not in ("operator", "admin"):
        return await refuse(socket, FORBIDDEN, "this needs the role operator or admin")
    await socket.accept()

    async def render(message: dict[str, Any]) -> dict[str, Any] | None:
        if message["type"] == "resync":
            return _snapshot(await fleet_view(fleet_admin, etas, schedules))
        return message

    with etas.hub.subscribe(FLEET) as subscription:
        await push(socket, subscription, _snapshot(await fleet_view(fleet_admin, etas, schedules)), render)
    return None
