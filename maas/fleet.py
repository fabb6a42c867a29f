"""The fleet's live plans inside the service: a Dispatcher kept in step with PostgreSQL.

Every change to plans (a booking, a cancellation, a stop event, a re-optimisation) runs in one
transaction that holds the fleet lock, checks the fleet's version number and rebuilds the
in-memory plans from the database when another process changed them, then writes the bookings,
the plans of the shifts it touched and a new version. A confirmation is therefore never sent
for a plan that did not commit, and two processes never plan on stale copies.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid

import asyncpg

from maas.db import bookings as booking_repo
from maas.db import fleet as fleet_repo
from maas.model import BookingRecord
from routing.dispatch.dispatcher import Dispatcher, DriveTimes
from routing.dispatch.model import DispatchError, Passengers, Promise, Request, RideRules, Vehicle
from routing.model import StreetArrays


def epoch(at: dt.datetime) -> float:
    return at.timestamp()


def request_of(b: BookingRecord, origin_node: int, destination_node: int) -> Request:
    return Request(
        id=str(b.id), origin_node=origin_node, destination_node=destination_node,
        passengers=Passengers(seated=b.seated, wheelchairs=b.wheelchairs),
        earliest_pickup_s=None if b.earliest_pickup is None else epoch(b.earliest_pickup),
        latest_arrival_s=None if b.latest_arrival is None else epoch(b.latest_arrival),
    )


def promise_of(b: BookingRecord) -> Promise:
    return Promise(pickup_earliest_s=epoch(b.pickup_earliest), pickup_latest_s=epoch(b.pickup_latest),
                   dropoff_latest_s=epoch(b.dropoff_latest))


class FleetService:
    """The process's copy of the plans: one Dispatcher over the shifts that have not ended."""

    def __init__(self, drive: StreetArrays, rules: RideRules | None = None) -> None:
        self.drive = drive
        self.rules = rules or RideRules()
        self.times = DriveTimes(drive)  # shared by every rebuilt Dispatcher, so places are searched once
        self.dispatcher: Dispatcher | None = None
        self.version = -1
        self.shift_vehicle: dict[str, uuid.UUID] = {}

    def snap(self, lat: float, lon: float) -> int:
        return self.times.snap(lat, lon)

    async def current(self, conn: asyncpg.Connection, version: int | None = None) -> Dispatcher | None:
        """The plans as committed; call inside the transaction that holds the fleet lock (`version`:
        the fleet version already read under it)."""
        if version is None:
            version = await fleet_repo.fleet_version(conn)
        if self.dispatcher is None or version != self.version:
            changed = None
            if self.dispatcher is not None and 0 <= self.version < version:
                changed = await fleet_repo.changed_shifts(conn, self.version, version)
            if changed is not None and all(str(s) in self.shift_vehicle for s in changed):
                await self._resync(conn, changed)
            else:
                await self._reload(conn)
            self.version = version
        return self.dispatcher  # None while no vehicle is on shift

    def forget(self) -> None:
        """Drop the in-memory plans (after a failed transaction): the next change rebuilds them."""
        self.dispatcher = None
        self.version = -1

    async def _reload(self, conn: asyncpg.Connection) -> None:
        now = dt.datetime.now(dt.UTC)
        shifts = await fleet_repo.list_current_shifts(conn, now - dt.timedelta(hours=1))
        vehicles = {v.id: v for v in await fleet_repo.list_vehicles(conn)}
        fleet: list[Vehicle] = []
        self.shift_vehicle = {}
        for shift in shifts:
            record = vehicles[shift.vehicle_id]
            if not record.active:
                continue
            fleet.append(Vehicle(id=str(shift.id), seats=record.seats, wheelchair_places=record.wheelchair_places,
                                 depot_node=self.snap(record.depot_lat, record.depot_lon),
                                 shift_start_s=epoch(shift.starts_at), shift_end_s=epoch(shift.ends_at)))
            self.shift_vehicle[str(shift.id)] = shift.vehicle_id
        if not fleet:
            self.dispatcher = None
            return
        dispatcher = Dispatcher(self.drive, fleet, self.rules, times=self.times)
        shift_ids = {v.id for v in fleet}
        for booking in await booking_repo.list_active(conn):
            if booking.shift_id is None or str(booking.shift_id) not in shift_ids:
                continue
            request = request_of(booking, self.snap(booking.origin_lat, booking.origin_lon),
                                 self.snap(booking.destination_lat, booking.destination_lon))
            dispatcher.restore(request, promise_of(booking), str(booking.shift_id), booking.status)
        plans = await fleet_repo.load_plans(conn, [uuid.UUID(s) for s in shift_ids])
        for shift_id, stops in plans.items():
            known = [(rid, kind) for rid, kind in stops if rid in dispatcher.rides]
            dispatcher.set_plan(str(shift_id), known)
        self.dispatcher = dispatcher

    async def _resync(self, conn: asyncpg.Connection, shifts: set[uuid.UUID]) -> None:
        """Re-read only the shifts that other processes changed: their rides and plans."""
        dispatcher = self.dispatcher
        assert dispatcher is not None
        for shift in shifts:
            dispatcher.clear_vehicle(str(shift))
        for booking in await booking_repo.list_active_for_shifts(conn, list(shifts)):
            if str(booking.id) in dispatcher.rides:  # moved here from a shift not in the set: cannot be
                await self._reload(conn)
                return
            request = request_of(booking, self.snap(booking.origin_lat, booking.origin_lon),
                                 self.snap(booking.destination_lat, booking.destination_lon))
            dispatcher.restore(request, promise_of(booking), str(booking.shift_id), booking.status)
        for shift_id, stops in (await fleet_repo.load_plans(conn, list(shifts))).items():
            dispatcher.set_plan(str(shift_id), [(rid, kind) for rid, kind in stops if rid in dispatcher.rides])

    async def commit(self, conn: asyncpg.Connection, shifts: set[str]) -> None:
        """Write the plans of `shifts` and a new fleet version, in the caller's transaction."""
        assert self.dispatcher is not None
        if len(shifts) == 1:
            (shift,) = shifts
            self.version = await fleet_repo.save_plan_and_bump(conn, uuid.UUID(shift), self.dispatcher.plan_of(shift))
            return
        for shift in shifts:
            await fleet_repo.save_plan(conn, uuid.UUID(shift), self.dispatcher.plan_of(shift))
        self.version = await fleet_repo.bump_fleet_version(conn)
        await fleet_repo.note_change(conn, self.version, [uuid.UUID(s) for s in shifts])
        if self.version % 1000 == 0:
            await fleet_repo.forget_old_changes(conn)


def now_s() -> float:
    return time.time()


__all__ = ["DispatchError", "FleetService", "epoch", "now_s", "promise_of", "request_of"]
