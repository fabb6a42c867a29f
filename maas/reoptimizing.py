"""Periodic re-optimisation of the live plans: the day's rides re-planned as a whole, now and then.

Bookings are planned one at a time, each at its cheapest place in the plans as they then are; over a
day the plans drift from what a planner looking at every ride at once would drive. Every
`rules.reoptimize_every_s`, and `AFTER_CANCELLATION_S` after a cancellation or no-show freed room
(several in a row make one run), one process of the database (it holds the REOPTIMIZER advisory
lock) takes a snapshot of the plans, lets the large neighbourhood search and OR-Tools improve it in a
worker process for `rules.reoptimize_time_limit_s` (the event loop goes on serving), and adopts the
result under the fleet lock only if

- the plans it started from are the plans in force (else it is stale and dropped),
- every stored promise holds on the new schedule: pickup window, latest drop-off, ride time, seats
  and wheelchair places, the shift,
- no rider on board changes vehicle, and a vehicle already on its way keeps its next stop,
- it saves a meaningful share of the fleet's driving (MIN_SAVING_S, MIN_SAVING_SHARE).

Adopted plans are written like every other plan change (FleetService.commit: a new fleet version,
so other processes follow; the plan triggers tell drivers and operators), moved rides get their new
vehicle and an event, and every run is a row of `reoptimizations` (GET /fleet/reoptimizations) and an
audit entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import logging
import multiprocessing
import multiprocessing.pool
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np

from maas.background import bounded, end_tasks, wake_or_timeout
from maas.db import Connection, audit, locks
from maas.db import bookings as booking_repo
from maas.db import fleet as fleet_repo
from maas.db import reoptimizations as run_repo
from maas.db.database import Database
from maas.errors import Conflict, Invalid
from maas.fleet import FleetService, now_s
from maas.model import (
    BookingRecord,
    ReoptimizationOutcome,
    ReoptimizationRecord,
    ReoptimizationTrigger,
    ServiceRules,
)
from maas.realtime import FLEET, Hub, Subscription, announce
from maas.served import Serving
from routing.dispatch.dispatcher import SEARCH_SHARE, Dispatcher
from routing.dispatch.insertion import Planner
from routing.dispatch.model import Problem, Route
from routing.dispatch.optimize import improve_plans

log = logging.getLogger(__name__)

# A result is adopted only when it saves at least this much driving, and this share of it: moving
# riders between buses for a few seconds is not worth the drivers' confusion.
MIN_SAVING_S = 60.0
MIN_SAVING_SHARE = 0.01
# A cancellation (or no-show) is followed by a run this much later; more of them meanwhile make one.
AFTER_CANCELLATION_S = 30.0
# The rules are read again this often (a new definition may switch re-optimisation on or off).
RULES_RECHECK_S = 60.0
# A scheduled run is skipped when some process started one within this share of the period (the
# processes' timers drift apart; one run per period is enough).
PERIOD_SHARE = 0.9
# The worker gets this long beyond the time limit (starting a process, moving the problem) before
# the run is given up and the worker replaced.
WORKER_GRACE_S = 60.0
# Booking statuses whose announcement frees room in a plan.
FREEING = ("cancelled", "no_show")
MAX_RUNS_LISTED = 500
# Promised times are compared with this tolerance (the kernel's schedule is exact to float noise).
TOLERANCE_S = 1e-3


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The plans as a compact Problem for the search, and what adopting its result is checked against."""

    dispatcher: Dispatcher  # the copy the snapshot was taken of
    version: int  # its fleet version
    problem: Problem  # vehicles leave their start no earlier than `taken_s`, unless already on their way
    routes: list[Route]  # compact node ids
    slots: Route  # each compact node's slot in the dispatcher
    taken_s: float
    rides: int  # rides planned (waiting for pickup or on board)


@dataclass(frozen=True, slots=True)
class RunStart:
    """Why and when a run began, and who asked (None: the service itself)."""

    trigger: ReoptimizationTrigger
    actor: uuid.UUID | None
    started_at: dt.datetime
    began: float  # time.perf_counter()

    @classmethod
    def now(cls, trigger: ReoptimizationTrigger, actor: uuid.UUID | None = None) -> RunStart:
        return cls(trigger=trigger, actor=actor, started_at=dt.datetime.now(dt.UTC), began=time.perf_counter())


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a run's result comes to: adopt it or not, and why."""

    outcome: ReoptimizationOutcome
    detail: str
    drive_before_s: float
    drive_after_s: float | None
    routes: list[Route] | None = None  # slots per vehicle, when adopted
    moved: tuple[str, ...] = ()  # rides that change vehicle


def driving_s(problem: Problem, routes: Sequence[Route]) -> float:
    """Seconds the fleet drives along `routes` (node ids of `problem`), from each start to each end."""
    total = 0.0
    for v, route in enumerate(routes):
        seq = np.concatenate(([problem.vehicle_start[v]], np.asarray(route), [problem.vehicle_end[v]])).astype(np.int64)
        places = problem.location[seq] if problem.location is not None else seq
        total += float(problem.travel[places[:-1], places[1:]].sum())
    return total


def leaving_after(
    problem: Problem, routes: Sequence[Route], now_s: float, fixed: np.ndarray | None = None
) -> tuple[Problem, set[int]]:
    """`problem` with no vehicle leaving its start before `now_s`, except the vehicles (returned) whose
    plan needs them to have left already: they are on their way to their next stop. `fixed`: as for
    Planner (a live plan's own)."""
    earliest = problem.earliest_s.copy()
    starts = problem.vehicle_start
    earliest[starts] = np.maximum(earliest[starts], now_s)
    held = msgspec.structs.replace(problem, earliest_s=earliest)
    planner = Planner(held, fixed_vehicle=fixed)
    running = {v for v, route in enumerate(routes) if planner.schedule(v, np.asarray(route, np.int32)) is None}
    for v in running:
        earliest[starts[v]] = problem.earliest_s[starts[v]]
    return held, running


def judge(
    dispatcher: Dispatcher,
    snapshot: Snapshot,
    routes: Sequence[Route],
    version: int,
    stored: Sequence[BookingRecord],
    now: float,
) -> Verdict:
    """Whether `routes` (compact node ids of `snapshot`) may replace the plans of `dispatcher` (the copy in
    force at fleet `version`, `stored` its active rides as committed): an exact check of every rule."""
    current = [r.copy() for r in dispatcher.routes]
    live = dispatcher.problem()
    before = driving_s(live, current)
    if dispatcher is not snapshot.dispatcher:
        return Verdict(
            outcome="stale",
            detail="the plans were read afresh since the snapshot",
            drive_before_s=before,
            drive_after_s=None,
        )
    slots = np.asarray(snapshot.slots, dtype=np.int32)
    proposed = [slots[np.asarray(r, dtype=np.int64)] for r in routes]
    after = driving_s(live, proposed)

    def verdict(outcome: ReoptimizationOutcome, detail: str) -> Verdict:
        return Verdict(outcome=outcome, detail=detail, drive_before_s=before, drive_after_s=after)

    visits_now = sorted(itertools.chain.from_iterable(r.tolist() for r in current))
    visits_new = sorted(itertools.chain.from_iterable(r.tolist() for r in proposed))
    if len(proposed) != len(current) or visits_now != visits_new:
        if version != snapshot.version:
            return verdict(
                "stale", f"the plans changed since the snapshot (fleet version {snapshot.version} -> {version})"
            )
        return verdict("rejected", "the result does not visit every planned stop exactly once")
    # The plans in force, with no vehicle leaving before now unless it is on its way already.
    held, running = leaving_after(live, current, now, dispatcher.fixed)
    planner = Planner(held, fixed_vehicle=dispatcher.fixed)
    names = [v.id for v in dispatcher.vehicles]
    for v in running:
        if len(current[v]) and (not len(proposed[v]) or proposed[v][0] != current[v][0]):
            return verdict("rejected", f"shift {names[v]} is on its way to its next stop, which would change")
    times: dict[int, tuple[int, float]] = {}  # slot -> (vehicle, service start)
    for v, route in enumerate(proposed):
        schedule = planner.schedule(v, route)
        if schedule is None:
            return verdict("rejected", f"shift {names[v]}: the new plan has no schedule within every promise")
        vehicle = dispatcher.vehicles[v]
        if schedule[0] < vehicle.shift_start_s - TOLERANCE_S or schedule[-1] > vehicle.shift_end_s + TOLERANCE_S:
            return verdict("rejected", f"shift {names[v]}: the new plan leaves the shift's hours")
        load = held.initial_load[v].copy()
        for slot, at in zip(route.tolist(), schedule[1:-1].tolist(), strict=True):
            times[slot] = (v, at)
            load = load + held.demand[slot]
            if (load > held.capacity[v]).any():
                return verdict("rejected", f"shift {names[v]}: the new plan carries more riders than it has room for")
    index = {name: v for v, name in enumerate(names)}
    moved: list[str] = []
    for booking in stored:
        rid = str(booking.id)
        ride = dispatcher.rides.get(rid)
        if ride is None or ride.status != booking.status or ride.dropoff not in times:
            return verdict("stale", f"ride {rid} is not planned as stored")
        drop_vehicle, drop_s = times[ride.dropoff]
        if drop_s > booking.dropoff_latest.timestamp() + TOLERANCE_S:
            return verdict("rejected", f"ride {rid} would arrive after its promised latest drop-off")
        if booking.status == "picked_up":
            if drop_vehicle != index.get(str(booking.shift_id)):
                return verdict("rejected", f"ride {rid} is on board and would change vehicle")
            continue
        if ride.pickup not in times:
            return verdict("stale", f"ride {rid} is not planned as stored")
        pick_vehicle, pick_s = times[ride.pickup]
        if pick_vehicle != drop_vehicle:
            return verdict("rejected", f"ride {rid} would be picked up and dropped off by different vehicles")
        if not (
            booking.pickup_earliest.timestamp() - TOLERANCE_S
            <= pick_s
            <= booking.pickup_latest.timestamp() + TOLERANCE_S
        ):
            return verdict("rejected", f"ride {rid} would be picked up outside its promised window")
        on_board_s = drop_s - pick_s - float(held.service_s[ride.pickup])
        if on_board_s < 0 or on_board_s > float(held.max_ride_s[ride.pickup]) + TOLERANCE_S:
            return verdict("rejected", f"ride {rid} would ride longer than its longest ride time")
        if pick_vehicle != index.get(str(booking.shift_id)):
            moved.append(rid)
    saving = before - after
    wanted = max(MIN_SAVING_S, MIN_SAVING_SHARE * before)
    if saving < wanted:
        return verdict("no_gain", f"it saves {saving:.0f} s of driving, less than the {wanted:.0f} s worth a change")
    return Verdict(
        outcome="adopted",
        detail=f"saves {saving:.0f} s of driving; {len(moved)} rides change vehicle",
        drive_before_s=before,
        drive_after_s=after,
        routes=proposed,
        moved=tuple(moved),
    )


class FleetReoptimizer:
    """Runs the re-optimisation in the background of one process, and on an operator's demand."""

    def __init__(self, db: Database, serving: Serving, hub: Hub) -> None:
        self.db = db
        self.serving = serving
        self.hub = hub
        self.after_cancellation_s = AFTER_CANCELLATION_S
        self._task: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._pool: multiprocessing.pool.Pool | None = None
        self._running = asyncio.Lock()  # one run at a time in this process
        self._poked = asyncio.Event()
        self._freed_at: float | None = None  # when room was first freed since the last run (wall clock)
        self._seed = 0

    # -- the background loop ------------------------------------------------------------------------
    def start(self) -> None:
        subscription = self.hub.subscribe(FLEET, size=1024)
        self._watcher = asyncio.create_task(self._watch(subscription), name="re-optimisation: cancellations")
        self._task = asyncio.create_task(self._loop(), name="re-optimisation")

    async def stop(self) -> None:
        """End the loop and the worker process (a search under way is abandoned)."""
        tasks = (self._task, self._watcher)
        self._task = self._watcher = None
        await end_tasks(tasks, "re-optimisation")
        await self._end_worker()

    async def _watch(self, subscription: contextlib.AbstractContextManager[Subscription]) -> None:
        with subscription as messages:
            while True:
                message = await messages.get()
                if message.get("type") == "booking" and message.get("status") in FREEING:
                    self.note_freed_room()

    def note_freed_room(self) -> None:
        """A ride was cancelled or not shown (in any process): re-optimise soon."""
        if self._freed_at is None:
            self._freed_at = time.time()
            self._poked.set()

    async def _loop(self) -> None:
        every = 0
        due: float | None = None  # the next scheduled run (wall clock)
        while True:
            # The loop wakes rarely (room freed, a run due, RULES_RECHECK_S): read the rules each time, so
            # that a new definition counts at once (one small query; the definition is cached by version).
            try:
                every = (await self.rules()).reoptimize_every_s
            except Exception:
                log.exception("re-optimisation: the service definition could not be read")
            now = time.time()
            if every <= 0:
                due = None
            elif due is None or due > now + every:
                due = now + every
            if every <= 0:
                self._freed_at = None
            after_freed = None if self._freed_at is None else self._freed_at + self.after_cancellation_s
            if due is not None and now >= due:
                due = now + every
                await self._run_logged("schedule", since=now - PERIOD_SHARE * every)
                continue
            if after_freed is not None and now >= after_freed:
                since, self._freed_at = self._freed_at, None
                await self._run_logged("cancellation", since=since)
                continue
            wake = min(t for t in (due, after_freed, now + RULES_RECHECK_S) if t is not None)
            self._poked.clear()
            await wake_or_timeout(self._poked, max(0.05, wake - now))

    async def _run_logged(self, trigger: ReoptimizationTrigger, since: float | None) -> None:
        try:
            run = await self.run(trigger, since=since)
        except Exception:
            log.exception("re-optimisation failed")
            return
        if run is not None:
            log.info(
                "re-optimisation (%s): %s, driving %.0f s -> %s s: %s",
                trigger,
                run.outcome,
                run.drive_before_s,
                "-" if run.drive_after_s is None else f"{run.drive_after_s:.0f}",
                run.detail,
            )

    # -- one run ------------------------------------------------------------------------------------
    async def rules(self) -> ServiceRules:
        async with self.db.pool.acquire() as conn:
            definition = await self.serving.definition(conn)
        return definition.rules if definition is not None else ServiceRules()

    async def run(
        self, trigger: ReoptimizationTrigger, since: float | None = None, actor: uuid.UUID | None = None
    ) -> ReoptimizationRecord | None:
        """Re-optimise once and record it; None when another process is re-optimising, or (with `since`,
        epoch seconds) some process started a run since then."""
        async with self._running, self.db.pool.acquire() as holder:
            if not await locks.try_hold(holder, locks.REOPTIMIZER):
                return None
            try:
                if since is not None:
                    last = await run_repo.last_started(holder)
                    if last is not None and last.timestamp() >= since:
                        return None
                return await self._run(trigger, actor)
            finally:
                await locks.release(holder, locks.REOPTIMIZER)

    async def run_now(self, actor: uuid.UUID) -> ReoptimizationRecord:
        """An operator's run; Conflict while another process is re-optimising."""
        run = await self.run("manual", actor=actor)
        if run is None:
            raise Conflict("another process is re-optimising the plans right now; see GET /fleet/reoptimizations")
        return run

    async def list_runs(self, limit: int) -> list[ReoptimizationRecord]:
        if not 1 <= limit <= MAX_RUNS_LISTED:
            raise Invalid(f"limit must be between 1 and {MAX_RUNS_LISTED}")
        async with self.db.pool.acquire() as conn:
            return await run_repo.list_recent(conn, limit)

    async def _run(self, trigger: ReoptimizationTrigger, actor: uuid.UUID | None) -> ReoptimizationRecord:
        start = RunStart.now(trigger, actor)
        fleet = self.serving.fleet()
        snapshot = None if fleet is None else await self.snapshot(fleet)
        if fleet is None or snapshot is None or not snapshot.rides:
            version = snapshot.version if snapshot is not None else await self._version()
            idle = Verdict(outcome="idle", detail="no ride is planned", drive_before_s=0.0, drive_after_s=None)
            return await self._store(start, idle, snapshot, version, None, 0.0)
        rules = await self.rules()
        try:
            routes = await self.search(snapshot, rules.reoptimize_time_limit_s)
        except Exception as exc:
            log.exception("re-optimisation: the search failed")
            failed = Verdict(
                outcome="failed",
                detail=f"the search failed: {exc!r}"[:500],
                drive_before_s=driving_s(snapshot.problem, snapshot.routes),
                drive_after_s=None,
            )
            return await self._store(start, failed, snapshot, snapshot.version, None, time.perf_counter() - start.began)
        return await self.adopt(fleet, snapshot, routes, start, time.perf_counter() - start.began)

    async def _version(self) -> int:
        async with self.db.pool.acquire() as conn:
            return (await fleet_repo.read_versions(conn))[0]

    async def snapshot(self, fleet: FleetService) -> Snapshot | None:
        """The plans as committed (None while no vehicle is on shift), no vehicle leaving before now."""
        async with fleet.mutex, self.db.pool.acquire() as conn:
            with fleet.guard():
                version, _ = await fleet_repo.read_versions(conn)
                dispatcher = await fleet.current(conn, version)
            if dispatcher is None:
                return None
            problem, routes, slots = dispatcher.snapshot()
            rides = sum(1 for ride in dispatcher.rides.values() if ride.dropoff >= 0)
        taken = now_s()
        held, _ = leaving_after(problem, routes, taken)
        return Snapshot(
            dispatcher=dispatcher,
            version=version,
            problem=held,
            routes=routes,
            slots=slots,
            taken_s=taken,
            rides=rides,
        )

    async def search(self, snapshot: Snapshot, time_limit_s: float) -> list[Route]:
        """The search's routes (compact node ids), computed in the worker process."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[list[Route]] = loop.create_future()

        def settle(value: Any, error: BaseException | None) -> None:
            if done.done():
                return
            if error is not None:
                done.set_exception(error)
            else:
                done.set_result(value)

        def hand_back(value: Any = None, error: BaseException | None = None) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
                loop.call_soon_threadsafe(settle, value, error)

        self._seed += 1
        self._worker().apply_async(
            improve_plans,
            (snapshot.problem, snapshot.routes, time_limit_s, SEARCH_SHARE, self._seed),
            callback=hand_back,
            error_callback=lambda exc: hand_back(error=exc),
        )
        try:
            return await asyncio.wait_for(done, time_limit_s + WORKER_GRACE_S)
        except TimeoutError:
            await self._end_worker()  # stuck: the next run starts a fresh one
            raise

    def _worker(self) -> multiprocessing.pool.Pool:
        if self._pool is None:
            # A fresh interpreter: forking a process that runs threads (the web server's, OR-Tools') can
            # deadlock the child.
            self._pool = multiprocessing.get_context("spawn").Pool(processes=1)
        return self._pool

    async def _end_worker(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            # terminate() joins the pool's threads: off the event loop, and bounded.
            await bounded(asyncio.to_thread(_terminate, pool), "the re-optimisation worker")

    async def adopt(
        self,
        fleet: FleetService,
        snapshot: Snapshot,
        routes: Sequence[Route],
        start: RunStart,
        search_s: float = 0.0,
    ) -> ReoptimizationRecord:
        """Under the fleet lock: judge the search's routes against the plans in force and adopt them if
        they pass; the run as recorded (in the same transaction)."""
        async with fleet.changing(self.db.pool) as conn:
            version, _ = await fleet_repo.read_versions(conn)
            dispatcher = await fleet.current(conn, version)
            if dispatcher is None:
                stale = Verdict(
                    outcome="stale", detail="no vehicle is on shift any more", drive_before_s=0.0, drive_after_s=None
                )
                return await self._store(start, stale, snapshot, version, None, search_s, conn)
            stored, _ = await fleet_repo.read_shifts(conn, [uuid.UUID(v.id) for v in dispatcher.vehicles])
            verdict = judge(dispatcher, snapshot, routes, version, stored, now_s())
            adopted_version = None
            if verdict.outcome == "adopted":
                adopted_version = await self._write(conn, fleet, dispatcher, snapshot, routes, verdict)
            return await self._store(start, verdict, snapshot, version, adopted_version, search_s, conn)

    async def _write(
        self,
        conn: Connection,
        fleet: FleetService,
        dispatcher: Dispatcher,
        snapshot: Snapshot,
        routes: Sequence[Route],
        verdict: Verdict,
    ) -> int:
        """Adopt the judged routes on the copy and write what changed; the new fleet version."""
        assert verdict.routes is not None
        before = [r.copy() for r in dispatcher.routes]
        if not dispatcher.adopt(routes, snapshot.slots):
            raise RuntimeError("the dispatcher refused routes that passed every check")
        changed = {
            dispatcher.vehicles[v].id
            for v, (old, new) in enumerate(zip(before, dispatcher.routes, strict=True))
            if not np.array_equal(old, new)
        }
        for rid in verdict.moved:
            shift = dispatcher.booking(rid).vehicle_id
            vehicle = fleet.shift_vehicle[shift]
            await booking_repo.set_vehicle(conn, uuid.UUID(rid), vehicle, uuid.UUID(shift))
            await booking_repo.add_event(
                conn, uuid.UUID(rid), "confirmed", None, f"re-optimised onto vehicle {vehicle}"
            )
        await fleet.commit(conn, changed)
        return fleet.version

    async def _store(
        self,
        start: RunStart,
        verdict: Verdict,
        snapshot: Snapshot | None,
        version: int,
        adopted_version: int | None,
        search_s: float,
        conn: Connection | None = None,
    ) -> ReoptimizationRecord:
        """Record the run (with an audit entry and a message to operators), in `conn`'s transaction if given."""
        if conn is None:
            async with self.db.pool.acquire() as own, own.transaction():
                return await self._store(start, verdict, snapshot, version, adopted_version, search_s, own)
        problem = snapshot.problem if snapshot is not None else None
        run = await run_repo.add(
            conn,
            ReoptimizationRecord(
                id=0,
                started_at=start.started_at,
                finished_at=dt.datetime.now(dt.UTC),
                trigger=start.trigger,
                outcome=verdict.outcome,
                detail=verdict.detail,
                fleet_version=snapshot.version if snapshot is not None else version,
                adopted_version=adopted_version,
                rides=snapshot.rides if snapshot is not None else 0,
                vehicles=problem.n_vehicles if problem is not None else 0,
                drive_before_s=verdict.drive_before_s,
                drive_after_s=verdict.drive_after_s,
                moved_rides=len(verdict.moved),
                search_s=search_s,
                duration_s=time.perf_counter() - start.began,
            ),
        )
        summary: dict[str, object] = {
            "outcome": run.outcome,
            "trigger": run.trigger,
            "drive_before_s": round(run.drive_before_s),
            "drive_after_s": None if run.drive_after_s is None else round(run.drive_after_s),
            "moved_rides": run.moved_rides,
        }
        await audit.record(conn, start.actor, "reoptimize", str(run.id), summary)
        await announce(conn, {"type": "reoptimization", "id": run.id, **summary, "detail": run.detail[:500]})
        return run


def _terminate(pool: multiprocessing.pool.Pool) -> None:
    pool.terminate()
    pool.join()


__all__ = ["FleetReoptimizer", "RunStart", "Snapshot", "Verdict", "driving_s", "judge", "leaving_after"]
