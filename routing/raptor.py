"""RAPTOR on a network's timetable, forward (earliest arrival) and backward (latest departure):
the one module that calls `ext.raptor`. Its pure-Python test oracles are in `routing.oracles`."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import msgspec
import numpy as np
import numpy.typing as npt

from routing.kernels import require_array
from routing.model import Timetable

try:
    from ext import raptor as _kernel
except ImportError as exc:
    raise ImportError(
        "the compiled kernel ext.raptor is missing; build it with `pip install -e .` in the repository"
    ) from exc

UNREACHED = _kernel.UNREACHED
NO_DEPARTURE = _kernel.NO_DEPARTURE
NONE, SOURCE, TRANSIT, FOOTPATH, KEPT = (
    _kernel.PARENT_NONE,
    _kernel.PARENT_SOURCE,
    _kernel.PARENT_TRANSIT,
    _kernel.PARENT_FOOTPATH,
    _kernel.PARENT_KEPT,
)
# Service days searched around the query day: yesterday's trips run past midnight into it.
SEARCH_DAYS = (-1, 0, 1)


class ServiceDays(msgspec.Struct, frozen=True, kw_only=True):
    """Which trips run on the service days around a query date, on that date's clock."""

    date: dt.date
    origin_epoch_s: int  # the query date's service-day origin (noon minus 12 h) as UTC epoch seconds
    day_offset: np.ndarray  # int32 [D]: seconds from the query day's origin to each service day's origin
    trip_active: np.ndarray  # uint8 [D, T]


class Labels(msgspec.Struct, frozen=True, kw_only=True):
    """Per round k and stop: the best time with at most k trips, and how it was reached.

    Forward the best is the earliest arrival (UNREACHED if none) and parents point back along
    the journey; backward it is the latest departure (NO_DEPARTURE if none) and parents point
    on along it (`from_stop` is then the stop a footpath leads to).
    """

    labels: npt.NDArray[np.int32]  # [rounds, stops]
    kind: npt.NDArray[np.int8]
    trip: npt.NDArray[np.int32]
    day: npt.NDArray[np.int8]
    board: npt.NDArray[np.int32]
    alight: npt.NDArray[np.int32]
    from_stop: npt.NDArray[np.int32]
    patterns_scanned: int = 0  # work counters of the search, for benchmarks
    stops_scanned: int = 0


class TransitLeg(msgspec.Struct, frozen=True, kw_only=True):
    trip: int
    pattern: int
    day: int
    board_pos: int
    alight_pos: int
    from_stop: int
    to_stop: int
    departure: int
    arrival: int


class FootpathLeg(msgspec.Struct, frozen=True, kw_only=True):
    from_stop: int
    to_stop: int
    departure: int
    arrival: int


class StopJourney(msgspec.Struct, frozen=True, kw_only=True):
    """A stop-to-stop journey with its legs in travel order; times on the query day's clock."""

    source: int
    target: int
    departure: int
    arrival: int
    trips: int
    legs: list[TransitLeg | FootpathLeg]


def service_origin_epoch(date: dt.date, timezone: str) -> int:
    """UTC epoch seconds of a service day's origin: noon minus 12 h, which is not midnight on DST days."""
    noon = dt.datetime(date.year, date.month, date.day, 12, tzinfo=zoneinfo.ZoneInfo(timezone))
    return int(noon.timestamp()) - 12 * 3600


class Raptor:
    """Searches one timetable; build once per loaded network and reuse."""

    def __init__(self, timetable: Timetable, first_date: dt.date, timezone: str) -> None:
        tt = timetable
        self.timetable = tt
        self.first_date = first_date
        self.timezone = timezone

        def checked(name: str, dtype: type) -> np.ndarray:
            return require_array(getattr(tt, name), dtype, name)

        into_offsets, into_from, into_s = transfers_into(tt)
        self._kernel = _kernel.RaptorTimetable(
            checked("pattern_stop_offsets", np.int32),
            checked("pattern_stops", np.int32),
            checked("pattern_pickup", np.int8),
            checked("pattern_dropoff", np.int8),
            checked("pattern_trip_offsets", np.int32),
            checked("pattern_stop_time_offsets", np.int64),
            checked("arrival", np.int32),
            checked("departure", np.int32),
            checked("stop_pattern_offsets", np.int32),
            checked("stop_patterns", np.int32),
            checked("transfer_offsets", np.int32),
            checked("transfer_to", np.int32),
            checked("transfer_s", np.int32),
            into_offsets,
            into_from,
            into_s,
        )
        self.trip_pattern = np.repeat(
            np.arange(tt.n_patterns, dtype=np.int32), np.diff(np.asarray(tt.pattern_trip_offsets))
        )
        n_days = tt.service_days.shape[1] * 8
        self._active_bits = np.unpackbits(np.asarray(tt.service_days), axis=1, bitorder="little")[:, :n_days]
        self._stop_ok = np.ones(tt.n_stops, dtype=np.uint8)
        self._change: dict[int, np.ndarray] = {}
        # Running-trip rows of the last few trip_active matrices seen (a query reuses its ServiceDays).
        self._rows: list[tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]] = []

    def service_days(self, date: dt.date) -> ServiceDays:
        """The trips running on the days around `date` and how their clocks relate to `date`'s."""
        origin = service_origin_epoch(date, self.timezone)
        offsets, rows = [], []
        trip_service = np.asarray(self.timetable.trip_service)
        for delta in SEARCH_DAYS:
            day = date + dt.timedelta(days=delta)
            offsets.append(service_origin_epoch(day, self.timezone) - origin)
            index = (day - self.first_date).days
            if 0 <= index < self._active_bits.shape[1]:
                rows.append(self._active_bits[trip_service, index])
            else:
                rows.append(np.zeros(self.timetable.n_trips, dtype=np.uint8))
        return ServiceDays(
            date=date,
            origin_epoch_s=origin,
            day_offset=np.array(offsets, dtype=np.int32),
            trip_active=np.ascontiguousarray(np.stack(rows).astype(np.uint8).reshape(len(SEARCH_DAYS), -1)),
        )

    def departures(self, stop: int, days: ServiceDays) -> np.ndarray:
        """Departure times (query day's clock) of every running trip that may be boarded at `stop`."""
        tt = self.timetable
        out = []
        for p in np.asarray(
            tt.stop_patterns[tt.stop_pattern_offsets[stop] : tt.stop_pattern_offsets[stop + 1]]
        ).tolist():
            s0, s1 = int(tt.pattern_stop_offsets[p]), int(tt.pattern_stop_offsets[p + 1])
            n = s1 - s0
            t0, t1 = int(tt.pattern_trip_offsets[p]), int(tt.pattern_trip_offsets[p + 1])
            base = int(tt.pattern_stop_time_offsets[p])
            block = np.asarray(tt.departure[base : base + (t1 - t0) * n]).reshape(t1 - t0, n)
            for i in np.flatnonzero(
                (np.asarray(tt.pattern_stops[s0:s1]) == stop) & (np.asarray(tt.pattern_pickup[s0:s1]) != 1)
            ):
                for d, offset in enumerate(days.day_offset.tolist()):
                    active = days.trip_active[d, t0:t1].astype(bool)
                    out.append(block[active, i] + offset)
        return np.unique(np.concatenate(out)) if out else np.zeros(0, dtype=np.int32)

    def change_times(self, min_transfer_s: int) -> np.ndarray:
        """Change time at each stop: the feed's own (transfers.txt) where longer than the query's."""
        change = self._change.get(min_transfer_s)
        if change is None:
            change = np.maximum(np.asarray(self.timetable.stop_min_transfer_s), min_transfer_s).astype(np.int32)
            change.flags.writeable = False
            self._change[min_transfer_s] = change
        return change

    def earliest_arrival(
        self,
        sources: np.ndarray,
        source_times: np.ndarray,
        days: ServiceDays,
        *,
        max_transfers: int = 8,
        min_transfer_s: int = 60,
        use_footpaths: bool = True,
        wheelchair: bool = False,
    ) -> Labels:
        """Rounds 0..max_transfers+1 of RAPTOR from the given stops at the given times."""
        rows, change, stop_ok = self._query_arrays(days, min_transfer_s, use_footpaths, wheelchair)
        result = self._kernel.earliest_arrival(
            np.ascontiguousarray(sources, dtype=np.int32),
            np.ascontiguousarray(source_times, dtype=np.int32),
            int(max_transfers) + 1,
            *rows,
            np.ascontiguousarray(days.day_offset, dtype=np.int32),
            change,
            stop_ok,
            bool(use_footpaths),
        )
        return Labels(**result)

    def latest_departure(
        self,
        targets: np.ndarray,
        target_times: np.ndarray,
        days: ServiceDays,
        *,
        max_transfers: int = 8,
        min_transfer_s: int = 60,
        use_footpaths: bool = True,
        wheelchair: bool = False,
    ) -> Labels:
        """Rounds 0..max_transfers+1 of RAPTOR backward: the latest departure from each stop that still
        reaches one of the given stops by its given time, with the same options as `earliest_arrival`."""
        rows, change, stop_ok = self._query_arrays(days, min_transfer_s, use_footpaths, wheelchair)
        result = self._kernel.latest_departure(
            np.ascontiguousarray(targets, dtype=np.int32),
            np.ascontiguousarray(target_times, dtype=np.int32),
            int(max_transfers) + 1,
            *rows,
            np.ascontiguousarray(days.day_offset, dtype=np.int32),
            change,
            stop_ok,
            bool(use_footpaths),
        )
        return Labels(**result)

    def _query_arrays(
        self,
        days: ServiceDays,
        min_transfer_s: int,
        use_footpaths: bool,
        wheelchair: bool,
    ) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray, np.ndarray]:
        """The kernel's view of a query's options: running-trip rows, change times, usable stops."""
        tt = self.timetable
        stop_ok = self._stop_ok
        if wheelchair:
            active = days.trip_active & (np.asarray(tt.trip_wheelchair) == 1).astype(np.uint8)[None, :]
            rows = self._kernel.active_rows(np.ascontiguousarray(active, dtype=np.uint8))
            stop_ok = self.wheelchair_stops()
        else:
            rows = self.active_rows(days.trip_active)
        change = (
            self.change_times(min_transfer_s) if min_transfer_s > 0 or use_footpaths else np.zeros(tt.n_stops, np.int32)
        )
        return rows, change, stop_ok

    def active_rows(self, trip_active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The kernel's (next_active, prev_active) rows of a [D, T] 0/1 matrix of running trips, cached."""
        for seen, rows in self._rows:
            if seen is trip_active:
                return rows
        rows = self._kernel.active_rows(np.ascontiguousarray(trip_active, dtype=np.uint8))
        # Holding the matrix keeps its id from being reused while it is a key.
        self._rows = [(trip_active, rows), *self._rows[:3]]
        return rows

    def wheelchair_stops(self) -> np.ndarray:
        """Stops where a wheelchair user may board: wheelchair_boarding 1, or 0 inheriting a parent's 1."""
        tt = self.timetable
        own = np.asarray(tt.stop_wheelchair)
        parent = np.asarray(tt.stop_parent)
        inherited = np.where(parent >= 0, own[np.maximum(parent, 0)], 0)
        usable: npt.NDArray[np.uint8] = ((own == 1) | ((own == 0) & (inherited == 1))).astype(np.uint8)
        return usable

    def journeys(self, result: Labels, target: int, days: ServiceDays) -> list[StopJourney]:
        """The Pareto set over (arrival, trips) at `target`: fewer trips or an earlier arrival."""
        out: list[StopJourney] = []
        best = UNREACHED
        for k in range(result.labels.shape[0]):
            arrival = int(result.labels[k, target])
            if arrival < best and result.kind[k, target] != KEPT:
                out.append(self._walk_back(result, k, target, days, forward=True))
                best = arrival
        return out

    def journeys_back(self, result: Labels, source: int, days: ServiceDays) -> list[StopJourney]:
        """From a `latest_departure` result, the Pareto set over (departure, trips) at `source`:
        fewer trips or a later departure."""
        out: list[StopJourney] = []
        best = NO_DEPARTURE
        for k in range(result.labels.shape[0]):
            departure = int(result.labels[k, source])
            if departure > best and result.kind[k, source] != KEPT:
                out.append(self._walk_back(result, k, source, days, forward=False))
                best = departure
        return out

    def latest_leave(self, result: Labels, stops: np.ndarray, seconds_to_stop: np.ndarray) -> int | None:
        """From a `latest_departure` result, the latest time to set off for one of `stops` (each
        `seconds_to_stop` away) and still make a journey of at least one trip; None if there is none."""
        if result.labels.shape[0] < 2 or not len(stops):
            return None
        labels = result.labels[1:, stops].astype(np.int64)
        # A footpath of a round after the first leads to a trip; a label kept from round 0 is a walk.
        by_trip = np.isin(result.kind[1:, stops], (TRANSIT, FOOTPATH)) & (labels > NO_DEPARTURE)
        if not by_trip.any():
            return None
        return int(np.where(by_trip, labels - np.asarray(seconds_to_stop, dtype=np.int64)[None, :], NO_DEPARTURE).max())

    def _transit_leg(self, trip: int, day: int, board: int, alight: int, days: ServiceDays) -> TransitLeg:
        tt = self.timetable
        p = int(self.trip_pattern[trip])
        s0 = int(tt.pattern_stop_offsets[p])
        n = int(tt.pattern_stop_offsets[p + 1]) - s0
        row = trip - int(tt.pattern_trip_offsets[p])
        base = int(tt.pattern_stop_time_offsets[p]) + row * n
        offset = int(days.day_offset[day])
        return TransitLeg(
            trip=trip,
            pattern=p,
            day=day,
            board_pos=board,
            alight_pos=alight,
            from_stop=int(tt.pattern_stops[s0 + board]),
            to_stop=int(tt.pattern_stops[s0 + alight]),
            departure=int(tt.departure[base + board]) + offset,
            arrival=int(tt.arrival[base + alight]) + offset,
        )

    def _walk_back(self, result: Labels, k: int, stop: int, days: ServiceDays, *, forward: bool) -> StopJourney:
        """The journey behind label [k, stop], its legs in travel order.

        The walk follows the parents to a SOURCE label: against travel order for a forward
        (`earliest_arrival`) result, where `stop` is the journey's target, and along it for a
        backward (`latest_departure`) one, where `stop` is its source.
        """
        tt = self.timetable
        legs: list[TransitLeg | FootpathLeg] = []
        start, label = stop, int(result.labels[k, stop])
        forced_transit = False
        while True:
            kind = TRANSIT if forced_transit else int(result.kind[k, stop])
            forced_transit = False
            if kind == KEPT:
                k -= 1
                continue
            if kind == SOURCE:
                break
            if kind == FOOTPATH:
                other = int(result.from_stop[k, stop])
                time = int(result.labels[k, stop])
                if forward:
                    walk = FootpathLeg(
                        from_stop=other, to_stop=stop, departure=time - footpath(tt, other, stop)[0], arrival=time
                    )
                else:
                    walk = FootpathLeg(
                        from_stop=stop, to_stop=other, departure=time, arrival=time + footpath(tt, stop, other)[0]
                    )
                legs.append(walk)
                stop = other
                # A footpath of round k > 0 connects to a trip taken in the same round.
                forced_transit = k > 0
                if k == 0:
                    break
                continue
            if kind != TRANSIT:
                raise RuntimeError(f"stop {stop} round {k} has no parent; labels are inconsistent")
            leg = self._transit_leg(
                int(result.trip[k, stop]),
                int(result.day[k, stop]),
                int(result.board[k, stop]),
                int(result.alight[k, stop]),
                days,
            )
            legs.append(leg)
            stop = leg.from_stop if forward else leg.to_stop
            k -= 1
        if forward:
            legs.reverse()
            source, target = stop, start
            departure, arrival = (legs[0].departure if legs else label), label
        else:
            source, target = start, stop
            departure, arrival = label, (legs[-1].arrival if legs else label)
        return StopJourney(
            source=source,
            target=target,
            departure=departure,
            arrival=arrival,
            trips=sum(isinstance(leg, TransitLeg) for leg in legs),
            legs=legs,
        )


def transfers_into(tt: Timetable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The footpaths grouped by the stop they lead to: offsets [S + 1], from-stops and seconds."""
    to = np.asarray(tt.transfer_to)
    origin = np.repeat(np.arange(tt.n_stops, dtype=np.int32), np.diff(np.asarray(tt.transfer_offsets)))
    order = np.argsort(to, kind="stable")
    offsets = np.r_[0, np.cumsum(np.bincount(to, minlength=tt.n_stops))].astype(np.int32)
    return (
        offsets,
        np.ascontiguousarray(origin[order]),
        np.ascontiguousarray(np.asarray(tt.transfer_s)[order], np.int32),
    )


def footpath(tt: Timetable, a: int, b: int) -> tuple[int, float]:
    """Seconds and metres of the footpath from stop a to stop b (the shortest if several)."""
    lo, hi = int(tt.transfer_offsets[a]), int(tt.transfer_offsets[a + 1])
    hits = lo + np.flatnonzero(np.asarray(tt.transfer_to[lo:hi]) == b)
    if not len(hits):
        raise RuntimeError(f"no footpath {a} -> {b}")
    best = hits[np.argmin(np.asarray(tt.transfer_s)[hits])]
    return int(tt.transfer_s[best]), float(tt.transfer_m[best])
