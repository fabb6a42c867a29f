"""Operators: each vehicle's day as a timeline, shift by shift: served stops, then the plan's."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from maas.api.bookings import PassengersOut
from maas.api.driver import StopWindowOut
from maas.api.fleet import VehicleOut, vehicle_out
from maas.auth import roles
from maas.errors import Invalid
from maas.fleet_admin import DayPlan, DayStop, DayStopKind, FleetAdmin
from maas.model import BookingStatus
from maas.wire import Timestamp, iso, iso_or_none

PLANNED_DAYS = 366  # GET /fleet/plans answers for a day at most this far from today


class TimelineStopOut(msgspec.Struct, frozen=True, kw_only=True):
    """One stop of a shift's day. A served stop has the driver's time (`served_at`), one still to come
    the plan's (`planned_at`; None when the plan fell behind or does not hold the ride)."""

    kind: DayStopKind
    booking_id: uuid.UUID | None  # None at a break or the depot
    break_id: str | None
    planned_at: Timestamp | None  # the plan's time; the shift's start and end at the depot
    served_at: Timestamp | None  # when the driver reported it: picked up, no-show, dropped off
    window: StopWindowOut | None  # the promise: a pickup's window, a drop-off's latest time
    lat: float | None
    lon: float | None
    passengers: PassengersOut | None
    label: str | None  # the rider's name, or the phone caller's
    status: BookingStatus | None  # the booking's status now


class SignedInDriverOut(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    name: str | None


class ShiftPlanOut(msgspec.Struct, frozen=True, kw_only=True):
    shift_id: uuid.UUID
    starts_at: Timestamp
    ends_at: Timestamp
    vehicle: VehicleOut
    driver: SignedInDriverOut | None  # the driver signed in to the shift, if any
    stops: list[TimelineStopOut]  # from the depot back to it, in the order the vehicle serves them


def timeline_stop_out(stop: DayStop) -> TimelineStopOut:
    listed = stop.booking
    if listed is None:
        return TimelineStopOut(
            kind=stop.kind,
            booking_id=None,
            break_id=stop.break_id,
            planned_at=iso_or_none(stop.planned_at),
            served_at=iso_or_none(stop.served_at),
            window=None,
            lat=stop.lat,
            lon=stop.lon,
            passengers=None,
            label=None,
            status=None,
        )
    b = listed.booking
    pickup = stop.kind == "pickup"
    return TimelineStopOut(
        kind=stop.kind,
        booking_id=b.id,
        break_id=None,
        planned_at=iso_or_none(stop.planned_at),
        served_at=iso_or_none(stop.served_at),
        window=StopWindowOut(earliest=iso(b.pickup_earliest), latest=iso(b.pickup_latest))
        if pickup
        else StopWindowOut(earliest=None, latest=iso(b.dropoff_latest)),
        lat=stop.lat,
        lon=stop.lon,
        passengers=PassengersOut(seated=b.seated, wheelchairs=b.wheelchairs),
        label=listed.rider_name if b.rider_id is not None else b.caller_name,
        status=b.status,
    )


def shift_plan_out(plan: DayPlan) -> ShiftPlanOut:
    s = plan.shift.shift
    driver = None if s.signed_in_by is None else SignedInDriverOut(id=s.signed_in_by, name=plan.shift.signed_in_name)
    return ShiftPlanOut(
        shift_id=s.id,
        starts_at=iso(s.starts_at),
        ends_at=iso(s.ends_at),
        vehicle=vehicle_out(plan.shift.vehicle),
        driver=driver,
        stops=[timeline_stop_out(stop) for stop in plan.stops],
    )


class FleetPlanController(Controller):
    path = "/fleet/plans"
    guards = [roles("operator", "admin")]

    @get("/")
    async def day_plans(
        self,
        fleet_admin: NamedDependency[FleetAdmin],
        date: Annotated[
            dt.date | None,
            QueryParameter(description="the day (YYYY-MM-DD) in the network's time zone; today by default"),
        ] = None,
    ) -> list[ShiftPlanOut]:
        """Every shift running on the day, by start, with its vehicle, the driver signed in, and its stops
        from the depot back to it: those served (pickups, no-shows, drop-offs at the driver's times),
        then the plan's in order with their planned times, windows, places, passengers and names. A day
        more than a year from today is refused (422)."""
        today = dt.datetime.now(fleet_admin.serving.zone()).date()
        day = date or today
        if abs((day - today).days) > PLANNED_DAYS:
            raise Invalid(f"date: {day.isoformat()} lies more than a year from today ({today.isoformat()})")
        return [shift_plan_out(p) for p in await fleet_admin.day_plans(day)]
