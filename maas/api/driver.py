"""Drivers: signing in to a shift, the plan, positions, stop events, and the plan pushed live."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

import msgspec
from litestar import Controller, Request, WebSocket, get, post, websocket
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.params import FromPath, JSONBody

from maas.api.bookings import BookingOut, PassengersOut, booking_out
from maas.api.fleet import ShiftOut, VehicleOut, shift_out, vehicle_out
from maas.api.problems import problems
from maas.api.sockets import CONFLICT, FORBIDDEN, UNAUTHORIZED, push, refuse, socket_user
from maas.auth import roles
from maas.booking import Place
from maas.db.fleet import DriverShift
from maas.driving import MAX_POSITIONS, DriverService, PlannedStop, PositionFix, StopKind
from maas.errors import Invalid
from maas.eta import EtaSource
from maas.model import ShiftRecord, User
from maas.realtime import shift_topic
from maas.wire import Latitude, Longitude, Timestamp, iso, iso_or_none
from routing.dispatch.model import StopEvent


class Positions(msgspec.Struct, frozen=True, kw_only=True):
    """One fix (lat, lon, at, ...) or a batch of them under `positions`."""

    positions: list[PositionFix] | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None
    at: dt.datetime | None = None
    speed_mps: float | None = None  # checked with the fix: 0 to 100
    heading_deg: float | None = None  # checked with the fix: 0 to 360

    def fixes(self) -> list[PositionFix]:
        single = (self.lat, self.lon, self.at)
        if self.positions is not None:
            if any(v is not None for v in single):
                raise Invalid("give either one position or a list under positions, not both")
            return self.positions
        if any(v is None for v in single):
            raise Invalid("a position needs lat, lon and at")
        assert self.lat is not None and self.lon is not None and self.at is not None
        return [
            PositionFix(lat=self.lat, lon=self.lon, at=self.at, speed_mps=self.speed_mps, heading_deg=self.heading_deg)
        ]


class StopReport(msgspec.Struct, frozen=True, kw_only=True):
    booking_id: uuid.UUID
    event: StopEvent
    at: dt.datetime | None = None


class StopWindowOut(msgspec.Struct, frozen=True, kw_only=True):
    earliest: Timestamp | None  # None at a drop-off: only its latest time is promised
    latest: Timestamp


class StopOut(msgspec.Struct, frozen=True, kw_only=True):
    """A stop of the plan; where, whom and the promised window only at a booking's stop."""

    booking_id: str | None  # None at a break
    kind: StopKind
    planned_at: Timestamp | None
    place: Place | msgspec.UnsetType = msgspec.UNSET
    passengers: PassengersOut | msgspec.UnsetType = msgspec.UNSET
    name: str | msgspec.UnsetType | None = msgspec.UNSET
    phone: str | msgspec.UnsetType | None = msgspec.UNSET
    window: StopWindowOut | msgspec.UnsetType = msgspec.UNSET
    eta: Timestamp | None = None  # from the vehicle's latest GPS position when fresh, else the plan's time
    eta_source: EtaSource = "plan"


class DriverPlanOut(msgspec.Struct, frozen=True, kw_only=True):
    shift: ShiftOut
    stops: list[StopOut]


class PositionsAccepted(msgspec.Struct, frozen=True, kw_only=True):
    accepted: int
    vehicle_id: uuid.UUID


class EventOut(msgspec.Struct, frozen=True, kw_only=True):
    booking: BookingOut
    plan: DriverPlanOut
    notes: list[str]  # what could not be checked (no recent GPS position, say); the event was taken


SignInState = Literal["available", "yours", "taken"]


class SignedInOut(msgspec.Struct, frozen=True, kw_only=True):
    driver_id: uuid.UUID
    name: str
    since: Timestamp


class DriverShiftOut(msgspec.Struct, frozen=True, kw_only=True):
    """A shift a driver may take (or is on): its vehicle, its times, and who is signed in."""

    id: uuid.UUID
    vehicle: VehicleOut
    starts_at: Timestamp
    ends_at: Timestamp
    running: bool  # started and not ended
    assigned_to_you: bool  # False: an open shift, any driver may take it
    sign_in: SignInState  # available to you, yours (you are signed in), or taken by another driver
    signed_in: SignedInOut | None


def driver_shift_out(user: User, found: DriverShift, now: dt.datetime) -> DriverShiftOut:
    s = found.shift
    signed_in = None
    if s.signed_in_by is not None and s.signed_in_at is not None:
        signed_in = SignedInOut(driver_id=s.signed_in_by, name=found.signed_in_name or "", since=iso(s.signed_in_at))
    state: SignInState = "available" if s.signed_in_by is None else "yours" if s.signed_in_by == user.id else "taken"
    return DriverShiftOut(
        id=s.id,
        vehicle=vehicle_out(found.vehicle),
        starts_at=iso(s.starts_at),
        ends_at=iso(s.ends_at),
        running=s.starts_at <= now < s.ends_at,
        assigned_to_you=s.driver_id == user.id,
        sign_in=state,
        signed_in=signed_in,
    )


def stop_out(stop: PlannedStop) -> StopOut:
    booking_id = stop.id if stop.kind != "break" else None
    planned_at = iso_or_none(stop.planned_at)
    eta = iso_or_none(stop.eta)
    b = stop.booking
    if b is None:
        return StopOut(
            booking_id=booking_id, kind=stop.kind, planned_at=planned_at, eta=eta, eta_source=stop.eta_source
        )
    pickup = stop.kind == "pickup"
    return StopOut(
        booking_id=booking_id,
        kind=stop.kind,
        planned_at=planned_at,
        place=Place(lat=b.origin_lat, lon=b.origin_lon)
        if pickup
        else Place(lat=b.destination_lat, lon=b.destination_lon),
        passengers=PassengersOut(seated=b.seated, wheelchairs=b.wheelchairs),
        name=stop.name,
        phone=stop.phone,
        window=StopWindowOut(earliest=iso(b.pickup_earliest), latest=iso(b.pickup_latest))
        if pickup
        else StopWindowOut(earliest=None, latest=iso(b.dropoff_latest)),
        eta=eta,
        eta_source=stop.eta_source,
    )


async def plan_out(service: DriverService, shift: ShiftRecord) -> DriverPlanOut:
    return DriverPlanOut(shift=shift_out(shift), stops=[stop_out(s) for s in await service.plan(shift)])


def plan_message(plan: DriverPlanOut) -> dict[str, Any]:
    """The socket's message of a plan: the JSON of GET /driver/plan with its type."""
    return {"type": "plan", **msgspec.to_builtins(plan)}


class DriverController(Controller):
    path = "/driver"
    guards = [roles("driver")]

    @get("/shifts")
    async def shifts(
        self, request: Request[User, Any, Any], drivers: NamedDependency[DriverService]
    ) -> list[DriverShiftOut]:
        """The shifts you may take today, or are on: assigned to you or to nobody, with their vehicle."""
        now = dt.datetime.now(dt.UTC)
        return [driver_shift_out(request.user, s, now) for s in await drivers.list_shifts(request.user)]

    @post("/shifts/{shift_id:uuid}/sign-in", status_code=200)
    async def sign_in(
        self, request: Request[User, Any, Any], drivers: NamedDependency[DriverService], shift_id: FromPath[uuid.UUID]
    ) -> ShiftOut:
        """Take a shift assigned to you or to nobody (409 when another driver holds it, or while you
        are signed in to another shift)."""
        return shift_out(await drivers.sign_in(request.user, shift_id))

    @post("/shifts/{shift_id:uuid}/sign-out", status_code=200)
    async def sign_out(
        self, request: Request[User, Any, Any], drivers: NamedDependency[DriverService], shift_id: FromPath[uuid.UUID]
    ) -> ShiftOut:
        """Leave a shift you are signed in to (409 while riders are on board); an open one can be taken again."""
        return shift_out(await drivers.sign_out(request.user, shift_id))

    @get("/plan", responses=problems(409))
    async def plan(self, request: Request[User, Any, Any], drivers: NamedDependency[DriverService]) -> DriverPlanOut:
        """Your shift's next stops: what, where, when, whom, and the promised window."""
        return await plan_out(drivers, await drivers.get_shift(request.user))

    @post("/positions", status_code=202)
    async def positions(
        self, request: Request[User, Any, Any], drivers: NamedDependency[DriverService], data: JSONBody[Positions]
    ) -> PositionsAccepted:
        """Your vehicle's GPS fixes, one or up to 1000 at once (413 beyond)."""
        fixes = data.fixes()
        if len(fixes) > MAX_POSITIONS:
            raise HTTPException(
                status_code=413,
                detail=f"at most {MAX_POSITIONS} positions per request, got {len(fixes)}: send several batches",
            )
        shift = await drivers.get_shift(request.user)
        return PositionsAccepted(accepted=await drivers.record_positions(shift, fixes), vehicle_id=shift.vehicle_id)

    @post("/events", status_code=200)
    async def events(
        self, request: Request[User, Any, Any], drivers: NamedDependency[DriverService], data: JSONBody[StopReport]
    ) -> EventOut:
        """Arrived, picked up (after arriving), no-show (after waiting) or dropped off (after the pickup),
        checked against the promise and the vehicle's GPS position; the booking and your new plan."""
        shift = await drivers.get_shift(request.user)
        taken = await drivers.record_event(request.user, shift, data.booking_id, data.event, data.at)
        seen = await drivers.seen_by_driver(taken.booking)
        return EventOut(booking=booking_out(seen), plan=await plan_out(drivers, shift), notes=taken.notes)


@websocket("/ws/driver", exclude_from_auth=True)
async def driver_socket(socket: WebSocket[Any, Any, Any], drivers: NamedDependency[DriverService]) -> None:
    """Your shift's plan now and after every committed change to it (token in header or ?token=)."""
    user = await socket_user(socket)
    if user is None:
        return await refuse(socket, UNAUTHORIZED, "a valid bearer token is needed")
    if user.role != "driver":
        return await refuse(socket, FORBIDDEN, "this needs the role driver")
    shift = await drivers.find_shift(user)
    if shift is None:
        return await refuse(socket, CONFLICT, "sign in to a shift first")
    await socket.accept()

    async def render(message: dict[str, Any]) -> dict[str, Any] | None:
        if message["type"] not in ("plan", "resync"):
            return None
        return plan_message(await plan_out(drivers, shift))

    with drivers.hub.subscribe(shift_topic(shift.id)) as subscription:
        await push(socket, subscription, plan_message(await plan_out(drivers, shift)), render)
    return None
