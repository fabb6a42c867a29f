"""GTFS-Realtime trip updates on built networks: the real Caltrain updates move Caltrain's times exactly as
they say, and trip updates made with the reference bindings delay, cancel and skip on the Herrenberg S1;
the RAPTOR kernel still equals its oracle on the overlay, overtaking runs included."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
import zoneinfo
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import msgspec
import numpy as np
import pytest
from google.transit import gtfs_realtime_pb2 as pb

from feeds.gtfs_rt import FeedMessage, read_feed_message
from routing.builder import BuildInputs, build_network
from routing.model import Timetable
from routing.network import load_network
from routing.plan import Endpoint, Leg, PlanRequest, Router
from routing.raptor import Raptor, service_origin_epoch
from routing.realtime import RealtimeOverlay
from tests.conftest import HERRENBERG, shared
from tests.helpers import oracle_labels

CALTRAIN = shared("rt", "caltrain.gtfs.zip")
CALTRAIN_UPDATES = shared("rt", "caltrain-trip-updates.pb")
PACIFIC = zoneinfo.ZoneInfo("America/Los_Angeles")
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
S1 = "vvs-s1-only"
S1_DATE = dt.date(2020, 10, 6)  # a Tuesday inside the S1 feed's period (June to December 2020)
# Herrenberg 07:46 -> Kirchheim (T), at Ehningen 07:55: on S1_DATE the train of this pattern after it leaves 30 minutes later.
S1_TRIP = "67.T0.10-1-j20-1.21.R"
EHNINGEN = f"{S1}:de:08115:5773:1:1"
HERRENBERG_S1 = f"{S1}:de:08115:4512:1:2"
HULB = f"{S1}:de:08115:7115:1:2"
BOEBLINGEN = f"{S1}:de:08115:7100:2:3"
VAIHINGEN = f"{S1}:de:08111:6002:1:3"
MAX_AGE_S = 300


# -- networks and messages -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def caltrain(tmp_path_factory: pytest.TempPathFactory) -> Router:
    out = tmp_path_factory.mktemp("caltrain") / "net"
    build_network(BuildInputs(gtfs=[str(CALTRAIN)]), out)
    return Router(load_network(out))


@pytest.fixture(scope="module")
def s1(tmp_path_factory: pytest.TempPathFactory) -> Router:
    out = tmp_path_factory.mktemp("s1") / "net"
    build_network(BuildInputs(gtfs=[str(HERRENBERG / "gtfs" / "vvs-s1-only.gtfs.zip")]), out)
    return Router(load_network(out))


def _epoch(date: dt.date, hh: int, mm: int, tz: zoneinfo.ZoneInfo = BERLIN) -> int:
    return int(dt.datetime.combine(date, dt.time(hh, mm), tz).timestamp())


def _message(timestamp: int) -> pb.FeedMessage:
    message = pb.FeedMessage()
    message.header.gtfs_realtime_version = "2.0"
    message.header.timestamp = timestamp
    return message


def _trip(message: pb.FeedMessage, trip_id: str, start_date: dt.date | None = S1_DATE) -> pb.TripUpdate:
    update = message.entity.add(id=f"e{len(message.entity)}").trip_update
    update.trip.trip_id = trip_id
    if start_date is not None:
        update.trip.start_date = start_date.strftime("%Y%m%d")
    return update


def _delayed(trip_id: str, delay_s: int, stamp: int, start_date: dt.date | None = S1_DATE) -> FeedMessage:
    message = _message(stamp)
    _trip(message, trip_id, start_date).stop_time_update.add(stop_sequence=1).departure.delay = delay_s
    return read_feed_message(message.SerializeToString(), "test")


def _apply(router: Router, feed_id: str, message: FeedMessage, now_s: int | None = None) -> RealtimeOverlay:
    stamp = message.timestamp or 0
    return router.realtime_index.get().apply(
        {feed_id: message}, now_s=stamp + 30 if now_s is None else now_s, max_age_s=MAX_AGE_S
    )


def _runs(tt: Timetable, trip_id: str) -> list[int]:
    return [int(t) for t in np.flatnonzero(np.asarray(tt.trip_id) == trip_id)]


def _stop_times(tt: Timetable, trip: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(stops, arrivals, departures, stop sequences) of a trip of `tt`."""
    trip_pattern = np.repeat(np.arange(tt.n_patterns), np.diff(np.asarray(tt.pattern_trip_offsets)))
    p = int(trip_pattern[trip])
    s0, s1 = int(tt.pattern_stop_offsets[p]), int(tt.pattern_stop_offsets[p + 1])
    n = s1 - s0
    at = int(tt.pattern_stop_time_offsets[p]) + (trip - int(tt.pattern_trip_offsets[p])) * n
    span = slice(at, at + n)
    return (
        np.asarray(tt.pattern_stops[s0:s1]),
        np.asarray(tt.arrival[span]),
        np.asarray(tt.departure[span]),
        np.asarray(tt.stop_sequence[span]),
    )


def _plan(router: Router, origin: str, destination: str, depart: dt.datetime) -> list[list[Leg]]:
    plan = router.plan(
        PlanRequest(origin=Endpoint(stop=origin), destination=Endpoint(stop=destination), depart=depart, max_walk_m=0)
    )
    return [[leg for leg in it.legs if leg.mode == "transit"] for it in plan.itineraries]


def _assert_fifo(tt: Timetable) -> None:
    """No trip of a pattern arrives or departs anywhere before the row above it; times never run backwards."""
    for p in range(tt.n_patterns):
        n = int(tt.pattern_stop_offsets[p + 1] - tt.pattern_stop_offsets[p])
        rows = int(tt.pattern_trip_offsets[p + 1] - tt.pattern_trip_offsets[p])
        at = int(tt.pattern_stop_time_offsets[p])
        arr = np.asarray(tt.arrival[at : at + rows * n]).reshape(rows, n)
        dep = np.asarray(tt.departure[at : at + rows * n]).reshape(rows, n)
        assert (np.diff(arr, axis=0) >= 0).all() and (np.diff(dep, axis=0) >= 0).all(), f"pattern {p} overtakes"
        assert (dep >= arr).all() and (arr[:, 1:] >= dep[:, :-1]).all(), f"pattern {p} runs backwards"


# -- Caltrain: the real updates ------------------------------------------------------------------


def _caltrain_feed() -> Iterator[tuple[pb.TripUpdate, dt.date]]:
    """The file's trip updates as the reference bindings read them, with their start dates."""
    message = pb.FeedMessage()
    message.ParseFromString(CALTRAIN_UPDATES.read_bytes())
    for entity in message.entity:
        update = entity.trip_update
        yield update, dt.datetime.strptime(update.trip.start_date, "%Y%m%d").date()


def _gtfs_stop_times() -> dict[str, list[dict[str, str]]]:
    with zipfile.ZipFile(CALTRAIN) as zf:
        rows = list(csv.DictReader(io.StringIO(zf.read("stop_times.txt").decode("utf-8-sig"))))
    trips: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        trips.setdefault(row["trip_id"], []).append(row)
    for stops in trips.values():
        stops.sort(key=lambda r: int(r["stop_sequence"]))
    return trips


def _gtfs_seconds(text: str) -> int:
    h, m, s = (int(x) for x in text.split(":"))
    return h * 3600 + m * 60 + s


@pytest.fixture(scope="module")
def caltrain_overlay(caltrain: Router) -> RealtimeOverlay:
    message = read_feed_message(CALTRAIN_UPDATES.read_bytes(), str(CALTRAIN_UPDATES))
    return _apply(caltrain, "caltrain", message, now_s=1699405534 + 60)


def test_caltrain_updates_move_the_run_they_name_exactly_as_their_stop_time_updates_say(
    caltrain: Router, caltrain_overlay: RealtimeOverlay
) -> None:
    overlay, static = caltrain_overlay, caltrain.network.timetable
    report = overlay.feeds[0]
    assert (report.used, report.trip_updates, report.realtime_runs, report.cancelled_runs) == (True, 19, 19, 0)
    assert report.unknown_trips == report.unknown_stops == report.not_running == 0
    tt, stop_times = overlay.timetable, _gtfs_stop_times()
    first_date = caltrain.network.manifest.first_date
    checked = propagated = 0
    for update, date in _caltrain_feed():
        trip_id = f"caltrain:{update.trip.trip_id}"
        timetable_trip, run = _runs(tt, trip_id)
        assert overlay.run_of[run] == timetable_trip and overlay.is_realtime(run)
        origin = service_origin_epoch(date, "America/Los_Angeles")
        stops, arr, dep, sequence = _stop_times(tt, run)
        gtfs = stop_times[update.trip.trip_id]
        assert sequence.tolist() == [int(r["stop_sequence"]) for r in gtfs]
        assert [str(s) for s in np.asarray(tt.stop_id)[stops]] == [f"caltrain:{r['stop_id']}" for r in gtfs]
        named = {u.stop_sequence: u for u in update.stop_time_update}
        delay = None  # the last named stop's delay, which the stops after it take until the next one named
        for i, row in enumerate(gtfs):
            scheduled_arr, scheduled_dep = _gtfs_seconds(row["arrival_time"]), _gtfs_seconds(row["departure_time"])
            u = named.get(int(row["stop_sequence"]))
            if u is None:
                # Caltrain names the stops from the train's next one on, some not to the end of the trip:
                # those before keep the timetable, those after take the delay.
                assert (arr[i], dep[i]) == (scheduled_arr + (delay or 0), scheduled_dep + (delay or 0))
                propagated += delay is not None
                continue
            event = u.departure if u.HasField("departure") else u.arrival
            delay = event.time - origin - (scheduled_dep if u.HasField("departure") else scheduled_arr)
            assert u.stop_id == row["stop_id"]
            if u.HasField("arrival"):
                assert origin + int(arr[i]) == u.arrival.time
                checked += 1
            else:  # the train's current stop: the arrival keeps the departure's delay
                assert arr[i] == scheduled_arr + (u.departure.time - origin - scheduled_dep)
            if u.HasField("departure"):
                assert origin + int(dep[i]) == u.departure.time
                checked += 1
            else:  # the last stop: the departure keeps the arrival's delay
                assert dep[i] == arr[i] + scheduled_dep - scheduled_arr
        # The run of that day became the realtime one; the trip's other days keep the timetable.
        day = (date - first_date).days
        service = int(tt.trip_service[timetable_trip])
        assert service != int(static.trip_service[timetable_trip])
        assert caltrain.realtime_index.get().runs_on[int(static.trip_service[timetable_trip]), day]
        raptor = overlay.raptor
        active = raptor.service_days(date).trip_active[1]
        assert active[run] and not active[timetable_trip]
        other_days = raptor.service_days(date + dt.timedelta(days=1)).trip_active[1]
        assert other_days[timetable_trip] and not other_days[run]
        assert _stop_times(tt, timetable_trip)[1].tolist() == [_gtfs_seconds(r["arrival_time"]) for r in gtfs]
    assert checked > 250 and propagated > 0
    _assert_fifo(tt)
    # The network's own arrays are untouched (and shared where the overlay keeps them).
    assert overlay.base is static and tt.stop_id is static.stop_id and tt.transfer_to is static.transfer_to
    assert static.n_trips == tt.n_trips - 19


def test_a_plan_on_caltrain_boards_at_the_predicted_time_and_shows_the_timetable_beside_it(
    caltrain: Router, caltrain_overlay: RealtimeOverlay
) -> None:
    # Trip 124 leaves San Jose Diridon (70232) at 17:03 by the timetable, at 17:05:04 by the file.
    depart = dt.datetime(2023, 11, 7, 16, 55, tzinfo=PACIFIC)
    static = _plan(caltrain, "caltrain:70232", "caltrain:70272", depart)
    live = _plan(caltrain.with_realtime(caltrain_overlay), "caltrain:70232", "caltrain:70272", depart)
    (leg,) = static[0]
    assert (leg.trip, leg.departure.time(), leg.realtime, leg.delay_s) == ("caltrain:124", dt.time(17, 3), False, None)
    assert leg.scheduled_departure == leg.departure
    (leg,) = live[0]
    assert leg.trip == "caltrain:124" and leg.realtime
    assert int(leg.departure.timestamp()) == 1699405504 and int(leg.arrival.timestamp()) == 1699406518
    assert (leg.scheduled_departure, leg.scheduled_arrival) == (
        dt.datetime(2023, 11, 7, 17, 3, tzinfo=PACIFIC),
        dt.datetime(2023, 11, 7, 17, 21, tzinfo=PACIFIC),
    )
    assert leg.delay_s == 124
    # The next day the same train keeps its timetable.
    (leg,) = _plan(
        caltrain.with_realtime(caltrain_overlay), "caltrain:70232", "caltrain:70272", depart + dt.timedelta(1)
    )[0]
    assert (leg.trip, leg.departure.time(), leg.realtime) == ("caltrain:124", dt.time(17, 3), False)


def _caltrain_edited(cancel: str, skip: tuple[str, int]) -> FeedMessage:
    """The real Caltrain message with one trip cancelled and one stop of another skipped."""
    message = pb.FeedMessage()
    message.ParseFromString(CALTRAIN_UPDATES.read_bytes())
    for entity in message.entity:
        update = entity.trip_update
        if update.trip.trip_id == cancel:
            update.trip.schedule_relationship = pb.TripDescriptor.CANCELED
            del update.stop_time_update[:]
        if update.trip.trip_id == skip[0]:
            (u,) = [u for u in update.stop_time_update if u.stop_sequence == skip[1]]
            u.schedule_relationship = pb.TripUpdate.StopTimeUpdate.SKIPPED
    return read_feed_message(message.SerializeToString(), "edited")


def _first_leg(router: Router, origin: str, destination: str, depart: dt.datetime) -> Leg:
    return _plan(router, origin, destination, depart)[0][0]


def test_a_cancelled_caltrain_run_and_a_skipped_stop_are_not_used(
    caltrain: Router, caltrain_overlay: RealtimeOverlay
) -> None:
    # Southbound trip 126 (16:37 from San Francisco) cancelled; trip 310 skips Palo Alto (stop_sequence 8).
    overlay = _apply(caltrain, "caltrain", _caltrain_edited(cancel="126", skip=("310", 8)), now_s=1699405534)
    assert (overlay.feeds[0].cancelled_runs, overlay.feeds[0].skipped_stops) == (1, 1)
    edited, unedited = caltrain.with_realtime(overlay), caltrain.with_realtime(caltrain_overlay)
    san_francisco, hillsdale, palo_alto, san_jose = (
        "caltrain:70012",
        "caltrain:70112",
        "caltrain:70172",
        "caltrain:70262",
    )
    bayshore = "caltrain:70032"  # a local stop: from San Francisco after 16:00, 126 is the train there
    # Before 126 leaves, the timetable's plans and the real updates' take it; the edited updates' never do.
    for minute in (0, 20, 36):
        depart = dt.datetime(2023, 11, 7, 16, minute, tzinfo=PACIFIC)
        assert _first_leg(caltrain, san_francisco, bayshore, depart).trip == "caltrain:126"
        assert _first_leg(unedited, san_francisco, bayshore, depart).trip == "caltrain:126"
        legs = _plan(edited, san_francisco, bayshore, depart)
        assert legs and all(leg.trip != "caltrain:126" for it in legs for leg in it)
    # Just before 310 reaches Palo Alto or leaves Hillsdale it is the train to take, unless Palo Alto is skipped.
    for origin, destination in ((palo_alto, san_jose), (hillsdale, palo_alto)):
        (run,) = [t for t in _runs(caltrain_overlay.timetable, "caltrain:310") if caltrain_overlay.is_realtime(t)]
        stops, _, dep, _ = _stop_times(caltrain_overlay.timetable, run)
        (i,) = np.flatnonzero(np.asarray(caltrain_overlay.timetable.stop_id)[stops] == origin)
        depart = dt.datetime.fromtimestamp(
            service_origin_epoch(dt.date(2023, 11, 7), "America/Los_Angeles") + int(dep[i]) - 60, PACIFIC
        )
        leg = _first_leg(unedited, origin, destination, depart)
        assert leg.trip == "caltrain:310" and leg.realtime
        legs = _plan(edited, origin, destination, depart)
        assert legs and all(leg.trip != "caltrain:310" for it in legs for leg in it), (
            "no one boards or alights where it skips"
        )
    # The next day 126 runs by the timetable.
    next_day = dt.datetime(2023, 11, 8, 16, 20, tzinfo=PACIFIC)
    assert _first_leg(edited, san_francisco, bayshore, next_day).trip == "caltrain:126"


def _kernel_equals_oracle(
    raptor: Raptor, date: dt.date, sources: np.ndarray, start: int, rng: np.random.Generator
) -> int:
    """Forward and backward searches from random times equal the oracle's; returns how many labels were reached."""
    days = raptor.service_days(date)
    reached = 0
    for source in sources.tolist():
        t0 = start + int(rng.integers(0, 3 * 3600))
        forward = raptor.earliest_arrival(np.array([source]), np.array([t0]), days, max_transfers=3)
        assert forward.labels.tolist() == oracle_labels(raptor, days, source, t0, forward=True).tolist()
        backward = raptor.latest_departure(np.array([source]), np.array([t0 + 3600]), days, max_transfers=3)
        assert backward.labels.tolist() == oracle_labels(raptor, days, source, t0 + 3600, forward=False).tolist()
        reached += int((forward.labels[-1] < np.iinfo(np.int32).max).sum())
    return reached


def test_the_kernel_equals_its_oracle_on_the_caltrain_overlay(caltrain: Router) -> None:
    overlay = _apply(caltrain, "caltrain", _caltrain_edited(cancel="126", skip=("310", 8)), now_s=1699405534)
    tt = overlay.timetable
    rng = np.random.default_rng(5)
    served = np.unique(np.asarray(tt.pattern_stops))
    assert _kernel_equals_oracle(overlay.raptor, dt.date(2023, 11, 7), rng.choice(served, 8), 15 * 3600, rng) > 50


# -- Herrenberg S1: updates made with the bindings ---------------------------------------------


def _s1_departure(router: Router, trip_id: str, stop: str) -> int:
    """The timetable departure of an S1 trip at a stop, POSIX s on S1_DATE."""
    tt = router.network.timetable
    (trip,) = _runs(tt, f"{S1}:{trip_id}")
    stops, _, dep, _ = _stop_times(tt, trip)
    (i,) = np.flatnonzero(np.asarray(tt.stop_id)[stops] == stop)
    return service_origin_epoch(S1_DATE, "Europe/Berlin") + int(dep[i])


def test_a_six_minute_delay_moves_the_departure_downstream_and_a_late_rider_catches_the_train(s1: Router) -> None:
    scheduled = _s1_departure(s1, S1_TRIP, EHNINGEN)
    assert dt.datetime.fromtimestamp(scheduled, BERLIN).time() == dt.time(7, 55)
    overlay = _apply(s1, S1, _delayed(S1_TRIP, 360, _epoch(S1_DATE, 7, 40)))
    live = s1.with_realtime(overlay)
    early = dt.datetime.fromtimestamp(scheduled - 300, BERLIN)
    (leg,) = _plan(live, EHNINGEN, BOEBLINGEN, early)[0]
    assert leg.trip == f"{S1}:{S1_TRIP}" and leg.realtime and leg.delay_s == 360
    assert int(leg.departure.timestamp()) == scheduled + 360
    assert int(leg.scheduled_departure.timestamp()) == scheduled
    assert leg.arrival - leg.scheduled_arrival == dt.timedelta(minutes=6)
    # Three minutes after the timetable's departure: only the delay lets the rider catch this train.
    late = dt.datetime.fromtimestamp(scheduled + 180, BERLIN)
    (without,) = _plan(s1, EHNINGEN, BOEBLINGEN, late)[0]
    assert without.trip != f"{S1}:{S1_TRIP}" and without.departure > late
    (caught,) = _plan(live, EHNINGEN, BOEBLINGEN, late)[0]
    assert caught.trip == f"{S1}:{S1_TRIP}" and int(caught.departure.timestamp()) == scheduled + 360
    assert caught.arrival < without.arrival
    # The same train on the next day keeps its timetable.
    next_day = dt.datetime.fromtimestamp(scheduled + 86_400 + 180, BERLIN)
    assert all(
        not (leg.trip == f"{S1}:{S1_TRIP}" and leg.realtime)
        for legs in _plan(live, EHNINGEN, BOEBLINGEN, next_day)
        for leg in legs
    )


def test_arrive_by_and_range_plans_use_the_realtime_times(s1: Router) -> None:
    scheduled = _s1_departure(s1, S1_TRIP, EHNINGEN)
    live = s1.with_realtime(_apply(s1, S1, _delayed(S1_TRIP, 360, _epoch(S1_DATE, 7, 40))))
    request = PlanRequest(
        origin=Endpoint(stop=EHNINGEN),
        destination=Endpoint(stop=BOEBLINGEN),
        depart=dt.datetime.fromtimestamp(scheduled - 600, BERLIN),
        max_walk_m=0,
    )
    ranged = live.plan_range(request, 1200)
    trips = {(leg.trip, leg.realtime, int(leg.departure.timestamp())) for it in ranged.itineraries for leg in it.legs}
    assert (f"{S1}:{S1_TRIP}", True, scheduled + 360) in trips
    # Arriving by the delayed train's arrival: leaving as late as its delayed departure.
    (leg,) = _plan(live, EHNINGEN, BOEBLINGEN, dt.datetime.fromtimestamp(scheduled + 60, BERLIN))[0]
    arriving = live.plan_arriving_by(request, leg.arrival)
    assert arriving.itineraries and arriving.itineraries[0].departure == leg.departure
    assert arriving.itineraries[0].legs[0].realtime


def test_a_cancelled_trip_disappears_from_plans(s1: Router) -> None:
    scheduled = _s1_departure(s1, S1_TRIP, EHNINGEN)
    depart = dt.datetime.fromtimestamp(scheduled - 120, BERLIN)
    (leg,) = _plan(s1, EHNINGEN, BOEBLINGEN, depart)[0]
    assert leg.trip == f"{S1}:{S1_TRIP}"
    message = _message(_epoch(S1_DATE, 7, 30))
    _trip(message, S1_TRIP).trip.schedule_relationship = pb.TripDescriptor.CANCELED
    overlay = _apply(s1, S1, read_feed_message(message.SerializeToString(), "test"))
    assert overlay.feeds[0].cancelled_runs == 1 and overlay.timetable.n_trips == s1.network.timetable.n_trips
    legs = _plan(s1.with_realtime(overlay), EHNINGEN, BOEBLINGEN, depart)
    assert legs and all(leg.trip != f"{S1}:{S1_TRIP}" for it in legs for leg in it)
    assert legs[0][0].departure > leg.departure


def test_a_stale_feed_or_one_without_timestamp_is_ignored(s1: Router) -> None:
    stamp = _epoch(S1_DATE, 7, 40)
    message = _delayed(S1_TRIP, 360, stamp)
    stale = _apply(s1, S1, message, now_s=stamp + MAX_AGE_S + 1)
    (report,) = stale.feeds
    assert not report.used and report.ignored is not None and "stale" in report.ignored
    assert stale.timetable is s1.network.timetable and stale.raptor is s1.raptor and stale.expires_s is None
    depart = dt.datetime.fromtimestamp(_s1_departure(s1, S1_TRIP, EHNINGEN) - 120, BERLIN)
    assert _plan(s1.with_realtime(stale), EHNINGEN, BOEBLINGEN, depart) == _plan(s1, EHNINGEN, BOEBLINGEN, depart)
    fresh = _apply(s1, S1, message, now_s=stamp + MAX_AGE_S)
    assert fresh.feeds[0].used and fresh.expires_s == stamp + MAX_AGE_S
    undated = msgspec.structs.replace(message, timestamp=None)
    (report,) = s1.realtime_index.get().apply({S1: undated}, now_s=stamp, max_age_s=MAX_AGE_S).feeds
    assert not report.used and report.ignored == "the message has no header timestamp"


def test_unknown_trips_stops_feeds_and_days_are_counted_not_fatal(s1: Router) -> None:
    message = _message(_epoch(S1_DATE, 7, 40))
    _trip(message, "no-such-trip").stop_time_update.add(stop_sequence=1).arrival.delay = 60
    update = _trip(message, S1_TRIP)
    update.stop_time_update.add(stop_id="de:nowhere").arrival.delay = 60
    update.stop_time_update.add(stop_sequence=99).arrival.delay = 60
    update.stop_time_update.add(stop_sequence=4).arrival.delay = 120
    _trip(message, S1_TRIP, dt.date(2020, 10, 10)).stop_time_update.add(
        stop_sequence=1
    ).arrival.delay = 60  # a Saturday
    _trip(message, S1_TRIP, dt.date(2031, 1, 1)).stop_time_update.add(stop_sequence=1).arrival.delay = 60
    added = _trip(message, "extra")
    added.trip.schedule_relationship = pb.TripDescriptor.ADDED
    decoded = read_feed_message(message.SerializeToString(), "test")
    overlay = s1.realtime_index.get().apply(
        {S1: decoded, "elsewhere": decoded}, now_s=_epoch(S1_DATE, 7, 41), max_age_s=MAX_AGE_S
    )
    report, other = overlay.feeds
    assert (report.unknown_trips, report.unknown_stops, report.not_running, report.unsupported) == (1, 2, 2, 1)
    assert report.realtime_runs == 1 and report.trip_updates == 5
    assert not other.used and other.ignored == "the network has no GTFS feed 'elsewhere'"
    (run,) = [t for t in _runs(overlay.timetable, f"{S1}:{S1_TRIP}") if overlay.is_realtime(t)]
    (trip,) = _runs(s1.network.timetable, f"{S1}:{S1_TRIP}")
    _, arr, dep, _ = _stop_times(overlay.timetable, run)
    _, sched_arr, sched_dep, _ = _stop_times(s1.network.timetable, trip)
    assert (arr - sched_arr).tolist() == [0, 0, 0] + [120] * (len(arr) - 3)
    assert (dep - sched_dep).tolist() == [0, 0, 0] + [120] * (len(arr) - 3)


def _s1_run(router: Router, message: pb.FeedMessage, trip_id: str = S1_TRIP) -> tuple[np.ndarray, np.ndarray]:
    """Arrival and departure delays along the run a made message gives trip_id, against the timetable."""
    overlay = _apply(router, S1, read_feed_message(message.SerializeToString(), "test"))
    (run,) = [t for t in _runs(overlay.timetable, f"{S1}:{trip_id}") if overlay.is_realtime(t)]
    (trip,) = _runs(router.network.timetable, f"{S1}:{trip_id}")
    _, arr, dep, _ = _stop_times(overlay.timetable, run)
    _, sched_arr, sched_dep, _ = _stop_times(router.network.timetable, trip)
    return arr - sched_arr, dep - sched_dep


def test_delays_propagate_until_the_next_update_times_win_and_no_departure_precedes_its_arrival(s1: Router) -> None:
    trip_id = "1.T0.10-1-j20-1.3.H"  # Kirchheim 14:53 -> Herrenberg 15:59; dwell 1 min at stop 10 (15:15-15:16)
    message = _message(_epoch(S1_DATE, 14, 50))
    update = _trip(message, trip_id)
    update.stop_time_update.add(stop_sequence=3).arrival.delay = 120
    at_ten = update.stop_time_update.add(stop_sequence=10)
    at_ten.arrival.delay = 300
    at_ten.departure.delay = 0  # would leave before it arrives: it leaves when it arrives
    timed = update.stop_time_update.add(stop_sequence=15)
    timed.arrival.delay = 999  # the absolute time wins
    timed.arrival.time = _epoch(S1_DATE, 15, 32)  # 15:30 in the timetable
    update.stop_time_update.add(stop_sequence=20).schedule_relationship = pb.TripUpdate.StopTimeUpdate.NO_DATA
    arr, dep = _s1_run(s1, message, trip_id)
    assert arr.tolist()[:9] == [0, 0, 120, 120, 120, 120, 120, 120, 120]
    assert (arr[9], dep[9]) == (300, 240)  # 15:20 in, 15:20 out
    assert arr[10:14].tolist() == dep[10:14].tolist() == [240] * 4
    assert (arr[14], dep[14]) == (120, 120)
    assert arr[15:19].tolist() == dep[15:19].tolist() == [120] * 4
    assert arr[19:].tolist() == dep[19:].tolist() == [0] * (len(arr) - 19)


def test_a_skipped_stop_passes_the_delay_on_and_cannot_be_boarded_or_left(s1: Router) -> None:
    message = _message(_epoch(S1_DATE, 7, 40))
    update = _trip(message, S1_TRIP)
    update.stop_time_update.add(stop_sequence=1).departure.delay = 240
    update.stop_time_update.add(stop_sequence=4).schedule_relationship = pb.TripUpdate.StopTimeUpdate.SKIPPED
    arr, dep = _s1_run(s1, message)
    assert arr[1:].tolist() == dep[1:].tolist() == [240] * (len(arr) - 1)
    live = s1.with_realtime(_apply(s1, S1, read_feed_message(message.SerializeToString(), "test")))
    scheduled = _s1_departure(s1, S1_TRIP, EHNINGEN)
    for origin, destination in ((EHNINGEN, BOEBLINGEN), (HERRENBERG_S1, EHNINGEN)):
        for legs in _plan(live, origin, destination, dt.datetime.fromtimestamp(scheduled - 900, BERLIN)):
            assert all(leg.trip != f"{S1}:{S1_TRIP}" for leg in legs)


def test_without_start_date_the_update_is_for_the_run_under_way_at_the_message_time(s1: Router) -> None:
    scheduled = _s1_departure(s1, S1_TRIP, EHNINGEN)
    for stamp, date in ((_epoch(S1_DATE, 7, 40), S1_DATE), (_epoch(S1_DATE, 23, 50), S1_DATE + dt.timedelta(1))):
        overlay = _apply(s1, S1, _delayed(S1_TRIP, 360, stamp, start_date=None))
        (run,) = [t for t in _runs(overlay.timetable, f"{S1}:{S1_TRIP}") if overlay.is_realtime(t)]
        assert overlay.raptor.service_days(date).trip_active[1, run]
        assert not overlay.raptor.service_days(date - dt.timedelta(1)).trip_active[1, run]
    live = s1.with_realtime(_apply(s1, S1, _delayed(S1_TRIP, 360, _epoch(S1_DATE, 7, 40), start_date=None)))
    (leg,) = _plan(live, EHNINGEN, BOEBLINGEN, dt.datetime.fromtimestamp(scheduled + 60, BERLIN))[0]
    assert leg.realtime and int(leg.departure.timestamp()) == scheduled + 360


def test_an_overtaking_run_keeps_the_search_exact(s1: Router) -> None:
    # The 07:46 from Herrenberg is held 40 minutes after Ehningen: the next train of its pattern, half an
    # hour behind and a minute late, overtakes it. One pattern holding both would break the kernel's
    # bisection over departures; the overlay gives each a pattern of its own.
    later = "69.T0.10-1-j20-1.21.R"
    message = _message(_epoch(S1_DATE, 7, 40))
    _trip(message, S1_TRIP).stop_time_update.add(stop_sequence=5).arrival.delay = 2400
    _trip(message, later).stop_time_update.add(stop_sequence=1).departure.delay = 60
    overlay = _apply(s1, S1, read_feed_message(message.SerializeToString(), "test"))
    _assert_fifo(overlay.timetable)
    assert overlay.timetable.n_patterns == s1.network.timetable.n_patterns + 2
    held, overtaking = _s1_departure(s1, S1_TRIP, HULB) + 2400, _s1_departure(s1, later, HULB) + 60
    assert overtaking < held and _s1_departure(s1, S1_TRIP, HERRENBERG_S1) < _s1_departure(s1, later, HERRENBERG_S1)
    live = s1.with_realtime(overlay)
    (leg,) = _plan(live, HULB, VAIHINGEN, dt.datetime.fromtimestamp(overtaking - 480, BERLIN))[0]
    assert leg.trip == f"{S1}:{later}" and int(leg.departure.timestamp()) == overtaking and leg.delay_s == 60
    (leg,) = _plan(live, HULB, VAIHINGEN, dt.datetime.fromtimestamp(overtaking + 60, BERLIN))[0]
    assert leg.trip == f"{S1}:{S1_TRIP}" and int(leg.departure.timestamp()) == held and leg.delay_s == 2400
    rng = np.random.default_rng(9)
    served = np.unique(np.asarray(overlay.timetable.pattern_stops))
    assert _kernel_equals_oracle(overlay.raptor, S1_DATE, rng.choice(served, 6), 7 * 3600, rng) > 50


def test_a_router_with_realtime_is_a_twin_and_the_swap_is_one_reference(s1: Router, caltrain: Router) -> None:
    overlay = _apply(s1, S1, _delayed(S1_TRIP, 360, _epoch(S1_DATE, 7, 40)))
    live = s1.with_realtime(overlay)
    assert live is not s1 and live.realtime is overlay and s1.realtime is None
    assert live.with_realtime(None).raptor is s1.raptor and live.walking is s1.walking
    with pytest.raises(ValueError, match="another network"):
        caltrain.with_realtime(overlay)
    # Threads planning while another swaps the router they read: every answer is wholly one or the other.
    scheduled = _s1_departure(s1, S1_TRIP, EHNINGEN)
    depart = dt.datetime.fromtimestamp(scheduled - 300, BERLIN)
    expected = {router.realtime is not None: _plan(router, EHNINGEN, BOEBLINGEN, depart) for router in (s1, live)}
    current = [s1]

    def plan_many(k: int) -> list[tuple[bool, list[list[Leg]]]]:
        out = []
        for j in range(20):
            if k == 0:
                current[0] = live if j % 2 else s1
            router = current[0]
            out.append((router.realtime is not None, _plan(router, EHNINGEN, BOEBLINGEN, depart)))
        return out

    with ThreadPoolExecutor(6) as pool:
        answers = [a for batch in pool.map(plan_many, range(6)) for a in batch]
    assert {flag for flag, _ in answers} == {False, True}
    assert all(legs == expected[flag] for flag, legs in answers)
