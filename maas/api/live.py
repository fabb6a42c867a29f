"""Following vehicles live: riders their ride's vehicle and arrival time, operators the whole fleet."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from litestar import Controller, Request, WebSocket, get, websocket
from litestar.di import NamedDependency
from litestar.params import FromPath

from maas.api.fleet import shift_out, vehicle_out
from maas.api.sockets import FORBIDDEN, NOT_FOUND, UNAUTHORIZED, push, refuse, socket_user
from maas.auth import roles
from maas.booking import BookingService
from maas.db import fleet as fleet_repo
from maas.db.bookings import utc
from maas.db.database import Database
from maas.driving import Schedules
from maas.errors import NotFound
from maas.model import BookingRecord, User
from maas.realtime import FLEET, Hub, booking_topic, position_out, shift_topic, vehicle_topic

FOLLOWED = ("confirmed", "picked_up")  # a ride's vehicle is visible only until the rider leaves it


async def ride_view(
    hub: NamedDependency[Hub], schedules: NamedDependency[Schedules], b: BookingRecord
) -> dict[str, Any]:
    """The booking's vehicle: where it is and when it is planned at the rider's next stop."""
    out: dict[str, Any] = {
        "booking_id": str(b.id),
        "status": b.status,
        "vehicle_id": None,
        "position": None,
        "eta": None,
        "eta_stop": None,
        "stops_before": None,
    }
    if b.status not in FOLLOWED or b.vehicle_id is None or b.shift_id is None:
        return out
    out["vehicle_id"] = str(b.vehicle_id)
    position = hub.latest.get(b.vehicle_id)
    out["position"] = None if position is None else position_out(position)
    kind = "pickup" if b.status == "confirmed" else "dropoff"
    out["eta_stop"] = kind
    for n, (rid, stop_kind, at_s) in enumerate(await schedules.of(b.shift_id)):
        if rid == str(b.id) and stop_kind == kind:
            out["eta"] = None if at_s is None else utc(at_s).isoformat()
            out["stops_before"] = n
            break
    return out


async def fleet_view(db: NamedDependency[Database], hub: NamedDependency[Hub]) -> list[dict[str, Any]]:
    """Every vehicle with its latest position, the shift it is on now and how many stops it has planned."""
    now = dt.datetime.now(dt.UTC)
    async with db.pool.acquire() as conn:
        vehicles = await fleet_repo.list_vehicles(conn)
        running = {s.vehicle_id: s for s in await fleet_repo.list_current_shifts(conn, now) if s.starts_at <= now}
        plans = await fleet_repo.load_plans(conn, [s.id for s in running.values()])
    out = []
    for v in vehicles:
        shift = running.get(v.id)
        position = hub.latest.get(v.id)
        out.append(
            {
                "vehicle": vehicle_out(v),
                "position": None if position is None else position_out(position),
                "shift": None if shift is None else shift_out(shift),
                "planned_stops": None if shift is None else len(plans.get(shift.id, [])),
            }
        )
    return out


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
    ) -> dict[str, Any]:
        """Your ride's vehicle: latest position and planned time at your pickup (or drop-off once aboard)."""
        booking = await bookings.get(request.user, booking_id)
        return await ride_view(hub, schedules, booking)


class FleetLiveController(Controller):
    path = "/fleet"
    guards = [roles("operator", "admin")]

    @get("/live")
    async def live(self, db: NamedDependency[Database], hub: NamedDependency[Hub]) -> list[dict[str, Any]]:
        """Every vehicle: latest position, current shift, planned stops."""
        return await fleet_view(db, hub)


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
        return {"type": message["type"], **await ride_view(hub, schedules, current)}

    topics = [booking_topic(booking.id)]
    if booking.vehicle_id is not None and booking.shift_id is not None:
        topics += [vehicle_topic(booking.vehicle_id), shift_topic(booking.shift_id)]
    with hub.subscribe(*topics) as subscription:
        await push(socket, subscription, {"type": "snapshot", **await ride_view(hub, schedules, booking)}, render)
    return None


@websocket("/ws/fleet", exclude_from_auth=True)
async def fleet_socket(
    socket: WebSocket[Any, Any, Any], db: NamedDependency[Database], hub: NamedDependency[Hub]
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
            return {"type": "snapshot", "vehicles": await fleet_view(db, hub)}
        return message

    with hub.subscribe(FLEET) as subscription:
        await push(socket, subscription, {"type": "snapshot", "vehicles": await fleet_view(db, hub)}, render)
    return None
