"""Arrival times from the vehicle's GPS, and delay alerts.

The plan's times say when a vehicle would be at its stops if everything went as planned. Once a
driver's phone sends positions, the estimate starts from the latest one instead: the drive time on
the dispatcher's drive graph from where the vehicle is, at the time of that fix, along the stops it
still has to serve in plan order, with the service time at each stop, and never before a stop's
earliest start (a bus waits for a pickup window to open). A position older than
`rules.position_max_age_s` no longer says where the vehicle is: the plan's times are shown, and the
answers say so (`eta_source`, `position_age_s`).

A ride is late when its next stop's estimate (the pickup while it waits, the drop-off once aboard)
lies more than `rules.delay_alert_s` after the plan's time for that stop, which is what the rider
was last told and always lies inside the promise (when the plan fell behind, the promise's latest
time is the reference). Riders of ioki or Via hear of a bus running late before it breaks the
window, so the alert does not wait for the promise to break; whether it does is in the message
(`promise_broken`). An alert is pushed once on crossing the threshold and again for every further
step of `delay_alert_s`; dropping back below the threshold pushes "on_time" once. Smaller swings
are not repeated (GPS noise would otherwise alert on every ping). Each ride's delay is also one alert
of the operators' inbox (maas/alerts.py), updated at every step and resolved when on time again.
"""

from __future__ import annotations

import collections
import datetime as dt
import math
import uuid
from collections.abc import Sequence
from typing import Any, Literal

import msgspec
import numpy as np
import numpy.typing as npt

from maas.alerts import delay_condition, raise_alert, resolve_alerts
from maas.db import delays as delay_repo
from maas.db.bookings import add_event, list_active, utc
from maas.db.database import Database
from maas.db.positions import Position
from maas.model import AlertSeverity, BookingRecord, ServiceRules, ShiftRecord
from maas.realtime import Hub, announce
from maas.served import Serving
from maas.wire import iso
from routing.dispatch.drive_times import UNREACHABLE_S, DriveTimes
from routing.dispatch.model import DispatchError
from routing.streets import StreetRouter, reversed_graph

EtaSource = Literal["gps", "plan"]
RideStop = Literal["pickup", "dropoff"]
KEEP_SEARCHES = 64  # backward searches kept, one per stop a vehicle is heading to


class ScheduledStop(msgspec.Struct, frozen=True, kw_only=True):
    """One stop of a vehicle's plan, with what an estimate from elsewhere needs."""

    id: str  # the booking's id, or the break's
    kind: str  # pickup | dropoff | break
    planned_s: float | None  # the plan's start of service (epoch seconds); None when the plan fell behind
    node: int  # drive-graph node
    earliest_s: float  # service starts no earlier (a pickup window's opening, a break's)
    service_s: float  # boarding, alighting or the break's length
    drive_s: float | None  # driving seconds from the stop before; None for the first stop


class StopEta(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    kind: str
    planned_s: float | None
    eta_s: float | None  # the estimate of its start of service: from GPS, else the plan's


class VehicleEta(msgspec.Struct, frozen=True, kw_only=True):
    """A vehicle's estimated times at its next stops, and what they rest on."""

    source: EtaSource
    position_at: dt.datetime | None
    position_age_s: float | None
    stops: list[StopEta]
    note: str | None = None  # why the plan's times are shown, when they are

    def of(self, stop_id: str, kind: str) -> tuple[int, StopEta] | None:
        """(how many stops come before, the estimate) of one stop, if planned."""
        for n, stop in enumerate(self.stops):
            if stop.id == stop_id and stop.kind == kind:
                return n, stop
        return None


class DriveToStops:
    """Driving seconds from anywhere on the drive graph to a stop: one backward street search per stop,
    the latest few kept, so that a vehicle's every new position costs one array look-up. (Adding each
    position as a place of DriveTimes would grow its matrix with every ping.)"""

    def __init__(self, times: DriveTimes, keep: int = KEEP_SEARCHES) -> None:
        self.times = times
        self._router = StreetRouter(reversed_graph(times.graph), "travel_time_s")
        self._keep = keep
        self._to: collections.OrderedDict[int, npt.NDArray[np.float64]] = collections.OrderedDict()

    def seconds(self, origin: int, stop: int) -> float:
        known = self._to.get(stop)
        if known is None:
            nodes, costs = self._router.search(np.array([stop], dtype=np.int32))
            known = np.full(self.times.graph.n_nodes, UNREACHABLE_S)
            known[nodes] = costs
            self._to[stop] = known
            if len(self._to) > self._keep:
                self._to.popitem(last=False)
        else:
            self._to.move_to_end(stop)
        return float(known[origin])


def _plan_times(stops: Sequence[ScheduledStop]) -> list[StopEta]:
    return [StopEta(id=s.id, kind=s.kind, planned_s=s.planned_s, eta_s=s.planned_s) for s in stops]


def estimate(
    stops: Sequence[ScheduledStop],
    position: Position | None,
    now: dt.datetime,
    max_age_s: float,
    to_stops: DriveToStops | None,
) -> VehicleEta:
    """The stops' estimated times from `position` at its time, or the plan's when it is missing, older
    than `max_age_s` at `now`, or off the roads."""
    if position is None:
        return VehicleEta(source="plan", position_at=None, position_age_s=None, stops=_plan_times(stops))
    age_s = max((now - position.at).total_seconds(), 0.0)

    def planned(note: str) -> VehicleEta:
        return VehicleEta(
            source="plan", position_at=position.at, position_age_s=age_s, stops=_plan_times(stops), note=note
        )

    if age_s > max_age_s:
        return planned(f"the latest position is {age_s:.0f} s old (rules.position_max_age_s: {max_age_s:.0f})")
    if stops and to_stops is None:
        return planned("no drive graph is served")
    out = []
    if stops:
        assert to_stops is not None
        try:
            here = to_stops.times.snap(position.lat, position.lon)
        except DispatchError:
            return planned("the latest position is off the roads")
        t = position.at.timestamp()
        for n, stop in enumerate(stops):
            drive = to_stops.seconds(here, stop.node) if n == 0 else stop.drive_s
            if drive is None or drive >= UNREACHABLE_S:
                return planned("a stop cannot be reached from the latest position")
            start = max(t + drive, stop.earliest_s)
            out.append(StopEta(id=stop.id, kind=stop.kind, planned_s=stop.planned_s, eta_s=start))
            t = start + stop.service_s
    return VehicleEta(source="gps", position_at=position.at, position_age_s=age_s, stops=out)


class RideDelay(msgspec.Struct, frozen=True, kw_only=True):
    """How late a ride's next stop is expected, against the plan's time (else the promise)."""

    booking_id: uuid.UUID
    stop: RideStop
    eta: dt.datetime
    planned_at: dt.datetime
    promised_latest: dt.datetime
    late_s: int  # may be negative: early
    level: int  # whole steps of rules.delay_alert_s late; 0 below the threshold

    @property
    def minutes_late(self) -> int:
        return max(round(self.late_s / 60), 0)

    @property
    def promise_broken(self) -> bool:
        return self.eta > self.promised_latest


def ride_delay(booking: BookingRecord, eta: VehicleEta, alert_s: float) -> RideDelay | None:
    """The booking's delay at its next stop, when the estimate rests on GPS and the stop is planned."""
    if eta.source != "gps" or booking.status not in ("confirmed", "picked_up"):
        return None
    stop: RideStop = "pickup" if booking.status == "confirmed" else "dropoff"
    found = eta.of(str(booking.id), stop)
    if found is None or found[1].eta_s is None:
        return None
    estimate_s = found[1].eta_s
    promised = booking.pickup_latest if stop == "pickup" else booking.dropoff_latest
    reference_s = found[1].planned_s if found[1].planned_s is not None else promised.timestamp()
    late_s = round(estimate_s - reference_s)
    return RideDelay(
        booking_id=booking.id,
        stop=stop,
        eta=utc(estimate_s),
        planned_at=utc(reference_s),
        promised_latest=promised,
        late_s=late_s,
        level=max(math.floor(late_s / alert_s), 0) if late_s >= alert_s else 0,
    )


def delay_message(kind: Literal["delay", "on_time"], delay: RideDelay, shift: ShiftRecord) -> dict[str, Any]:
    """The socket message of an alert: to the rider's booking and to the operators' fleet."""
    return {
        "type": kind,
        "booking_id": str(delay.booking_id),
        "vehicle_id": str(shift.vehicle_id),
        "shift_id": str(shift.id),
        "stop": delay.stop,
        "late_s": delay.late_s,
        "minutes_late": delay.minutes_late,
        "eta": iso(delay.eta),
        "planned_at": iso(delay.planned_at),
        "promised_latest": iso(delay.promised_latest),
        "promise_broken": delay.promise_broken,
    }


def _reason(kind: Literal["delay", "on_time"], delay: RideDelay) -> str:
    """The booking event's reason: what the rider and the operator were told."""
    if kind == "on_time":
        return f"on time again: {delay.stop} expected at {iso(delay.eta)}, planned {iso(delay.planned_at)}"
    broken = ", after the promised latest time" if delay.promise_broken else ""
    return f"delay: {delay.stop} {delay.minutes_late} min late, expected at {iso(delay.eta)}{broken}"


class Etas:
    """Estimates of the served network's vehicles, and the delay alerts their positions raise."""

    def __init__(self, db: Database, serving: Serving, hub: Hub) -> None:
        self.db = db
        self.serving = serving
        self.hub = hub
        self._to_stops: DriveToStops | None = None

    async def rules(self) -> ServiceRules:
        """The rules of the service definition in force (the defaults while none is set)."""
        async with self.db.pool.acquire() as conn:
            definition = await self.serving.definition(conn)
        return definition.rules if definition is not None else ServiceRules()

    def _drive(self) -> DriveToStops | None:
        fleet = self.serving.fleet()
        if fleet is None:
            return None
        known = self._to_stops
        if known is None or known.times is not fleet.times:  # a new network: its own drive graph
            known = self._to_stops = DriveToStops(fleet.times)
        return known

    def estimate(
        self, vehicle_id: uuid.UUID, stops: Sequence[ScheduledStop], rules: ServiceRules, now: dt.datetime | None = None
    ) -> VehicleEta:
        """The vehicle's estimated times at `stops` from its latest position known to this process."""
        return estimate(
            stops,
            self.hub.latest.get(vehicle_id),
            now or dt.datetime.now(dt.UTC),
            rules.position_max_age_s,
            self._drive(),
        )

    async def vehicle(self, vehicle_id: uuid.UUID, stops: Sequence[ScheduledStop]) -> VehicleEta:
        return self.estimate(vehicle_id, stops, await self.rules())

    async def check_delays(self, shift: ShiftRecord, stops: Sequence[ScheduledStop]) -> list[dict[str, Any]]:
        """After new positions of the shift's vehicle: record and push every ride's delay alert that
        crossed the threshold or grew by another step, and every recovery; returns the messages."""
        rules = await self.rules()
        eta = self.estimate(shift.vehicle_id, stops, rules)
        if eta.source != "gps":
            return []
        planned = {s.id for s in stops}
        messages = []
        async with self.db.pool.acquire() as conn, conn.transaction():
            for booking in await list_active(conn):
                if booking.shift_id != shift.id or str(booking.id) not in planned:
                    continue
                delay = ride_delay(booking, eta, rules.delay_alert_s)
                if delay is None:
                    continue
                facts = (delay.late_s, delay.eta, delay.planned_at)
                if delay.level > 0:
                    changed = await delay_repo.raise_level(conn, booking.id, delay.stop, delay.level, *facts)
                    kind: Literal["delay", "on_time"] = "delay"
                else:
                    changed = await delay_repo.clear(conn, booking.id, delay.stop, *facts)
                    kind = "on_time"
                if not changed:
                    continue
                message = delay_message(kind, delay, shift)
                reason = _reason(kind, delay)
                await add_event(conn, booking.id, booking.status, None, reason)
                await announce(conn, message)
                if kind == "delay":
                    severity: AlertSeverity = "critical" if delay.promise_broken else "warning"
                    await raise_alert(conn, "delay", severity, delay_condition(delay.stop), booking, reason)
                else:
                    await resolve_alerts(conn, booking.id, [delay_condition(delay.stop)], reason)
                messages.append(message)
        return messages


__all__ = [
    "DriveToStops",
    "EtaSource",
    "Etas",
    "RideDelay",
    "ScheduledStop",
    "StopEta",
    "VehicleEta",
    "delay_message",
    "estimate",
    "ride_delay",
]
