"""GTFS-Realtime trip updates on a loaded network, without a rebuild: the overlay the Router searches on.

An update names one run of a trip: the trip on one service day (its `start_date`; without one, the day
whose run of the trip is under way, or nearest, at the message's time). Runs of other days keep the
timetable. The overlay is a second Timetable that shares every array of the network's that it does not
change and leaves the network's own untouched:

- a cancelled run no longer runs: its trip's service loses that day (the trip gets a service of its
  own, the old one minus the days cancelled or replaced);
- a run with new times runs instead as a trip of its own, on that day only, in a route pattern of
  realtime runs appended after the timetable's patterns; its skipped stops are neither boardable nor
  alightable there (pickup and drop-off type 1). A delayed run can overtake the next trip, which the
  kernel's trip searches must never see inside one pattern (routing.fifo), so the realtime runs of
  one pattern are split into chains that do not overtake, one pattern each.

Times follow the GTFS-Realtime spec: a stop_time_update's delay or time applies to its stop and is
propagated to the following stops until the next update; an absolute time wins over a delay; a
stop without arrival takes its departure's delay, one without departure its arrival's; a departure is
never before the arrival at the same stop; NO_DATA gives the timetable's times from there on; a SKIPPED
stop passes the delay on. Stops before the first update keep the timetable unless that would have the
vehicle leave them after it reached a later stop (then they move earlier). A message older than the
caller's maximum age, or without a header timestamp, is ignored.

The updates are read through Protocols, which the Structs of feeds.gtfs_rt satisfy: nothing at query
time imports feeds (tests/test_architecture.py).
"""

from __future__ import annotations

import datetime as dt
import time
import zoneinfo
from collections.abc import Mapping, Sequence
from typing import Protocol

import msgspec
import numpy as np

from routing.fifo import fifo_chains
from routing.model import Network, Timetable
from routing.raptor import SEARCH_DAYS, Raptor, service_origin_epoch

# Trip runs that GTFS-Realtime cancels; DELETED is CANCELED that riders should not even be shown.
_CANCELLED = frozenset({"CANCELED", "DELETED"})
NO_PICKUP = 1  # GTFS pickup_type / drop_off_type "not available"


class StopTimeEventLike(Protocol):
    @property
    def delay(self) -> int | None: ...
    @property
    def time(self) -> int | None: ...


class StopTimeUpdateLike(Protocol):
    @property
    def stop_sequence(self) -> int | None: ...
    @property
    def stop_id(self) -> str | None: ...
    @property
    def arrival(self) -> StopTimeEventLike | None: ...
    @property
    def departure(self) -> StopTimeEventLike | None: ...
    @property
    def schedule_relationship(self) -> str: ...


class TripUpdateLike(Protocol):
    @property
    def trip_id(self) -> str | None: ...
    @property
    def start_date(self) -> dt.date | None: ...
    @property
    def schedule_relationship(self) -> str: ...
    @property
    def stop_time_updates(self) -> Sequence[StopTimeUpdateLike]: ...
    @property
    def delay(self) -> int | None: ...


class TripUpdatesLike(Protocol):
    """A GTFS-Realtime message as far as trip updates go (feeds.gtfs_rt.FeedMessage is one)."""

    @property
    def timestamp(self) -> int | None: ...
    @property
    def trip_updates(self) -> Sequence[TripUpdateLike]: ...


class FeedReport(msgspec.Struct, frozen=True, kw_only=True):
    """What became of one feed's trip updates on the network."""

    feed_id: str
    timestamp: int | None  # the message's header timestamp, POSIX s
    used: bool
    ignored: str | None = None  # why the message was not used (stale, no timestamp, a feed the network lacks)
    trip_updates: int = 0
    realtime_runs: int = 0  # trip runs with realtime times
    cancelled_runs: int = 0
    skipped_stops: int = 0
    unknown_trips: int = 0  # trip ids the network does not know (or none given)
    unknown_stops: int = 0  # stop_time_updates naming no stop of their trip
    not_running: int = 0  # a trip that does not run on the service day the update is for
    unsupported: int = 0  # added, duplicated or replacement trips: not in the timetable, left out


class StopCall(msgspec.Struct, frozen=True, kw_only=True):
    """A trip run's call at a stop as the realtime data have it."""

    expected_s: int | None  # POSIX s; None when it does not call
    cancelled: bool  # the run is cancelled or skips the stop
    realtime: bool  # the data say something of this run (else: the timetable's time)


class RealtimeOverlay(msgspec.Struct, frozen=True, kw_only=True):
    """A network's timetable with realtime runs, and the Raptor over it; `base` is the timetable it overlays."""

    base: Timetable
    timetable: Timetable
    raptor: Raptor
    run_of: np.ndarray  # int32 [T]: for each trip of `timetable`, the timetable trip it is a run of
    feeds: list[FeedReport]
    expires_s: int | None  # POSIX s when the first feed used goes stale (rebuild the overlay then)
    seconds: float  # how long applying took
    runs: dict[tuple[int, int], _Run | None] = {}  # (timetable trip, day) -> its realtime run; None: cancelled

    def is_realtime(self, trip: int) -> bool:
        """Whether trip (an index into `timetable`) is a run with realtime times."""
        return trip >= self.base.n_trips


class _Run(msgspec.Struct, frozen=True, kw_only=True):
    """The realtime times of one trip run, on its service day's clock."""

    trip: int
    day: int  # index from the network's first date
    arrival: np.ndarray  # int32 [n]
    departure: np.ndarray  # int32 [n]
    skipped: np.ndarray  # bool [n]


class _Counts:
    def __init__(self, feed_id: str, timestamp: int, trip_updates: int) -> None:
        self.feed_id, self.timestamp, self.trip_updates = feed_id, timestamp, trip_updates
        self.unknown_trips = self.unknown_stops = self.not_running = self.unsupported = 0
        self.runs: dict[tuple[int, int], _Run | None] = {}  # (trip, day) -> new times, None when cancelled

    def report(self) -> FeedReport:
        runs = [r for r in self.runs.values() if r is not None]
        return FeedReport(
            feed_id=self.feed_id,
            timestamp=self.timestamp,
            used=True,
            trip_updates=self.trip_updates,
            realtime_runs=len(runs),
            cancelled_runs=len(self.runs) - len(runs),
            skipped_stops=sum(int(r.skipped.sum()) for r in runs),
            unknown_trips=self.unknown_trips,
            unknown_stops=self.unknown_stops,
            not_running=self.not_running,
            unsupported=self.unsupported,
        )


class RealtimeIndex:
    """What applying trip updates to one network needs, built once per network: trip and stop ids, running days."""

    def __init__(self, network: Network, raptor: Raptor) -> None:
        tt = network.timetable
        self.network = network
        self.timetable = tt
        self.raptor = raptor
        self.timezone = network.manifest.timezone
        self.first_date = network.manifest.first_date
        self.feed_ids = {feed.id for feed in network.manifest.feeds}
        self.trip_index = {str(t): i for i, t in enumerate(tt.trip_id.tolist())}
        self.stop_index = {str(s): i for i, s in enumerate(tt.stop_id.tolist())}
        self.trip_pattern = raptor.trip_pattern
        n_days = tt.service_days.shape[1] * 8
        self.runs_on = np.unpackbits(np.asarray(tt.service_days), axis=1, bitorder="little")[:, :n_days].astype(bool)

    def apply(self, feeds: Mapping[str, TripUpdatesLike], *, now_s: int, max_age_s: int) -> RealtimeOverlay:
        """The overlay of the feeds' trip updates (by GTFS feed id) as of `now_s`, POSIX s; a message older than
        `max_age_s` is ignored."""
        started = time.perf_counter()
        reports: list[FeedReport] = []
        applied: list[_Counts] = []
        for feed_id, message in feeds.items():
            stamp = message.timestamp
            ignored = None
            if feed_id not in self.feed_ids:
                ignored = f"the network has no GTFS feed {feed_id!r}"
            elif stamp is None:
                ignored = "the message has no header timestamp"
            elif now_s - stamp > max_age_s:
                ignored = f"stale: {now_s - stamp} s old, more than {max_age_s} s"
            if ignored is not None or stamp is None:
                reports.append(
                    FeedReport(
                        feed_id=feed_id,
                        timestamp=stamp,
                        used=False,
                        ignored=ignored,
                        trip_updates=len(message.trip_updates),
                    )
                )
                continue
            counts = _Counts(feed_id, stamp, len(message.trip_updates))
            for update in message.trip_updates:
                self._read(update, counts)
            applied.append(counts)
            reports.append(counts.report())
        runs: dict[tuple[int, int], _Run | None] = {}
        for counts in applied:
            runs.update(counts.runs)
        if runs:
            timetable, run_of = self._overlay(runs)
            raptor = Raptor(timetable, self.first_date, self.timezone)
        else:
            timetable, run_of, raptor = self.timetable, np.arange(self.timetable.n_trips, dtype=np.int32), self.raptor
        return RealtimeOverlay(
            base=self.timetable,
            timetable=timetable,
            raptor=raptor,
            run_of=run_of,
            feeds=reports,
            expires_s=min((c.timestamp + max_age_s for c in applied), default=None),
            seconds=time.perf_counter() - started,
            runs=runs,
        )

    def call(
        self, overlay: RealtimeOverlay, trip_id: str, stop_id: str, scheduled_s: int, arrival: bool
    ) -> StopCall | None:
        """What the overlay says of the run of trip `trip_id` (namespaced) that calls at `stop_id` at
        `scheduled_s` (POSIX s, its timetable arrival or departure there): its expected time, or that it
        is cancelled or skips the stop; None when the timetable has no such call."""
        trip, stop = self.trip_index.get(trip_id), self.stop_index.get(stop_id)
        if trip is None or stop is None:
            return None
        tt = self.timetable
        p, base, n = self._stop_times(trip)
        s0 = int(tt.pattern_stop_offsets[p])
        positions = np.flatnonzero(np.asarray(tt.pattern_stops[s0 : s0 + n]) == stop).tolist()
        times = np.asarray((tt.arrival if arrival else tt.departure)[base : base + n])
        date = dt.datetime.fromtimestamp(scheduled_s, zoneinfo.ZoneInfo(self.timezone)).date()
        for delta in (0, -1, 1):  # a run past midnight belongs to the service day before
            day_date = date + dt.timedelta(days=delta)
            origin = service_origin_epoch(day_date, self.timezone)
            for i in positions:
                if origin + int(times[i]) != scheduled_s:
                    continue
                day = (day_date - self.first_date).days
                key = (trip, day)
                if key not in overlay.runs:
                    return StopCall(expected_s=scheduled_s, cancelled=False, realtime=False)
                run = overlay.runs[key]
                if run is None or bool(run.skipped[i]):
                    return StopCall(expected_s=None, cancelled=True, realtime=True)
                expected = int((run.arrival if arrival else run.departure)[i])
                return StopCall(expected_s=origin + expected, cancelled=False, realtime=True)
        return None

    # Reading the updates ---------------------------------------------------------------------------

    def _read(self, update: TripUpdateLike, counts: _Counts) -> None:
        relationship = update.schedule_relationship
        if relationship != "SCHEDULED" and relationship not in _CANCELLED:
            counts.unsupported += 1
            return
        trip = self.trip_index.get(f"{counts.feed_id}:{update.trip_id}") if update.trip_id else None
        if trip is None:
            counts.unknown_trips += 1
            return
        day = self._day(trip, update.start_date, counts.timestamp)
        if day is None:
            counts.not_running += 1
            return
        if relationship in _CANCELLED:
            counts.runs[(trip, day)] = None
            return
        run = self._times(trip, day, update, counts)
        if run is not None:
            counts.runs[(trip, day)] = run

    def _stop_times(self, trip: int) -> tuple[int, int, int]:
        """(pattern, first pattern stop, first stop time) of a timetable trip, and its number of stops."""
        tt = self.timetable
        p = int(self.trip_pattern[trip])
        s0 = int(tt.pattern_stop_offsets[p])
        n = int(tt.pattern_stop_offsets[p + 1]) - s0
        base = int(tt.pattern_stop_time_offsets[p]) + (trip - int(tt.pattern_trip_offsets[p])) * n
        return p, base, n

    def _day(self, trip: int, start_date: dt.date | None, stamp: int) -> int | None:
        """The service day (index) of the run an update is for; None when the trip does not run then."""
        service = int(self.timetable.trip_service[trip])
        runs_on = self.runs_on[service]
        if start_date is not None:
            day = (start_date - self.first_date).days
            return day if 0 <= day < len(runs_on) and runs_on[day] else None
        # Without a start date: of the days around the message's time on which the trip runs, the one
        # whose run is under way then, or starts or ended nearest to it.
        _, base, n = self._stop_times(trip)
        tt = self.timetable
        first, last = int(tt.departure[base]), int(tt.arrival[base + n - 1])
        today = dt.datetime.fromtimestamp(stamp, dt.UTC).date()
        best: tuple[int, int] | None = None
        for delta in (-2, *SEARCH_DAYS):
            date = today + dt.timedelta(days=delta)
            day = (date - self.first_date).days
            if not (0 <= day < len(runs_on)) or not runs_on[day]:
                continue
            origin = service_origin_epoch(date, self.timezone)
            distance = max(origin + first - stamp, 0, stamp - origin - last)
            if best is None or distance < best[0]:
                best = (distance, day)
        return None if best is None else best[1]

    def _times(self, trip: int, day: int, update: TripUpdateLike, counts: _Counts) -> _Run | None:
        """The run's times with the update's predictions propagated along its stops."""
        tt = self.timetable
        p, base, n = self._stop_times(trip)
        s0 = int(tt.pattern_stop_offsets[p])
        # Python lists: a trip has tens of stops, where numpy's per-call cost would dominate.
        stops: list[int] = np.asarray(tt.pattern_stops[s0 : s0 + n]).tolist()
        at_sequence = {q: i for i, q in enumerate(np.asarray(tt.stop_sequence[base : base + n]).tolist())}
        at: dict[int, StopTimeUpdateLike] = {}
        after = -1  # a stop named by id is looked for after the stop the update before named (loops)
        for stop_update in update.stop_time_updates:
            i = self._position(stop_update, stops, at_sequence, after, counts.feed_id)
            if i is None:
                counts.unknown_stops += 1
                continue
            at[i] = stop_update
            after = i
        if not at and update.delay is None:
            return None
        scheduled_arr: list[int] = np.asarray(tt.arrival[base : base + n]).tolist()
        scheduled_dep: list[int] = np.asarray(tt.departure[base : base + n]).tolist()
        origin = service_origin_epoch(self.first_date + dt.timedelta(days=day), self.timezone)
        arr, dep = list(scheduled_arr), list(scheduled_dep)
        skipped = np.zeros(n, dtype=bool)
        delay = update.delay  # carried from stop to stop; None: the timetable's times
        for i in range(n):
            u = at.get(i)
            if u is not None and u.schedule_relationship == "NO_DATA":
                delay = None
                continue
            if u is not None and u.schedule_relationship == "SKIPPED":
                skipped[i] = True
                u = None  # a skipped stop's times are not used; the delay before it goes on past it
            if u is None:
                if delay is not None:
                    arr[i] += delay
                    dep[i] += delay
                continue
            a = _event(u.arrival, scheduled_arr[i], origin)
            d = _event(u.departure, scheduled_dep[i], origin)
            if a is None and d is None:
                # Neither given (allowed for SCHEDULED): on time from here.
                a, d = scheduled_arr[i], scheduled_dep[i]
            elif a is None:
                assert d is not None
                carried = delay if delay is not None else d - scheduled_dep[i]
                a = min(scheduled_arr[i] + carried, d)
            elif d is None:
                d = scheduled_dep[i] + (a - scheduled_arr[i])
            d = max(d, a)
            arr[i], dep[i] = a, d
            delay = d - scheduled_dep[i]
        # Times never run backwards along the trip: stops before the first update move earlier where
        # the vehicle reached that update early; later ones are no earlier than the stop before.
        times = np.empty(2 * n, dtype=np.int64)
        times[0::2], times[1::2] = arr, dep
        head = 2 * min(at, default=0) + 1
        times[:head] = np.minimum.accumulate(times[:head][::-1])[::-1]
        times = np.maximum.accumulate(times)
        return _Run(
            trip=trip,
            day=day,
            arrival=times[0::2].astype(np.int32),
            departure=times[1::2].astype(np.int32),
            skipped=skipped,
        )

    def _position(
        self, u: StopTimeUpdateLike, stops: list[int], at_sequence: dict[int, int], after: int, feed_id: str
    ) -> int | None:
        """Where along the trip a stop_time_update is: by stop_sequence (which wins), else by stop id."""
        if u.stop_sequence is not None:
            return at_sequence.get(u.stop_sequence)
        stop = self.stop_index.get(f"{feed_id}:{u.stop_id}") if u.stop_id is not None else None
        if stop is None:
            return None
        try:
            return stops.index(stop, after + 1)
        except ValueError:
            return None

    # Building the overlay --------------------------------------------------------------------------

    def _overlay(self, runs: dict[tuple[int, int], _Run | None]) -> tuple[Timetable, np.ndarray]:
        """The timetable with the runs changed (cancelled and replaced runs taken off their trips' days,
        replacement runs appended in patterns of their own), and the timetable trip each of its trips runs."""
        tt = self.timetable
        n_services = tt.service_days.shape[0]
        width = tt.service_days.shape[1]
        # Services: each changed trip's own, less the days of its changed runs; one per day of realtime runs.
        off_days: dict[int, list[int]] = {}
        for trip, day in runs:
            off_days.setdefault(trip, []).append(day)
        trip_service = np.array(tt.trip_service, dtype=np.int32)
        new_rows: list[np.ndarray] = []
        new_ids: list[str] = []
        known: dict[tuple[int, tuple[int, ...]], int] = {}
        for trip, days in off_days.items():
            service = int(trip_service[trip])
            key = (service, tuple(sorted(days)))
            if key not in known:
                row = self.runs_on[service].copy()
                row[list(days)] = False
                known[key] = n_services + len(new_rows)
                new_rows.append(row)
                new_ids.append(f"{tt.service_id[service]}:realtime-{len(new_rows)}")
            trip_service[trip] = known[key]
        ordered = _ordered(runs)
        day_service: dict[int, int] = {}
        for run in ordered:
            if run.day not in day_service:
                row = np.zeros(self.runs_on.shape[1], dtype=bool)
                row[run.day] = True
                day_service[run.day] = n_services + len(new_rows)
                new_rows.append(row)
                new_ids.append(f"realtime:{self.first_date + dt.timedelta(days=run.day)}")
        packed = np.packbits(np.array(new_rows, dtype=bool).reshape(len(new_rows), -1), axis=1, bitorder="little")
        service_days = np.concatenate([np.asarray(tt.service_days), packed[:, :width]])

        # Patterns of realtime runs: by timetable pattern and skipped stops, in chains that do not overtake.
        groups: dict[tuple[int, bytes], list[_Run]] = {}
        for run in ordered:
            groups.setdefault((int(self.trip_pattern[run.trip]), run.skipped.tobytes()), []).append(run)
        route, stop_offsets, stops, pickup, dropoff, trip_offsets, time_offsets = [], [], [], [], [], [], []
        trips: list[_Run] = []
        for (p, _), members in groups.items():
            s0, s1 = int(tt.pattern_stop_offsets[p]), int(tt.pattern_stop_offsets[p + 1])
            skipped = members[0].skipped
            arrivals = np.stack([m.arrival for m in members])
            departures = np.stack([m.departure for m in members])
            for chain in fifo_chains(arrivals, departures):
                route.append(int(tt.pattern_route[p]))
                stops.append(np.asarray(tt.pattern_stops[s0:s1]))
                pickup.append(np.where(skipped, NO_PICKUP, np.asarray(tt.pattern_pickup[s0:s1])).astype(np.int8))
                dropoff.append(np.where(skipped, NO_PICKUP, np.asarray(tt.pattern_dropoff[s0:s1])).astype(np.int8))
                stop_offsets.append(s1 - s0)
                trip_offsets.append(len(chain))
                time_offsets.append(len(chain) * (s1 - s0))
                trips.extend(members[k] for k in chain)
        n_patterns = tt.n_patterns
        new_patterns = len(route)
        source = np.array([r.trip for r in trips], dtype=np.int64)
        stop_pattern_offsets, stop_patterns = _patterns_at_stops(
            tt,
            np.concatenate([np.zeros(0, np.int32), *stops]),
            np.repeat(np.arange(n_patterns, n_patterns + new_patterns), stop_offsets),
        )
        run_of = np.r_[np.arange(tt.n_trips), source].astype(np.int32)
        return msgspec.structs.replace(
            tt,
            pattern_route=np.r_[np.asarray(tt.pattern_route), route].astype(np.int32),
            pattern_stop_offsets=_extend(tt.pattern_stop_offsets, stop_offsets, np.int32),
            pattern_stops=np.concatenate([np.asarray(tt.pattern_stops), *stops]).astype(np.int32),
            pattern_pickup=np.concatenate([np.asarray(tt.pattern_pickup), *pickup]),
            pattern_dropoff=np.concatenate([np.asarray(tt.pattern_dropoff), *dropoff]),
            pattern_trip_offsets=_extend(tt.pattern_trip_offsets, trip_offsets, np.int32),
            pattern_stop_time_offsets=_extend(tt.pattern_stop_time_offsets, time_offsets, np.int64),
            trip_id=np.r_[np.asarray(tt.trip_id), np.asarray(tt.trip_id)[source]],
            trip_service=np.r_[trip_service, [day_service[r.day] for r in trips]].astype(np.int32),
            trip_wheelchair=np.r_[np.asarray(tt.trip_wheelchair), np.asarray(tt.trip_wheelchair)[source]],
            trip_headsign=np.r_[np.asarray(tt.trip_headsign), np.asarray(tt.trip_headsign)[source]],
            trip_shape=np.r_[np.asarray(tt.trip_shape), np.asarray(tt.trip_shape)[source]],
            arrival=np.concatenate([np.asarray(tt.arrival), *(r.arrival for r in trips)]),
            departure=np.concatenate([np.asarray(tt.departure), *(r.departure for r in trips)]),
            stop_sequence=np.concatenate(
                [np.asarray(tt.stop_sequence), *(np.asarray(tt.stop_sequence[self._span(r.trip)]) for r in trips)]
            ),
            stop_pattern_offsets=stop_pattern_offsets,
            stop_patterns=stop_patterns,
            service_id=np.r_[np.asarray(tt.service_id), new_ids],
            service_days=np.ascontiguousarray(service_days),
        ), run_of

    def _span(self, trip: int) -> slice:
        _, base, n = self._stop_times(trip)
        return slice(base, base + n)


def _ordered(runs: dict[tuple[int, int], _Run | None]) -> list[_Run]:
    """The runs with new times, by trip and day (the order their patterns are made in)."""
    return [run for key in sorted(runs) if (run := runs[key]) is not None]


def _event(event: StopTimeEventLike | None, scheduled: int, origin: int) -> int | None:
    """A predicted time on the service day's clock: the absolute time if given, else the timetable's plus the delay."""
    if event is None:
        return None
    if event.time is not None:
        return event.time - origin
    if event.delay is not None:
        return scheduled + event.delay
    return None


def _extend(offsets: np.ndarray, sizes: list[int], dtype: type) -> np.ndarray:
    """CSR offsets with more rows of the given sizes appended."""
    offsets = np.asarray(offsets)
    extended: np.ndarray = np.r_[offsets, int(offsets[-1]) + np.cumsum(sizes, dtype=np.int64)].astype(dtype)
    return extended


def _patterns_at_stops(tt: Timetable, stops: np.ndarray, patterns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The timetable's patterns at each stop with the given (stop, pattern) pairs added, each pattern once per stop."""
    old_offsets = np.asarray(tt.stop_pattern_offsets)
    old_stops = np.repeat(np.arange(tt.n_stops, dtype=np.int64), np.diff(old_offsets))
    pairs = np.unique(np.stack([stops.astype(np.int64), patterns.astype(np.int64)]), axis=1)
    all_stops = np.r_[old_stops, pairs[0]]
    all_patterns = np.r_[np.asarray(tt.stop_patterns, dtype=np.int64), pairs[1]]
    order = np.lexsort((all_patterns, all_stops))
    counts = np.bincount(all_stops, minlength=tt.n_stops)
    return np.r_[0, np.cumsum(counts)].astype(np.int32), np.ascontiguousarray(all_patterns[order], dtype=np.int32)
