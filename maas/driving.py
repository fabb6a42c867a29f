"""Drivers on shift: signing in, their plan, positions and stop events; planned times for everyone."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Iterable, Sequence
from typing import Literal, get_args

import asyncpg
import msgspec

from maas.alerts import NO_SHOW, delay_condition, raise_alert, resolve_alerts
from maas.db import Connection, audit, locks
from maas.db import bookings as booking_repo
from maas.db import fleet as fleet_repo
from maas.db import positions as position_repo
from maas.db import stops as stop_repo
from maas.db.database import Database
from maas.db.positions import Position
from maas.db.users import find_user
from maas.errors import Conflict, Invalid, NotFound
from maas.eta import Etas, EtaSource, ScheduledStop
from maas.fleet import FleetService
from maas.model import BookingRecord, ServiceRules, ShiftRecord, User
from maas.realtime import Hub, announce_positions
from maas.served import Serving
from maas.wire import Latitude, Longitude, iso
from routing.dispatch.dispatcher import Dispatcher
from routing.dispatch.model import DispatchError, StopEvent
from routing.spatial import haversine_m

MAX_POSITIONS = 1000  # per request; a phone that was offline for longer sends several batches
FUTURE_SLACK = dt.timedelta(seconds=60)  # phone clocks run a little ahead
OLDEST = dt.timedelta(hours=24)
# What a stop event makes of the booking's status (arrived changes none).
STATUS_AFTER = {StopEvent.PICKED_UP: "picked_up", StopEvent.DROPPED_OFF: "completed", StopEvent.NO_SHOW: "no_show"}
STATUS_BEFORE = {
    StopEvent.ARRIVED: "confirmed",
    StopEvent.PICKED_UP: "confirmed",
    StopEvent.NO_SHOW: "confirmed",
    StopEvent.DROPPED_OFF: "picked_up",
}

StopKind = Literal["pickup", "dropoff", "break"]
STOP_KINDS: tuple[StopKind, ...] = get_args(StopKind)
Stop = tuple[str, str, float | None]  # (booking or break id, 'pickup' | 'dropoff' | 'break', planned start)


def _kind(text: str) -> StopKind:
    for kind in STOP_KINDS:
        if kind == text:
            return kind
    raise ValueError(f"unknown stop kind {text!r}")


class PlannedStop(msgspec.Struct, frozen=True, kw_only=True):
    """One stop of a driver's plan: its booking (None for a break) and whom to pick up or drop off."""

    id: str  # the booking's id, or the break's
    kind: StopKind
    planned_at: dt.datetime | None  # None when the plan fell behind
    booking: BookingRecord | None
    name: str | None  # the rider's name, or the phone caller's
    phone: str | None = None  # their number, only when rules.drivers_see_phones allows it
    eta: dt.datetime | None = None  # from the vehicle's latest position, else the plan's time
    eta_source: EtaSource = "plan"


class PositionFix(msgspec.Struct, frozen=True, kw_only=True):
    """One GPS fix as a driver's phone sends it."""

    lat: Latitude
    lon: Longitude
    at: dt.datetime
    speed_mps: float | None = None  # checked by _check_fix, as the heading
    heading_deg: float | None = None


def _for_driver(booking: BookingRecord, phones: bool) -> BookingRecord:
    return booking if phones else msgspec.structs.replace(booking, caller_phone=None)


class Schedules:
    """Each shift's planned stops, computed under the fleet lock and kept until the fleet's version changes."""

    def __init__(self, db: Database, serving: Serving) -> None:
        self.db = db
        self.serving = serving
        self._fleet: FleetService | None = None  # the copy the cached stops were computed on
        self._version = -1
        self._stops: dict[uuid.UUID, list[ScheduledStop]] = {}

    async def of(self, shift_id: uuid.UUID) -> list[Stop]:
        """The shift's next stops with planned times (times None when the plan fell behind); [] if unplanned."""
        return [(s.id, s.kind, s.planned_s) for s in await self.stops(shift_id)]

    async def stops(self, shift_id: uuid.UUID) -> list[ScheduledStop]:
        """The shift's next stops with planned times, places, earliest starts, service and drive times
        (what an estimate from the vehicle's position needs); [] if unplanned."""
        fleet = self.serving.fleet()
        if fleet is None:
            return []
        async with fleet.mutex, self.db.pool.acquire() as conn:
            # Reading the version needs no lock: a cached answer is only used while nothing committed since.
            fresh = fleet is self._fleet and await fleet_repo.fleet_version(conn) == self._version
            if fresh and shift_id in self._stops:
                return self._stops[shift_id]
            async with conn.transaction():
                await locks.lock_fleet(conn)
                dispatcher = await fleet.current(conn)
                version = fleet.version
                if dispatcher is None or all(v.id != str(shift_id) for v in dispatcher.vehicles):
                    stops: list[ScheduledStop] = []
                else:
                    stops = _scheduled(dispatcher, str(shift_id))
        if version != self._version or fleet is not self._fleet:
            self._fleet, self._version, self._stops = fleet, version, {}
        self._stops[shift_id] = stops
        return stops

    async def planned(self, shift_ids: Iterable[uuid.UUID]) -> dict[tuple[str, str], float | None]:
        """The planned start (epoch seconds) of each stop of these shifts, by (booking or break id, kind)."""
        return {(s.id, s.kind): s.planned_s for shift_id in set(shift_ids) for s in await self.stops(shift_id)}


def _scheduled(dispatcher: Dispatcher, vehicle_id: str) -> list[ScheduledStop]:
    """The vehicle's stops as planned, with the drive between each and the next."""
    visits = dispatcher.visits_of(vehicle_id)
    try:
        planned: list[float | None] = [at_s for _, _, at_s in dispatcher.schedule(vehicle_id)]
    except DispatchError:
        planned = [None] * len(visits)
    out = []
    before: int | None = None
    for (rid, kind, node, earliest_s, service_s), at_s in zip(visits, planned, strict=True):
        out.append(
            ScheduledStop(
                id=rid,
                kind=kind,
                planned_s=at_s,
                node=node,
                earliest_s=earliest_s,
                service_s=service_s,
                drive_s=None if before is None else dispatcher.times.seconds(before, node),
            )
        )
        before = node
    return out


def _at(epoch_s: float | None) -> dt.datetime | None:
    return None if epoch_s is None else booking_repo.utc(epoch_s)


def _check_time(at: dt.datetime, now: dt.datetime, what: str) -> None:
    if at.tzinfo is None:
        raise Invalid(f"{what}: times need a UTC offset, e.g. 2026-11-27T09:10:00+01:00")
    if at > now + FUTURE_SLACK:
        raise Invalid(f"{what}: {at.isoformat()} lies in the future")
    if at < now - OLDEST:
        raise Invalid(f"{what}: {at.isoformat()} is more than {OLDEST} old")


def _check_fix(fix: PositionFix, now: dt.datetime, n: int) -> None:
    what = f"position {n}"
    if not (math.isfinite(fix.lat) and math.isfinite(fix.lon) and -90 <= fix.lat <= 90 and -180 <= fix.lon <= 180):
        raise Invalid(f"{what}: {fix.lat},{fix.lon} is not a latitude,longitude")
    _check_time(fix.at, now, what)
    if fix.speed_mps is not None and not (0 <= fix.speed_mps <= 100):
        raise Invalid(f"{what}: speed_mps must be between 0 and 100")
    if fix.heading_deg is not None and not (0 <= fix.heading_deg <= 360):
        raise Invalid(f"{what}: heading_deg must be between 0 and 360")


class EventOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """A stop event taken: the booking as it is now, and what could not be checked."""

    booking: BookingRecord
    notes: list[str]


def _distance(metres: float) -> str:
    return f"{metres:.0f} m" if metres < 1000 else f"{metres / 1000:.1f} km"


class DriverService:
    def __init__(self, db: Database, serving: Serving, hub: Hub, schedules: Schedules, etas: Etas) -> None:
        self.db = db
        self.serving = serving
        self.hub = hub
        self.schedules = schedules
        self.etas = etas

    def _zone(self) -> dt.tzinfo:
        """The network's time zone, in which drivers read times and days."""
        return self.serving.zone()

    def _local(self, at: dt.datetime) -> str:
        return f"{at.astimezone(self._zone()):%H:%M}"

    async def list_shifts(self, user: User) -> list[fleet_repo.DriverShift]:
        """The shifts the driver may take today (in the network's time zone) or is on: assigned to
        them or to nobody, not ended, starting before tomorrow."""
        now = dt.datetime.now(dt.UTC)
        zone = self._zone()
        today = now.astimezone(zone).date()
        tomorrow = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
        async with self.db.pool.acquire() as conn:
            return await fleet_repo.list_driver_shifts(conn, user.id, now, tomorrow)

    async def sign_in(self, user: User, shift_id: uuid.UUID) -> ShiftRecord:
        """Take a shift assigned to `user` or to nobody; Conflict when another driver holds it or
        `user` is signed in to another shift (one at a time)."""
        now = dt.datetime.now(dt.UTC)
        async with self.db.pool.acquire() as conn, conn.transaction():
            await locks.lock_fleet(conn)  # two drivers racing for an unassigned shift: one wins
            shift = await fleet_repo.find_shift(conn, shift_id)
            if shift is None or shift.ends_at <= now:
                raise NotFound(f"no current shift {shift_id}")
            if shift.driver_id is not None and shift.driver_id != user.id:
                raise Conflict(f"shift {shift_id} is assigned to another driver")
            if shift.signed_in_by == user.id:
                return shift
            if shift.signed_in_by is not None:
                raise Conflict(f"another driver is signed in to shift {shift_id}")
            await fleet_repo.end_past_sign_ins(conn, user.id, now)
            other = await fleet_repo.find_signed_in_shift(conn, user.id, now)
            if other is not None:
                vehicle = await fleet_repo.find_vehicle(conn, other.vehicle_id)
                name = vehicle.name if vehicle is not None else str(other.vehicle_id)
                raise Conflict(
                    f"you are signed in to shift {other.id} ({name}, until {self._local(other.ends_at)});"
                    f" sign out of it first: POST /driver/shifts/{other.id}/sign-out",
                    signed_in_shift=str(other.id),
                )
            # The lock makes both refusals below unreachable; the database backs them for any other writer.
            try:
                taken = await fleet_repo.sign_in(conn, shift_id, user.id)
            except asyncpg.UniqueViolationError:
                raise Conflict("you are signed in to another shift; sign out of it first") from None
            if not taken:
                raise Conflict(f"another driver is signed in to shift {shift_id}")
            await audit.record(conn, user.id, "sign_in", str(shift_id), {"vehicle": str(shift.vehicle_id)})
            signed = await fleet_repo.find_shift(conn, shift_id)
        assert signed is not None
        return signed

    async def sign_out(self, user: User, shift_id: uuid.UUID) -> ShiftRecord:
        """End `user`'s sign-in to the shift (it can be taken again if it is not assigned to them);
        Conflict when they are not signed in to it or riders are still on board."""
        async with self.db.pool.acquire() as conn, conn.transaction():
            await locks.lock_fleet(conn)
            shift = await fleet_repo.find_shift(conn, shift_id)
            if shift is None:
                raise NotFound(f"no shift {shift_id}")
            if shift.signed_in_by != user.id:
                raise Conflict(f"you are not signed in to shift {shift_id}")
            aboard = await fleet_repo.count_on_board(conn, shift_id)
            if aboard:
                rides = "1 ride is" if aboard == 1 else f"{aboard} rides are"
                raise Conflict(f"{rides} on board: report the drop-offs before signing out")
            await fleet_repo.sign_out(conn, shift_id)
            await audit.record(conn, user.id, "sign_out", str(shift_id), {"vehicle": str(shift.vehicle_id)})
            signed_out = await fleet_repo.find_shift(conn, shift_id)
        assert signed_out is not None
        return signed_out

    async def find_shift(self, user: User) -> ShiftRecord | None:
        """The driver's current shift: the one, not ended, they are signed in to."""
        async with self.db.pool.acquire() as conn:
            return await fleet_repo.find_signed_in_shift(conn, user.id, dt.datetime.now(dt.UTC))

    async def get_shift(self, user: User) -> ShiftRecord:
        shift = await self.find_shift(user)
        if shift is None:
            raise Conflict("sign in to a shift first: GET /driver/shifts lists yours")
        return shift

    async def plan(self, shift: ShiftRecord) -> list[PlannedStop]:
        """The shift's next stops, with where, whom and what was promised."""
        stops = await self.schedules.stops(shift.id)
        eta = await self.etas.vehicle(shift.vehicle_id, stops)
        async with self.db.pool.acquire() as conn:
            bookings = {str(b.id): b for b in await booking_repo.list_active(conn) if b.shift_id == shift.id}
            riders: dict[uuid.UUID, tuple[str, str | None]] = {}
            for b in bookings.values():
                if b.rider_id is not None and b.rider_id not in riders:
                    rider = await find_user(conn, b.rider_id)
                    riders[b.rider_id] = (rider.name, rider.phone) if rider else ("", None)
            phones = await self._drivers_see_phones(conn)
        out = []
        for stop, estimate in zip(stops, eta.stops, strict=True):
            booking = bookings.get(stop.id)
            name, phone = None, None
            if booking is not None and booking.rider_id is None:
                name, phone = booking.caller_name, booking.caller_phone
            elif booking is not None and booking.rider_id is not None:
                name, phone = riders.get(booking.rider_id, ("", None))
            out.append(
                PlannedStop(
                    id=stop.id,
                    kind=_kind(stop.kind),
                    planned_at=_at(stop.planned_s),
                    booking=None if booking is None else _for_driver(booking, phones),
                    name=name,
                    phone=phone if phones else None,
                    eta=_at(estimate.eta_s),
                    eta_source=eta.source,
                )
            )
        return out

    async def _drivers_see_phones(self, conn: Connection) -> bool:
        definition = await self.serving.definition(conn)
        return definition is not None and definition.rules.drivers_see_phones

    async def seen_by_driver(self, booking: BookingRecord) -> BookingRecord:
        """The booking as its driver sees it: a phone caller's number only when the rules allow it."""
        async with self.db.pool.acquire() as conn:
            return _for_driver(booking, await self._drivers_see_phones(conn))

    async def record_positions(self, shift: ShiftRecord, fixes: Sequence[PositionFix]) -> int:
        """Store a batch of the shift's vehicle's positions and tell every process; returns how many."""
        if len(fixes) > MAX_POSITIONS:
            raise Invalid(f"at most {MAX_POSITIONS} positions per request, got {len(fixes)}")
        if not fixes:
            raise Invalid("no positions given")
        now = dt.datetime.now(dt.UTC)
        for n, fix in enumerate(fixes):
            _check_fix(fix, now, n)
        fleet = self.serving.fleet()
        if fleet is not None:  # a fix off every road (0,0: a phone without GPS) cannot be a bus's
            try:
                fleet.times.snap_many([f.lat for f in fixes], [f.lon for f in fixes])
            except DispatchError as exc:
                raise Invalid(f"a position off the served roads: {exc}") from None
        positions = [
            Position(
                vehicle_id=shift.vehicle_id,
                at=f.at,
                lat=f.lat,
                lon=f.lon,
                speed_mps=f.speed_mps,
                heading_deg=f.heading_deg,
            )
            for f in fixes
        ]
        async with self.db.pool.acquire() as conn, conn.transaction():
            await position_repo.insert_positions(conn, positions)
            await announce_positions(conn, positions)
        for p in positions:  # this process reads its own writes before the notification comes back
            self.hub.note(p)
        await self.etas.check_delays(shift, await self.schedules.stops(shift.id))
        return len(positions)

    async def _check_place(
        self,
        conn: Connection,
        rules: ServiceRules,
        shift: ShiftRecord,
        at: dt.datetime,
        lat: float,
        lon: float,
        stop: str,
    ) -> str | None:
        """Invalid when the vehicle's GPS fix of the event's time lies beyond the stop radius; a note
        when there is no recent fix to check against."""
        fix = await position_repo.find_position_before(conn, shift.vehicle_id, at + FUTURE_SLACK)
        max_age = dt.timedelta(seconds=rules.position_max_age_s)
        if fix is None or fix.at < at - max_age:
            return (
                f"no GPS position of the vehicle in the {rules.position_max_age_s} s before {self._local(at)}:"
                f" the {stop} was not checked against where the vehicle was"
            )
        metres = float(haversine_m(fix.lat, fix.lon, lat, lon))
        if metres > rules.stop_radius_m:
            raise Invalid(
                f"the vehicle was {_distance(metres)} from the {stop} at {self._local(fix.at)}"
                f" (a stop event needs it within {rules.stop_radius_m:.0f} m)"
            )
        return None

    async def _check_order(
        self, conn: Connection, rules: ServiceRules, booking: BookingRecord, event: StopEvent, at: dt.datetime
    ) -> tuple[float, float, str]:
        """Conflict when an earlier stop event is missing or the rider's wait is not over, Invalid when
        the event's time cannot be (before the one it follows, or before the rider may board); the
        stop's place and what it is called."""
        if event is StopEvent.DROPPED_OFF:
            picked_up = await stop_repo.find_last(conn, booking.id, "picked_up")
            if picked_up is not None and at < picked_up:
                raise Invalid(f"dropped_off at {self._local(at)} before the pickup at {self._local(picked_up)}")
            return booking.destination_lat, booking.destination_lon, "drop-off"
        pickup = (booking.origin_lat, booking.origin_lon, "pickup")
        if event is StopEvent.ARRIVED:
            return pickup
        arrived = await stop_repo.find_arrival(conn, booking.id)
        if arrived is None:
            why = "a no-show counts from the arrival" if event is StopEvent.NO_SHOW else "report arrived first"
            raise Conflict(f"{event.value} before arrived at the pickup: {why}")
        if at < arrived:
            raise Invalid(f"{event.value} at {self._local(at)} before the arrival at {self._local(arrived)}")
        if event is StopEvent.PICKED_UP:
            if at < booking.pickup_earliest - dt.timedelta(seconds=rules.early_pickup_s):
                early = math.ceil((booking.pickup_earliest - at).total_seconds() / 60)
                raise Invalid(
                    f"picked_up at {self._local(at)} is {early} min before the pickup window opens at"
                    f" {self._local(booking.pickup_earliest)}; riders board at most"
                    f" {rules.early_pickup_s // 60} min early"
                )
        else:
            allowed = max(arrived, booking.pickup_earliest) + dt.timedelta(seconds=rules.no_show_wait_s)
            if at < allowed:
                raise Conflict(
                    f"wait for the rider until {self._local(allowed)}: a no-show counts"
                    f" {rules.no_show_wait_s // 60} min after the arrival or the window's start, whichever is later",
                    allowed_at=allowed.isoformat(),
                )
        return pickup

    async def record_event(
        self, user: User, shift: ShiftRecord, booking_id: uuid.UUID, event: StopEvent, at: dt.datetime | None
    ) -> EventOutcome:
        """Check a stop event against the booking's earlier events, its promise and the vehicle's
        position, then apply it to the plans and the booking, committed together."""
        now = dt.datetime.now(dt.UTC)
        at = at or now
        _check_time(at, now, "at")
        fleet = self.serving.fleet()
        if fleet is None:
            raise Conflict("no on-demand service is configured (serve a network built with --osm)")
        async with fleet.changing(self.db.pool) as conn:
            booking = await booking_repo.find_booking(conn, booking_id)
            if booking is None or booking.shift_id != shift.id:
                raise NotFound(f"no booking {booking_id} on your shift")
            if booking.status != STATUS_BEFORE[event]:
                raise Conflict(f"the booking is {booking.status}; {event.value} needs it {STATUS_BEFORE[event]}")
            definition = await self.serving.definition(conn)
            rules = definition.rules if definition is not None else ServiceRules()
            place = await self._check_order(conn, rules, booking, event, at)
            note = await self._check_place(conn, rules, shift, at, *place)
            notes = [] if note is None else [note]
            if event is StopEvent.ARRIVED:
                await stop_repo.record_arrival(conn, booking_id, user.id, at, note)
                return EventOutcome(booking=booking, notes=notes)
            dispatcher = await fleet.current(conn)
            if dispatcher is None or str(booking_id) not in dispatcher.rides:
                raise Conflict(f"booking {booking_id} is not in the current plans")
            at_s = at.timestamp()
            if event is StopEvent.PICKED_UP:
                # The Dispatcher keeps the drop-off's earliest time from the promised window, so
                # an early pickup would leave a drop-off that must happen before it may: plan as if
                # the ride began when its window opened.
                at_s = max(at_s, booking.pickup_earliest.timestamp())
            dispatcher.record(str(booking_id), event, at_s)
            status = STATUS_AFTER[event]
            await booking_repo.set_status(conn, booking_id, status, user.id, note, at)
            await _alert_on(conn, msgspec.structs.replace(booking, status=status), event, at)
            await fleet.commit(conn, {str(shift.id)})
        return EventOutcome(booking=msgspec.structs.replace(booking, status=status), notes=notes)


async def _alert_on(conn: Connection, booking: BookingRecord, event: StopEvent, at: dt.datetime) -> None:
    """A stop event's alerts: a no-show is raised; a delay is over at the stop the vehicle served."""
    if event is StopEvent.PICKED_UP:
        await resolve_alerts(conn, booking.id, [delay_condition("pickup")], f"picked up at {iso(at)}")
        return
    what = "dropped off" if event is StopEvent.DROPPED_OFF else "reported as a no-show"
    await resolve_alerts(conn, booking.id, [delay_condition("%")], f"{what} at {iso(at)}")
    if event is StopEvent.NO_SHOW:
        detail = (
            f"no-show: the rider was not at the pickup; reported by the driver at {iso(at)}"
            f" (pickup window from {iso(booking.pickup_earliest)} to {iso(booking.pickup_latest)})"
        )
        await raise_alert(conn, "no_show", "warning", NO_SHOW, booking, detail)


__all__ = ["DriverService", "EventOutcome", "PlannedStop", "PositionFix", "Schedules"]
