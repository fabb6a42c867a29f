"""GTFS-Realtime messages of real producers decode to what the reference bindings read from them; what is not
GTFS-Realtime is refused with the source named."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest
from google.transit import gtfs_realtime_pb2 as pb

from feeds.gtfs_rt import (
    FeedMessage,
    RealtimeFeedError,
    read_feed_message,
    read_feed_message_file,
    with_header_timestamp,
)
from tests.conftest import shared


def _bindings(path: Path) -> pb.FeedMessage:
    message = pb.FeedMessage()
    message.ParseFromString(path.read_bytes())
    return message


def _date(text: str) -> dt.date | None:
    return dt.datetime.strptime(text, "%Y%m%d").date() if text else None


def test_caltrain_trip_updates_are_read_as_the_bindings_read_them() -> None:
    path = shared("rt", "caltrain-trip-updates.pb")
    ours, theirs = read_feed_message_file(path), _bindings(path)
    assert ours.source == str(path)
    assert ours.timestamp == theirs.header.timestamp == 1699405534
    assert ours.gtfs_realtime_version == theirs.header.gtfs_realtime_version
    assert ours.incrementality == "FULL_DATASET"
    assert ours.vehicle_positions == [] and ours.alerts == 0
    entities = [e for e in theirs.entity if e.HasField("trip_update")]
    assert len(ours.trip_updates) == len(entities) == 19
    stop_updates = 0
    for update, entity in zip(ours.trip_updates, entities, strict=True):
        trip = entity.trip_update.trip
        assert update.entity_id == entity.id
        assert update.trip_id == trip.trip_id
        assert update.route_id == trip.route_id
        assert update.direction_id == trip.direction_id
        assert update.start_date == _date(trip.start_date) == dt.date(2023, 11, 7)
        assert update.start_time == trip.start_time
        assert update.schedule_relationship == pb.TripDescriptor.ScheduleRelationship.Name(trip.schedule_relationship)
        assert update.vehicle_id == entity.trip_update.vehicle.id
        assert update.timestamp == entity.trip_update.timestamp
        assert len(update.stop_time_updates) == len(entity.trip_update.stop_time_update)
        for mine, raw in zip(update.stop_time_updates, entity.trip_update.stop_time_update, strict=True):
            stop_updates += 1
            assert mine.stop_sequence == raw.stop_sequence
            assert mine.stop_id == raw.stop_id
            assert mine.schedule_relationship == pb.TripUpdate.StopTimeUpdate.ScheduleRelationship.Name(
                raw.schedule_relationship
            )
            for event, raw_event, present in (
                (mine.arrival, raw.arrival, raw.HasField("arrival")),
                (mine.departure, raw.departure, raw.HasField("departure")),
            ):
                if not present:
                    assert event is None
                    continue
                assert event is not None
                assert event.time == (raw_event.time if raw_event.HasField("time") else None)
                assert event.delay == (raw_event.delay if raw_event.HasField("delay") else None)
    assert stop_updates > 150


@pytest.mark.parametrize("name", ["caltrain-vehicle-positions.pb", "king-county-metro-vp-2.pb"])
def test_vehicle_positions_are_read_as_the_bindings_read_them(name: str) -> None:
    path = shared("rt", name)
    ours, theirs = read_feed_message_file(path), _bindings(path)
    assert ours.timestamp == theirs.header.timestamp
    assert ours.trip_updates == []
    entities = [e for e in theirs.entity if e.HasField("vehicle")]
    assert len(ours.vehicle_positions) == len(entities) > 10
    with_stop = 0
    for vehicle, entity in zip(ours.vehicle_positions, entities, strict=True):
        raw = entity.vehicle
        assert vehicle.entity_id == entity.id
        assert vehicle.vehicle_id == raw.vehicle.id
        assert vehicle.label == (raw.vehicle.label or None)
        assert vehicle.trip_id == (raw.trip.trip_id or None)
        assert vehicle.route_id == (raw.trip.route_id or None)
        assert vehicle.start_date == _date(raw.trip.start_date)
        assert vehicle.lat == raw.position.latitude and vehicle.lon == raw.position.longitude
        assert vehicle.bearing == (raw.position.bearing if raw.position.HasField("bearing") else None)
        assert vehicle.speed_mps == (raw.position.speed if raw.position.HasField("speed") else None)
        assert vehicle.timestamp == raw.timestamp
        assert vehicle.stop_id == (raw.stop_id or None)
        assert vehicle.current_stop_sequence == (
            raw.current_stop_sequence if raw.HasField("current_stop_sequence") else None
        )
        with_stop += vehicle.stop_id is not None
    if name.startswith("king-county"):
        assert ours.timestamp == 1630598910 and with_stop > 100
        # One bus reports no fix as (0, 0), as real feeds do; the others are around Seattle.
        fixed = [v for v in ours.vehicle_positions if (v.lat, v.lon) != (0.0, 0.0)]
        assert len(fixed) == len(ours.vehicle_positions) - 1
        assert all(47 < (v.lat or 0) < 48.5 and -123 < (v.lon or 0) < -121 for v in fixed)


def _garbage() -> list[tuple[str, bytes]]:
    rng = random.Random(7)
    lonely_trip_update = pb.TripUpdate(trip=pb.TripDescriptor(trip_id="124")).SerializeToString()
    return [
        ("empty", b""),
        ("random", bytes(rng.randrange(256) for _ in range(4096))),
        ("html", b"<!doctype html><html><body>502 Bad Gateway</body></html>"),
        ("json", b'{"header": {"gtfs_realtime_version": "2.0"}}'),
        ("a GTFS zip", shared("rt", "caltrain.gtfs.zip").read_bytes()),
        ("a TripUpdate alone", lonely_trip_update),
        ("a cut message", shared("rt", "caltrain-trip-updates.pb").read_bytes()[:1000]),
    ]


@pytest.mark.parametrize(("what", "data"), _garbage(), ids=[w for w, _ in _garbage()])
def test_what_is_not_gtfs_realtime_is_refused_naming_the_source(what: str, data: bytes) -> None:
    with pytest.raises(RealtimeFeedError, match=r"^https://example\.org/tu\.pb: .*(FeedMessage|GTFS-Realtime)"):
        read_feed_message(data, "https://example.org/tu.pb")


def test_a_missing_file_is_a_feed_error(tmp_path: Path) -> None:
    with pytest.raises(RealtimeFeedError, match=r"nothing\.pb: cannot be read"):
        read_feed_message_file(tmp_path / "nothing.pb")


def _message(**header: object) -> pb.FeedMessage:
    message = pb.FeedMessage()
    message.header.gtfs_realtime_version = "2.0"
    for key, value in header.items():
        setattr(message.header, key, value)
    return message


def test_cancellations_skipped_stops_delays_and_the_header_are_read() -> None:
    message = _message(timestamp=1_600_000_000, incrementality=pb.FeedHeader.DIFFERENTIAL)
    entity = message.entity.add(id="a")
    entity.trip_update.trip.trip_id = "t1"
    entity.trip_update.trip.schedule_relationship = pb.TripDescriptor.CANCELED
    entity = message.entity.add(id="b")
    update = entity.trip_update
    update.trip.trip_id = "t2"
    update.delay = 90
    skipped = update.stop_time_update.add(stop_sequence=3)
    skipped.schedule_relationship = pb.TripUpdate.StopTimeUpdate.SKIPPED
    late = update.stop_time_update.add(stop_id="s4")
    late.arrival.delay = 360
    late.arrival.uncertainty = 60
    late.departure.time = 1_600_000_500
    gone = message.entity.add(id="c", is_deleted=True)
    gone.trip_update.trip.trip_id = "t3"
    message.entity.add(id="d").alert.header_text.translation.add(text="Bauarbeiten")
    got: FeedMessage = read_feed_message(message.SerializeToString(), "made")
    assert (got.timestamp, got.incrementality, got.alerts) == (1_600_000_000, "DIFFERENTIAL", 1)
    assert [(u.entity_id, u.trip_id, u.schedule_relationship, u.start_date) for u in got.trip_updates] == [
        ("a", "t1", "CANCELED", None),
        ("b", "t2", "SCHEDULED", None),
    ]
    second = got.trip_updates[1]
    assert second.delay == 90
    first, then = second.stop_time_updates
    assert (first.stop_sequence, first.stop_id, first.schedule_relationship) == (3, None, "SKIPPED")
    assert first.arrival is None and first.departure is None
    assert (then.stop_sequence, then.stop_id) == (None, "s4")
    assert then.arrival is not None and (then.arrival.delay, then.arrival.time) == (360, None)
    assert then.departure is not None and (then.departure.delay, then.departure.time) == (None, 1_600_000_500)


def test_a_message_without_header_timestamp_has_none_and_a_bad_start_date_is_named() -> None:
    message = _message()
    assert read_feed_message(message.SerializeToString(), "made").timestamp is None
    entity = message.entity.add(id="x7")
    entity.trip_update.trip.trip_id = "t1"
    entity.trip_update.trip.start_date = "2023-11-07"
    with pytest.raises(RealtimeFeedError, match=r"made: entity 'x7': start_date '2023-11-07' is not YYYYMMDD"):
        read_feed_message(message.SerializeToString(), "made")


def test_a_recording_restamped_keeps_everything_but_its_header_timestamp() -> None:
    data = shared("rt", "caltrain-trip-updates.pb").read_bytes()
    restamped = with_header_timestamp(data, 1_800_000_000, "recording")
    theirs, again = pb.FeedMessage(), pb.FeedMessage()
    theirs.ParseFromString(data)
    again.ParseFromString(restamped)
    assert again.header.timestamp == 1_800_000_000
    again.header.timestamp = theirs.header.timestamp
    assert again == theirs
    assert read_feed_message(restamped, "recording").trip_updates == read_feed_message(data, "file").trip_updates
    with pytest.raises(RealtimeFeedError, match=r"^recording: not a GTFS-Realtime FeedMessage"):
        with_header_timestamp(b"<html/>", 1, "recording")
