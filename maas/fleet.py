"""The fleet's live plans inside the service: a Dispatcher kept in step with PostgreSQL.

Every change to plans (a booking, a cancellation, a stop event, a re-optimisation) runs in one
transaction that holds the fleet lock, checks the fleet's version number and rebuilds the
in-memory plans from the database when another process changed them, then writes the bookings,
the plans of the shifts it touched and a new version. A confirmation is therefore never sent
for a plan that did not commit, and two processes never plan on stale copies.

A booking is written one way only, by `maas_book` (migration 0015). Usually it is planned on the
process's copy without the lock, and that one database call takes the lock, checks that the chosen
shift has not changed since that copy, and writes; a phone booking (audited in the same
transaction) and a booking whose shift kept changing call it under the lock already held. Other processes' changes to other shifts do not stop it; they
are read afterwards. Inside a process, `mutex` keeps one coroutine at a time on the copy.

A refusal needs neither: while no change of this process is in flight on the copy (`unsettled`) and
its version is the last committed one (`holds`), a ride that does not fit on it fits no current plan.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg

from maas.db import Connection, locks
from maas.db import bookings as booking_repo
from maas.db import fleet as fleet_repo
from maas.errors import REFUSALS
from maas.model import BookingRecord, ServiceRules
from routing.dispatch.dispatcher import Dispatcher
from routing.dispatch.drive_times import DriveTimes
from routing.dispatch.model import DispatchError, Passengers, Promise, Request, RideRules, Vehicle, Weights
from routing.model import StreetArrays


def epoch(at: dt.datetime) -> float:
    return at.timestamp()


def request_of(b: BookingRecord, origin_node: int, destination_node: int) -> Request:
    return Request(
        id=str(b.id),
        origin_node=origin_node,
        destination_node=destination_node,
        passengers=Passengers(seated=b.seated, wheelchairs=b.wheelchairs),
        earliest_pickup_s=None if b.earliest_pickup is None else epoch(b.earliest_pickup),
        latest_arrival_s=None if b.latest_arrival is None else epoch(b.latest_arrival),
    )


def promise_of(b: BookingRecord) -> Promise:
    return Promise(
        pickup_earliest_s=epoch(b.pickup_earliest),
        pickup_latest_s=epoch(b.pickup_latest),
        dropoff_latest_s=epoch(b.dropoff_latest),
    )


class FleetService:
    """The process's copy of the plans: one Dispatcher over the shifts that have not ended."""

    def __init__(self, drive: StreetArrays, rules: RideRules | None = None) -> None:
        self.drive = drive
        self.rules = rules or RideRules()
        self.times = DriveTimes(drive)  # shared by every rebuilt Dispatcher, so places are searched once
        self.dispatcher: Dispatcher | None = None
        self.version = -1
        self.shift_vehicle: dict[str, uuid.UUID] = {}
        self.mutex = asyncio.Lock()  # held by whoever reads or changes the copy
        self._unsettled = 0  # changes to the copy in flight (planned, not yet committed or re-read)
        self._saved_start: dict[str, tuple[int, float]] = {}  # plan starts this process has written

    def follow(self, rules: ServiceRules) -> None:
        """Plan new rides by the ride rules of the service definition in force (booked rides keep their
        promises)."""
        wanted = RideRules(
            ride_factor=rules.ride_factor,
            ride_slack_s=float(rules.ride_slack_s),
            pickup_window_s=float(rules.pickup_window_s),
            boarding_s=float(rules.boarding_s),
            objective=Weights(drive=rules.objective.vehicle, wait=rules.objective.wait, ride=rules.objective.ride),
        )
        if wanted != self.rules:
            self.rules = wanted
            if self.dispatcher is not None:
                self.dispatcher.rules = wanted

    def snap(self, lat: float, lon: float) -> int:
        return self.times.snap(lat, lon)

    def requests_of(self, bookings: list[BookingRecord]) -> list[Request]:
        """The rides' requests, every origin and destination snapped in one look-up."""
        nodes = self.times.snap_many(
            [c for b in bookings for c in (b.origin_lat, b.destination_lat)],
            [c for b in bookings for c in (b.origin_lon, b.destination_lon)],
        )
        return [request_of(b, nodes[2 * k], nodes[2 * k + 1]) for k, b in enumerate(bookings)]

    async def current(
        self, conn: Connection, version: int | None = None, also: set[uuid.UUID] | None = None
    ) -> Dispatcher | None:
        """The plans as committed; call inside the transaction that holds the fleet lock (`version`:
        the fleet version already read under it), or, for a copy that only `book_ride` relies on,
        after `read_versions`. `also`: shifts to re-read even if no version changed them."""
        if version is None:
            version = await fleet_repo.fleet_version(conn)
        if self.dispatcher is None or version != self.version or also:
            with self.unsettled():
                changed = None
                if self.dispatcher is not None and 0 <= self.version <= version:
                    changed = await fleet_repo.changed_shifts(conn, self.version, version)
                if changed is not None:
                    changed |= also or set()
                if changed is not None:
                    await self._resync(conn, changed)
                else:
                    await self._reload(conn)
                self.version = version
        return self.dispatcher  # None while no vehicle is on shift

    def holds(self, version: int) -> bool:
        """Whether the copy is exactly the plans committed at fleet `version` (read since or written
        here), with no change of this process in flight: a ride that does not fit on it is refused."""
        return self._unsettled == 0 and self.version == version

    @contextlib.contextmanager
    def unsettled(self) -> Iterator[None]:
        """Around a change to the copy that has not committed yet (or a re-read under way): `holds` is
        False meanwhile, so that nobody refuses a ride for want of room taken by what may not commit."""
        self._unsettled += 1
        try:
            yield
        finally:
            self._unsettled -= 1

    @contextlib.asynccontextmanager
    async def changing(self, pool: asyncpg.Pool) -> AsyncIterator[Connection]:
        """A plan change that holds the fleet lock throughout: this process's turn on the copy, then a
        transaction that takes the lock. An error other than a refusal drops the copy, which may hold
        what did not commit."""
        async with self.mutex, pool.acquire() as conn:
            with self.guard(), self.unsettled():
                async with conn.transaction():
                    await locks.lock_fleet(conn)
                    yield conn

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Around a change to the copy: any error but a refusal (raised before anything changed) drops
        the copy, which may hold what did not commit; the next change rebuilds it."""
        try:
            yield
        except REFUSALS:
            raise
        except BaseException:
            self.forget()
            raise

    def forget(self) -> None:
        """Drop the in-memory plans (after a failed transaction): the next change rebuilds them."""
        self.dispatcher = None
        self.version = -1
        self._saved_start = {}

    async def _reload(self, conn: Connection) -> None:
        now = dt.datetime.now(dt.UTC)
        shifts = await fleet_repo.list_current_shifts(conn, now - dt.timedelta(hours=1))
        vehicles = {v.id: v for v in await fleet_repo.list_vehicles(conn)}
        fleet: list[Vehicle] = []
        self.shift_vehicle = {}
        for shift in shifts:
            record = vehicles[shift.vehicle_id]
            if not record.active:
                continue
            fleet.append(
                Vehicle(
                    id=str(shift.id),
                    seats=record.seats,
                    wheelchair_places=record.wheelchair_places,
                    depot_node=self.snap(record.depot_lat, record.depot_lon),
                    shift_start_s=epoch(shift.starts_at),
                    shift_end_s=epoch(shift.ends_at),
                )
            )
            self.shift_vehicle[str(shift.id)] = shift.vehicle_id
        if not fleet:
            self.dispatcher = None
            return
        dispatcher = Dispatcher(self.drive, fleet, self.rules, times=self.times)
        rides, plans = await fleet_repo.read_shifts(conn, [uuid.UUID(v.id) for v in fleet])
        self._restore(dispatcher, rides, plans)
        self.dispatcher = dispatcher

    def _restore(
        self, dispatcher: Dispatcher, rides: list[BookingRecord], plans: dict[uuid.UUID, fleet_repo.StoredPlan]
    ) -> bool:
        """Put stored rides and plans into `dispatcher`; False when a ride is already there (planned
        on a shift not being restored: the caller rebuilds everything)."""
        for booking, request in zip(rides, self.requests_of(rides), strict=True):
            if str(booking.id) in dispatcher.rides:
                return False
            dispatcher.restore(request, promise_of(booking), str(booking.shift_id), booking.status)
        for shift_id, plan in plans.items():
            dispatcher.set_plan(str(shift_id), [(rid, kind) for rid, kind in plan.stops if rid in dispatcher.rides])
            if plan.start is not None:
                dispatcher.vehicle_at(str(shift_id), self.snap(plan.start.lat, plan.start.lon), epoch(plan.start.at))
        return True

    async def _resync(self, conn: Connection, shifts: set[uuid.UUID]) -> None:
        """Re-read only the shifts that other processes changed: their rides and plans."""
        dispatcher = self.dispatcher
        assert dispatcher is not None
        if not all(str(s) in self.shift_vehicle for s in shifts):
            await self._reload(conn)  # a shift this copy does not know
            return
        rides, plans = await fleet_repo.read_shifts(conn, list(shifts))
        for shift in shifts:
            dispatcher.clear_vehicle(str(shift))
        if not self._restore(dispatcher, rides, plans):
            await self._reload(conn)

    async def book_ride(
        self, conn: Connection, booking: BookingRecord, area_version: int | None, idempotency_key: str | None
    ) -> booking_repo.BookOutcome:
        """Store a booking just planned on the copy (outside any transaction); on any outcome but
        'booked' the copy is brought back in line with the database before this returns. While the
        database decides (waiting for the fleet lock, maybe), the ride is off the copy, which then holds
        only what committed: refusals are decided on it meanwhile (`holds`)."""
        dispatcher = self.dispatcher
        assert dispatcher is not None and booking.shift_id is not None
        shift = str(booking.shift_id)
        stops = dispatcher.plan_of(shift)
        planned = dispatcher.booking(str(booking.id))
        dispatcher.withdraw(planned.id)
        with self.guard():
            outcome = await booking_repo.book(conn, self.version, area_version, booking, stops, idempotency_key)
        if outcome.outcome == "booked":
            assert outcome.version is not None
            with self.unsettled():
                # The plan as stored; nothing changed the copy meanwhile (the caller holds the mutex).
                dispatcher.restore(planned.request, planned.promise, shift, "confirmed")
                dispatcher.set_plan(shift, stops)
                if outcome.changed:  # other processes' changes to other shifts, committed before ours
                    await self._resync(conn, set(outcome.changed))
                self.version = outcome.version
        else:  # the ride planned here did not commit: re-read its shift with whatever else changed
            version, _ = await fleet_repo.read_versions(conn)
            await self.current(conn, version, also={booking.shift_id})
        return outcome

    async def commit(self, conn: Connection, shifts: set[str]) -> None:
        """Write the plans of `shifts` (with where each starts, once stop events moved it) and a new
        fleet version, in the caller's transaction."""
        assert self.dispatcher is not None
        for shift in shifts:
            start = self.dispatcher.start_of(shift)
            if start is not None and self._saved_start.get(shift) != start:
                node, at_s = start
                await fleet_repo.save_start(
                    conn,
                    uuid.UUID(shift),
                    fleet_repo.PlanStart(
                        lat=float(self.drive.node_lat[node]),
                        lon=float(self.drive.node_lon[node]),
                        at=dt.datetime.fromtimestamp(at_s, dt.UTC),
                    ),
                )
                self._saved_start[shift] = start
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
