"""The RAPTOR kernels (forward and backward) against the pure-Python oracles and against
brute-force connection scans."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.builder import BuildInputs, build_network
from routing.model import Timetable
from routing.network import load_network
from routing.oracles import earliest_arrival_reference, latest_departure_reference
from routing.raptor import (
    NO_DEPARTURE,
    UNREACHED,
    FootpathLeg,
    Raptor,
    ServiceDays,
    StopJourney,
    TransitLeg,
    service_origin_epoch,
)
from tests.conftest import HERRENBERG, SHARED_DATA
from tests.helpers import oracle_labels

DAY = 86_400


def timetable_from_trips(
    n_stops: int,
    trips: list[tuple[list[int], list[int], list[int], list[int], list[int]]],
    footpaths: list[tuple[int, int, int]],
) -> Timetable:
    """A Timetable from explicit trips (stops, arrivals, departures, pickup, drop-off types).

    Trips with the same stops and types share a pattern when they do not overtake, as in the builder.
    """
    groups: dict[tuple, list[list[int]]] = {}
    for k, (stops, _arr, _dep, pick, drop) in enumerate(trips):
        groups.setdefault((tuple(stops), tuple(pick), tuple(drop)), []).append(k)
    patterns: list[tuple[tuple, list[int]]] = []
    for key, members in groups.items():
        members.sort(key=lambda k: (trips[k][2][0], k))
        split: list[list[int]] = []
        for k in members:
            for g in split:
                last = trips[g[-1]]
                if all(a >= b for a, b in zip(trips[k][1], last[1], strict=True)) and all(
                    a >= b for a, b in zip(trips[k][2], last[2], strict=True)
                ):
                    g.append(k)
                    break
            else:
                split.append([k])
        patterns += [(key, g) for g in split]
    pattern_stops, pick, drop, arrival, departure, trip_order = [], [], [], [], [], []
    stop_offsets, trip_offsets, st_offsets = [0], [0], [0]
    for (stops, pk, dp), members in patterns:
        pattern_stops += list(stops)
        pick += list(pk)
        drop += list(dp)
        for k in members:
            arrival += trips[k][1]
            departure += trips[k][2]
            trip_order.append(k)
        stop_offsets.append(len(pattern_stops))
        trip_offsets.append(len(trip_order))
        st_offsets.append(len(arrival))
    serving = sorted({(s, p) for p, ((stops, _, _), _) in enumerate(patterns) for s in stops})
    counts = np.bincount([s for s, _ in serving], minlength=n_stops) if serving else np.zeros(n_stops, int)
    footpaths = sorted(footpaths)
    fp_counts = np.bincount([a for a, _, _ in footpaths], minlength=n_stops) if footpaths else np.zeros(n_stops, int)
    i32 = np.int32
    strs = np.array([str(i) for i in range(n_stops)])
    return Timetable(
        stop_id=strs,
        stop_name=strs,
        stop_lat=np.zeros(n_stops),
        stop_lon=np.zeros(n_stops),
        stop_parent=np.full(n_stops, -1, i32),
        stop_location_type=np.zeros(n_stops, np.int8),
        stop_wheelchair=np.zeros(n_stops, np.int8),
        stop_feed=np.zeros(n_stops, np.int16),
        stop_min_transfer_s=np.zeros(n_stops, i32),
        route_id=np.array(["r"]),
        route_short_name=np.array(["r"]),
        route_long_name=np.array(["r"]),
        route_type=np.array([3], np.int16),
        route_agency=np.array(["a"]),
        pattern_route=np.zeros(len(patterns), i32),
        pattern_stop_offsets=np.array(stop_offsets, i32),
        pattern_stops=np.array(pattern_stops, i32),
        pattern_pickup=np.array(pick, np.int8),
        pattern_dropoff=np.array(drop, np.int8),
        pattern_trip_offsets=np.array(trip_offsets, i32),
        pattern_stop_time_offsets=np.array(st_offsets, np.int64),
        trip_id=np.array([str(k) for k in trip_order]),
        trip_service=np.zeros(len(trip_order), i32),
        trip_wheelchair=np.zeros(len(trip_order), np.int8),
        trip_headsign=np.array([""] * len(trip_order)),
        trip_shape=np.full(len(trip_order), -1, i32),
        shape_id=np.array([""])[:0],
        shape_offsets=np.zeros(1, i32),
        shape_lat=np.zeros(0),
        shape_lon=np.zeros(0),
        arrival=np.array(arrival, i32),
        departure=np.array(departure, i32),
        stop_sequence=np.array(
            [i for (stops, _, _), members in patterns for _ in members for i in range(len(stops))], i32
        ),
        stop_pattern_offsets=np.r_[0, np.cumsum(counts)].astype(i32),
        stop_patterns=np.array([p for _, p in serving], i32),
        service_id=np.array(["s"]),
        service_days=np.ones((1, 1), np.uint8),
        transfer_offsets=np.r_[0, np.cumsum(fp_counts)].astype(i32),
        transfer_to=np.array([b for _, b, _ in footpaths], i32),
        transfer_s=np.array([s for _, _, s in footpaths], i32),
        transfer_m=np.array([s * 1.3 for _, _, s in footpaths], np.float32),
    )


@st.composite
def random_timetables(draw: st.DrawFn) -> tuple[Timetable, dict]:
    n_stops = draw(st.integers(2, 9))
    routes = draw(
        st.lists(st.lists(st.integers(0, n_stops - 1), min_size=2, max_size=5, unique=True), min_size=1, max_size=4)
    )
    trips = []
    for stops in routes:
        pick = draw(st.lists(st.sampled_from([0, 0, 0, 1]), min_size=len(stops), max_size=len(stops)))
        drop = draw(st.lists(st.sampled_from([0, 0, 0, 1]), min_size=len(stops), max_size=len(stops)))
        for _ in range(draw(st.integers(1, 5))):
            t = draw(st.integers(0, 30 * 3600))
            arr, dep = [], []
            for _ in stops:
                arr.append(t)
                t += draw(st.integers(0, 300))
                dep.append(t)
                t += draw(st.integers(0, 1800))
            trips.append((stops, arr, dep, pick, drop))
    footpaths = {
        (a, b): s
        for a, b, s in draw(
            st.lists(
                st.tuples(st.integers(0, n_stops - 1), st.integers(0, n_stops - 1), st.integers(0, 900)),
                max_size=8,
            )
        )
        if a != b
    }
    tt = timetable_from_trips(n_stops, trips, [(a, b, s) for (a, b), s in footpaths.items()])
    n_sources = draw(st.integers(1, 2))
    query = {
        "sources": np.array(
            draw(st.lists(st.integers(0, n_stops - 1), min_size=n_sources, max_size=n_sources)), np.int32
        ),
        "source_times": np.array(
            draw(st.lists(st.integers(0, 30 * 3600), min_size=n_sources, max_size=n_sources)), np.int32
        ),
        "max_rounds": draw(st.integers(1, 4)),
        "trip_active": np.array(
            draw(
                st.lists(st.lists(st.integers(0, 1), min_size=tt.n_trips, max_size=tt.n_trips), min_size=3, max_size=3)
            ),
            np.uint8,
        ),
        "day_offset": np.array([-DAY, 0, DAY], np.int32),
        "change_s": np.array(draw(st.lists(st.integers(0, 300), min_size=n_stops, max_size=n_stops)), np.int32),
        "stop_ok": np.array(
            draw(st.lists(st.sampled_from([1, 1, 1, 0]), min_size=n_stops, max_size=n_stops)), np.uint8
        ),
        "use_footpaths": draw(st.booleans()),
    }
    return tt, query


@settings(max_examples=400, deadline=None)
@given(random_timetables())
def test_kernel_matches_oracle_on_random_timetables(case: tuple[Timetable, dict]) -> None:
    tt, q = case
    raptor = Raptor(tt, dt.date(2020, 1, 1), "UTC")
    kernel = raptor._kernel.earliest_arrival(
        q["sources"],
        q["source_times"],
        q["max_rounds"],
        *raptor.active_rows(q["trip_active"]),
        q["day_offset"],
        q["change_s"],
        q["stop_ok"],
        q["use_footpaths"],
    )
    oracle = earliest_arrival_reference(tt, **q)
    assert kernel["labels"].tolist() == oracle.tolist()


@settings(max_examples=400, deadline=None)
@given(random_timetables())
def test_backward_kernel_matches_oracle_on_random_timetables(case: tuple[Timetable, dict]) -> None:
    tt, q = case
    raptor = Raptor(tt, dt.date(2020, 1, 1), "UTC")
    kernel = raptor._kernel.latest_departure(
        q["sources"],
        q["source_times"],
        q["max_rounds"],
        *raptor.active_rows(q["trip_active"]),
        q["day_offset"],
        q["change_s"],
        q["stop_ok"],
        q["use_footpaths"],
    )
    q["targets"], q["target_times"] = q.pop("sources"), q.pop("source_times")
    oracle = latest_departure_reference(tt, **q)
    assert kernel["labels"].tolist() == oracle.tolist()


def _connection_scan(tt: Timetable, days: ServiceDays, source: int, start: int) -> np.ndarray:
    """Brute-force earliest arrival over all connections, unlimited transfers, no footpaths."""
    conns = []
    for p in range(tt.n_patterns):
        s0, s1 = int(tt.pattern_stop_offsets[p]), int(tt.pattern_stop_offsets[p + 1])
        n = s1 - s0
        stops = np.asarray(tt.pattern_stops[s0:s1])
        pick = np.asarray(tt.pattern_pickup[s0:s1])
        drop = np.asarray(tt.pattern_dropoff[s0:s1])
        for t in range(int(tt.pattern_trip_offsets[p]), int(tt.pattern_trip_offsets[p + 1])):
            row = t - int(tt.pattern_trip_offsets[p])
            base = int(tt.pattern_stop_time_offsets[p]) + row * n
            for d in range(len(days.day_offset)):
                if not days.trip_active[d, t]:
                    continue
                off = int(days.day_offset[d])
                for i in range(n - 1):
                    conns.append(
                        (
                            int(tt.departure[base + i]) + off,
                            int(tt.arrival[base + i + 1]) + off,
                            t * 4 + d,
                            i,
                            int(stops[i]),
                            int(stops[i + 1]),
                            pick[i] != 1,
                            drop[i + 1] != 1,
                        )
                    )
    conns.sort()
    best = np.full(tt.n_stops, UNREACHED, dtype=np.int64)
    best[source] = start
    boarded_at: dict[int, int] = {}  # trip -> first position where it can be boarded
    # Connections of zero duration may chain across trips at one instant, which one pass in
    # departure order can miss: scan again until nothing improves.
    changed = True
    while changed:
        changed = False
        for dep, arr, trip, i, a, b, can_board, can_alight in conns:
            if dep < start:
                continue
            if can_board and best[a] <= dep and boarded_at.get(trip, i + 1) > i:
                boarded_at[trip] = i
            if boarded_at.get(trip, i + 1) <= i and can_alight and arr < best[b]:
                best[b] = arr
                changed = True
    return best


def _connection_scan_back(tt: Timetable, days: ServiceDays, target: int, deadline: int) -> np.ndarray:
    """Brute-force latest departure reaching `target` by `deadline`, unlimited transfers, no footpaths."""
    conns = []
    for p in range(tt.n_patterns):
        s0, s1 = int(tt.pattern_stop_offsets[p]), int(tt.pattern_stop_offsets[p + 1])
        n = s1 - s0
        stops = np.asarray(tt.pattern_stops[s0:s1])
        pick = np.asarray(tt.pattern_pickup[s0:s1])
        drop = np.asarray(tt.pattern_dropoff[s0:s1])
        for t in range(int(tt.pattern_trip_offsets[p]), int(tt.pattern_trip_offsets[p + 1])):
            row = t - int(tt.pattern_trip_offsets[p])
            base = int(tt.pattern_stop_time_offsets[p]) + row * n
            for d in range(len(days.day_offset)):
                if not days.trip_active[d, t]:
                    continue
                off = int(days.day_offset[d])
                for i in range(n - 1):
                    conns.append(
                        (
                            int(tt.arrival[base + i + 1]) + off,
                            int(tt.departure[base + i]) + off,
                            t * 4 + d,
                            i,
                            int(stops[i]),
                            int(stops[i + 1]),
                            pick[i] != 1,
                            drop[i + 1] != 1,
                        )
                    )
    conns.sort(reverse=True)
    best = np.full(tt.n_stops, NO_DEPARTURE, dtype=np.int64)
    best[target] = deadline
    exit_at: dict[int, int] = {}  # trip -> last position from which it leads somewhere in time
    changed = True
    while changed:
        changed = False
        for arr, dep, trip, i, a, b, can_board, can_alight in conns:
            if arr > deadline:
                continue
            if can_alight and arr <= best[b] and exit_at.get(trip, -1) < i:
                exit_at[trip] = i
            if exit_at.get(trip, -1) >= i and can_board and dep > best[a]:
                best[a] = dep
                changed = True
    return best


def _assert_latest_is_exact(
    raptor: Raptor, days: ServiceDays, source: int, target: int, deadline: int, **options
) -> int:
    """The backward search's latest departure per round reaches `target` by `deadline` going forward,
    and leaving one second later does not; returns how many rounds had a departure."""
    back = raptor.latest_departure(np.array([target]), np.array([deadline]), days, **options)
    checked = 0
    for k in range(back.labels.shape[0]):
        latest = int(back.labels[k, source])
        if latest == NO_DEPARTURE:
            continue
        on_time = raptor.earliest_arrival(np.array([source]), np.array([latest]), days, **options)
        assert on_time.labels[k, target] <= deadline, (source, target, deadline, k)
        late = raptor.earliest_arrival(np.array([source]), np.array([latest + 1]), days, **options)
        assert late.labels[k, target] > deadline, (source, target, deadline, k)
        checked += 1
    return checked


REAL_FEEDS = [
    *sorted((SHARED_DATA / "gtfs").glob("*.zip")),
    HERRENBERG / "gtfs" / "vvs-herrenberg-2021-subset.gtfs.zip",
]


@pytest.mark.parametrize("feed", REAL_FEEDS, ids=lambda p: p.name)
def test_searches_equal_connection_scans_and_each_other_on_real_feeds(feed: Path, tmp_path: Path) -> None:
    manifest = build_network(BuildInputs(gtfs=[str(feed)]), tmp_path / "net")
    net = load_network(tmp_path / "net")
    tt = net.timetable
    raptor = Raptor(tt, manifest.first_date, manifest.timezone)
    # The busiest day of the feed, so that the comparison covers most trips.
    per_day = np.unpackbits(np.asarray(tt.service_days), axis=1, bitorder="little")[np.asarray(tt.trip_service)].sum(
        axis=0
    )
    date = manifest.first_date + dt.timedelta(days=int(np.argmax(per_day)))
    days = raptor.service_days(date)
    rng = np.random.default_rng(11)
    served = np.unique(np.asarray(tt.pattern_stops))
    pairs = 0
    for source in rng.choice(served, size=min(12, len(served)), replace=False):
        start = int(rng.integers(5 * 3600, 10 * 3600))
        result = raptor.earliest_arrival(
            np.array([source]),
            np.array([start]),
            days,
            max_transfers=60,
            min_transfer_s=0,
            use_footpaths=False,
        )
        expected = _connection_scan(tt, days, int(source), start)
        got = result.labels[-1].astype(np.int64)
        assert got.tolist() == expected.tolist()
        pairs += int((got < UNREACHED).sum())
    assert pairs >= 500 or pairs == len(served) * 12
    # The same backward: latest departures to a target by a deadline.
    pairs = 0
    for target in rng.choice(served, size=min(6, len(served)), replace=False):
        deadline = int(rng.integers(8 * 3600, 20 * 3600))
        result = raptor.latest_departure(
            np.array([target]),
            np.array([deadline]),
            days,
            max_transfers=60,
            min_transfer_s=0,
            use_footpaths=False,
        )
        expected = _connection_scan_back(tt, days, int(target), deadline)
        got = result.labels[-1].astype(np.int64)
        assert got.tolist() == expected.tolist()
        pairs += int((got > NO_DEPARTURE).sum())
    assert pairs >= 250 or pairs == len(served) * 6
    # Forward and backward agree on random queries with footpaths and change times: the latest
    # departure arrives in time, a second later does not.
    rounds = 0
    for _ in range(8):
        source, target = (int(s) for s in rng.choice(served, size=2, replace=False))
        rounds += _assert_latest_is_exact(
            raptor, days, source, target, int(rng.integers(8 * 3600, 20 * 3600)), max_transfers=3
        )
    assert rounds >= 4


@pytest.fixture(scope="module")
def herrenberg_raptor(network_dir: Path) -> tuple[Raptor, object]:
    net = load_network(network_dir)
    return Raptor(net.timetable, net.manifest.first_date, net.manifest.timezone), net


def test_kernel_matches_oracle_on_herrenberg_with_footpaths(herrenberg_raptor: tuple[Raptor, object]) -> None:
    raptor, _ = herrenberg_raptor
    tt = raptor.timetable
    days = raptor.service_days(dt.date(2020, 10, 6))
    rng = np.random.default_rng(3)
    served = np.unique(np.asarray(tt.pattern_stops))
    for source in rng.choice(served, size=4, replace=False):
        start = int(rng.integers(6 * 3600, 9 * 3600))
        result = raptor.earliest_arrival(np.array([source]), np.array([start]), days, max_transfers=3)
        assert result.labels.tolist() == oracle_labels(raptor, days, int(source), start, forward=True).tolist()


def test_backward_kernel_matches_oracle_and_journeys_keep_the_deadline_on_herrenberg(
    herrenberg_raptor: tuple[Raptor, object],
) -> None:
    raptor, _ = herrenberg_raptor
    tt = raptor.timetable
    days = raptor.service_days(dt.date(2020, 10, 6))
    rng = np.random.default_rng(4)
    served = np.unique(np.asarray(tt.pattern_stops))
    change = raptor.change_times(60)
    checked = 0
    for target in rng.choice(served, size=4, replace=False):
        deadline = int(rng.integers(8 * 3600, 11 * 3600))
        result = raptor.latest_departure(np.array([target]), np.array([deadline]), days, max_transfers=3)
        assert result.labels.tolist() == oracle_labels(raptor, days, int(target), deadline, forward=False).tolist()
        for source in served:
            journeys: list[StopJourney] = raptor.journeys_back(result, int(source), days)
            for journey in journeys:
                checked += 1
                assert journey.departure == result.labels[journey.trips, source]
                assert journey.arrival <= deadline and journey.target == target
                time, stop, prev = journey.departure, int(source), None
                for leg in journey.legs:
                    assert leg.from_stop == stop, "legs are connected"
                    assert leg.departure >= time and leg.arrival >= leg.departure, "no leg goes back in time"
                    if isinstance(leg, TransitLeg) and isinstance(prev, TransitLeg) and leg.from_stop == prev.to_stop:
                        assert leg.departure >= prev.arrival + change[leg.from_stop], "the change time holds"
                    time, stop, prev = leg.arrival, leg.to_stop, leg
            assert [j.departure for j in journeys] == sorted(j.departure for j in journeys)
    assert checked > 20


def test_journeys_are_connected_and_move_forward(herrenberg_raptor: tuple[Raptor, object]) -> None:
    raptor, _ = herrenberg_raptor
    tt = raptor.timetable
    index = {str(s): i for i, s in enumerate(tt.stop_id)}
    # S-Bahn Herrenberg -> Ehningen and on to bus 764's stops: needs a change at Ehningen.
    days = raptor.service_days(dt.date(2020, 10, 6))
    source = index.get("vvs-s1-only:de:08115:4512:1:2")
    served = np.unique(np.asarray(tt.pattern_stops))
    rng = np.random.default_rng(5)
    sources = [source] if source is not None else []
    sources += list(rng.choice(served, size=10, replace=False))
    checked = 0
    for src in sources:
        result = raptor.earliest_arrival(np.array([src]), np.array([7 * 3600]), days)
        for target in rng.choice(served, size=40, replace=False):
            for journey in raptor.journeys(result, int(target), days):
                checked += 1
                assert journey.arrival == result.labels[journey.trips, target]
                time, stop, prev = 7 * 3600, int(src), None
                for leg in journey.legs:
                    assert leg.from_stop == stop, "legs are connected"
                    assert leg.departure >= time and leg.arrival >= leg.departure, "no leg goes back in time"
                    if isinstance(leg, TransitLeg) and isinstance(prev, TransitLeg) and leg.from_stop == prev.to_stop:
                        assert leg.departure >= prev.arrival + 60, "the minimum change time holds"
                    time, stop, prev = leg.arrival, leg.to_stop, leg
                    assert isinstance(leg, TransitLeg | FootpathLeg)
                assert stop == target
    assert checked > 20


def test_service_day_origin_is_noon_minus_twelve_hours() -> None:
    # On the day DST starts in Berlin (2020-03-29) the origin is 23:00 of the day before, not midnight.
    origin = service_origin_epoch(dt.date(2020, 3, 29), "Europe/Berlin")
    assert origin == int(dt.datetime(2020, 3, 28, 22, 0, tzinfo=dt.UTC).timestamp())


def test_wheelchair_journeys_use_only_accessible_trips_and_stops(tmp_path: Path) -> None:
    from tests.conftest import derive_feed

    source = HERRENBERG / "gtfs" / "vvs-bus-751-only.gtfs.zip"

    def mark_trips(text: str) -> str:
        lines = text.splitlines()
        out = [lines[0] + ",wheelchair_accessible"]
        out += [line + (",1" if k % 2 else ",2") for k, line in enumerate(lines[1:])]
        return "\n".join(out) + "\n"

    def mark_stops(text: str) -> str:
        lines = text.splitlines()
        out = [lines[0] + ",wheelchair_boarding"]
        out += [line + (",2" if k % 5 == 4 else ",1") for k, line in enumerate(lines[1:])]
        return "\n".join(out) + "\n"

    feed = derive_feed(source, tmp_path / "wc.gtfs.zip", {"trips.txt": mark_trips, "stops.txt": mark_stops})
    manifest = build_network(BuildInputs(gtfs=[str(feed)]), tmp_path / "net")
    tt = load_network(tmp_path / "net").timetable
    raptor = Raptor(tt, manifest.first_date, manifest.timezone)
    days = raptor.service_days(dt.date(2020, 10, 6))
    ok_stops = raptor.wheelchair_stops()
    served = np.unique(np.asarray(tt.pattern_stops))
    plain_uses_inaccessible = False
    checked = 0
    for source_stop in served:
        for wheelchair in (False, True):
            result = raptor.earliest_arrival(np.array([source_stop]), np.array([6 * 3600]), days, wheelchair=wheelchair)
            for target in served:
                for journey in raptor.journeys(result, int(target), days):
                    for leg in journey.legs:
                        if not isinstance(leg, TransitLeg):
                            continue
                        accessible = (
                            tt.trip_wheelchair[leg.trip] == 1 and ok_stops[leg.from_stop] and ok_stops[leg.to_stop]
                        )
                        if wheelchair:
                            checked += 1
                            assert accessible
                        else:
                            plain_uses_inaccessible |= not accessible
    assert checked > 50 and plain_uses_inaccessible
