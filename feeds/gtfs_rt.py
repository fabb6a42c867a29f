"""GTFS-Realtime: one FeedMessage (protobuf bytes) decoded into Structs, trip updates and vehicle positions.

What the router and a map need is kept: a trip update's trip, its service day and start time, whether it
runs or is cancelled, and per stop the predicted arrival and departure (a delay, a POSIX time or both)
and whether the stop is skipped; a vehicle's position, trip and stop. Uncertainties, occupancy and the
texts of alerts are left out (alerts are counted). Ids are the feed's own, not namespaced: whoever knows
the GTFS feed the message belongs to puts `<feed_id>:` in front.

Bytes that are not a FeedMessage, or a message without the GTFS-RT header, raise RealtimeFeedError
naming the source: a wrong URL (an HTML error page, a JSON API) is a clear error, not an empty feed.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Literal

import msgspec
from google.protobuf.message import DecodeError
from google.transit import gtfs_realtime_pb2 as pb

from feeds.model import FeedError

TripRelationship = Literal[
    "SCHEDULED", "ADDED", "UNSCHEDULED", "CANCELED", "REPLACEMENT", "DUPLICATED", "DELETED", "NEW"
]
StopRelationship = Literal["SCHEDULED", "SKIPPED", "NO_DATA", "UNSCHEDULED"]
VehicleStopStatus = Literal["INCOMING_AT", "STOPPED_AT", "IN_TRANSIT_TO"]
Incrementality = Literal["FULL_DATASET", "DIFFERENTIAL"]

_TRIP_RELATIONSHIPS: dict[int, TripRelationship] = {
    pb.TripDescriptor.SCHEDULED: "SCHEDULED",
    pb.TripDescriptor.ADDED: "ADDED",
    pb.TripDescriptor.UNSCHEDULED: "UNSCHEDULED",
    pb.TripDescriptor.CANCELED: "CANCELED",
    pb.TripDescriptor.REPLACEMENT: "REPLACEMENT",
    pb.TripDescriptor.DUPLICATED: "DUPLICATED",
    pb.TripDescriptor.DELETED: "DELETED",
    pb.TripDescriptor.NEW: "NEW",
}
_STOP_RELATIONSHIPS: dict[int, StopRelationship] = {
    pb.TripUpdate.StopTimeUpdate.SCHEDULED: "SCHEDULED",
    pb.TripUpdate.StopTimeUpdate.SKIPPED: "SKIPPED",
    pb.TripUpdate.StopTimeUpdate.NO_DATA: "NO_DATA",
    pb.TripUpdate.StopTimeUpdate.UNSCHEDULED: "UNSCHEDULED",
}
_STOP_STATUSES: dict[int, VehicleStopStatus] = {
    pb.VehiclePosition.INCOMING_AT: "INCOMING_AT",
    pb.VehiclePosition.STOPPED_AT: "STOPPED_AT",
    pb.VehiclePosition.IN_TRANSIT_TO: "IN_TRANSIT_TO",
}
_VERSION = re.compile(r"^\d+\.\d+$")  # "1.0", "2.0"
_START_DATE = re.compile(r"^\d{8}$")


class RealtimeFeedError(FeedError):
    """Bytes that are not a usable GTFS-Realtime FeedMessage; the message names the source."""


class StopTimeEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A predicted arrival or departure: a delay against the timetable (s), an absolute time (POSIX s), or both."""

    delay: int | None = None
    time: int | None = None


class StopTimeUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """The prediction for one stop of a trip, which is named by its stop_sequence, its stop_id or both."""

    stop_sequence: int | None = None
    stop_id: str | None = None
    arrival: StopTimeEvent | None = None
    departure: StopTimeEvent | None = None
    schedule_relationship: StopRelationship = "SCHEDULED"


class TripUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """Predictions for one run of a trip: the trip's service day is `start_date` (None: the producer left it
    out, the day is the one running around the feed's time)."""

    entity_id: str
    trip_id: str | None = None
    route_id: str | None = None
    direction_id: int | None = None
    start_date: dt.date | None = None
    start_time: str | None = None  # HH:MM:SS, may pass 24:00:00 as in GTFS
    schedule_relationship: TripRelationship = "SCHEDULED"
    stop_time_updates: list[StopTimeUpdate] = msgspec.field(default_factory=list)
    vehicle_id: str | None = None
    timestamp: int | None = None  # POSIX s of the measurement the prediction rests on
    delay: int | None = None  # the trip's delay where no stop_time_update says otherwise


class VehiclePosition(msgspec.Struct, frozen=True, kw_only=True):
    """Where one vehicle is, on which trip, by its latest fix."""

    entity_id: str
    vehicle_id: str | None = None
    label: str | None = None
    trip_id: str | None = None
    route_id: str | None = None
    start_date: dt.date | None = None
    lat: float | None = None
    lon: float | None = None
    bearing: float | None = None  # degrees clockwise from true north
    speed_mps: float | None = None
    timestamp: int | None = None  # POSIX s of the fix
    stop_id: str | None = None
    current_stop_sequence: int | None = None
    current_status: VehicleStopStatus | None = None


class FeedMessage(msgspec.Struct, frozen=True, kw_only=True):
    """One GTFS-Realtime message: its header and the trip updates and vehicle positions it carries."""

    source: str
    gtfs_realtime_version: str
    incrementality: Incrementality
    timestamp: int | None  # POSIX s when the producer made the message
    trip_updates: list[TripUpdate]
    vehicle_positions: list[VehiclePosition]
    alerts: int  # how many alerts it carries (not read further)


def _parse(data: bytes, source: str) -> pb.FeedMessage:
    if not data:
        raise RealtimeFeedError(f"{source}: empty, not a GTFS-Realtime FeedMessage")
    message = pb.FeedMessage()
    try:
        message.ParseFromString(data)
    except (DecodeError, RuntimeWarning, ValueError) as exc:
        raise RealtimeFeedError(
            f"{source}: not a GTFS-Realtime FeedMessage (protobuf bytes, {len(data)} read): {exc}"
        ) from exc
    version = message.header.gtfs_realtime_version
    if not _VERSION.match(version):
        raise RealtimeFeedError(f"{source}: no GTFS-Realtime header (gtfs_realtime_version is {version!r})")
    return message


def read_feed_message(data: bytes, source: str) -> FeedMessage:
    """The FeedMessage in `data`; RealtimeFeedError naming `source` when the bytes are not GTFS-Realtime."""
    message = _parse(data, source)
    header = message.header
    version = header.gtfs_realtime_version
    trip_updates, vehicles, alerts = [], [], 0
    for entity in message.entity:
        if entity.is_deleted:
            continue
        if entity.HasField("trip_update"):
            trip_updates.append(_trip_update(entity.id, entity.trip_update, source))
        if entity.HasField("vehicle"):
            vehicles.append(_vehicle(entity.id, entity.vehicle, source))
        if entity.HasField("alert"):
            alerts += 1
    return FeedMessage(
        source=source,
        gtfs_realtime_version=version,
        incrementality="DIFFERENTIAL" if header.incrementality == pb.FeedHeader.DIFFERENTIAL else "FULL_DATASET",
        timestamp=header.timestamp if header.HasField("timestamp") else None,
        trip_updates=trip_updates,
        vehicle_positions=vehicles,
        alerts=alerts,
    )


def with_header_timestamp(data: bytes, timestamp: int, source: str) -> bytes:
    """The message in `data` with its header timestamp set to `timestamp`, all else as it was: a recording
    replayed as if it had just been made."""
    message = _parse(data, source)
    message.header.timestamp = timestamp
    return message.SerializeToString()


def read_feed_message_file(path: str | Path) -> FeedMessage:
    """The FeedMessage of a file (a `.pb` as a producer serves it)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RealtimeFeedError(f"{path}: cannot be read: {exc.strerror}") from exc
    return read_feed_message(data, str(path))


def _start_date(text: str, source: str, entity_id: str) -> dt.date | None:
    if not text:
        return None
    try:
        if not _START_DATE.match(text):
            raise ValueError(text)
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise RealtimeFeedError(f"{source}: entity {entity_id!r}: start_date {text!r} is not YYYYMMDD") from None


def _event(message: pb.TripUpdate.StopTimeEvent) -> StopTimeEvent:
    return StopTimeEvent(
        delay=message.delay if message.HasField("delay") else None,
        time=message.time if message.HasField("time") else None,
    )


def _trip_update(entity_id: str, message: pb.TripUpdate, source: str) -> TripUpdate:
    trip = message.trip
    return TripUpdate(
        entity_id=entity_id,
        trip_id=trip.trip_id or None,
        route_id=trip.route_id or None,
        direction_id=trip.direction_id if trip.HasField("direction_id") else None,
        start_date=_start_date(trip.start_date, source, entity_id),
        start_time=trip.start_time or None,
        schedule_relationship=_TRIP_RELATIONSHIPS.get(trip.schedule_relationship, "SCHEDULED"),
        stop_time_updates=[
            StopTimeUpdate(
                stop_sequence=u.stop_sequence if u.HasField("stop_sequence") else None,
                stop_id=u.stop_id or None,
                arrival=_event(u.arrival) if u.HasField("arrival") else None,
                departure=_event(u.departure) if u.HasField("departure") else None,
                schedule_relationship=_STOP_RELATIONSHIPS.get(u.schedule_relationship, "SCHEDULED"),
            )
            for u in message.stop_time_update
        ],
        vehicle_id=message.vehicle.id or None,
        timestamp=message.timestamp if message.HasField("timestamp") else None,
        delay=message.delay if message.HasField("delay") else None,
    )


def _vehicle(entity_id: str, message: pb.VehiclePosition, source: str) -> VehiclePosition:
    position = message.position if message.HasField("position") else None
    return VehiclePosition(
        entity_id=entity_id,
        vehicle_id=message.vehicle.id or None,
        label=message.vehicle.label or None,
        trip_id=message.trip.trip_id or None,
        route_id=message.trip.route_id or None,
        start_date=_start_date(message.trip.start_date, source, entity_id),
        lat=position.latitude if position is not None else None,
        lon=position.longitude if position is not None else None,
        bearing=position.bearing if position is not None and position.HasField("bearing") else None,
        speed_mps=position.speed if position is not None and position.HasField("speed") else None,
        timestamp=message.timestamp if message.HasField("timestamp") else None,
        stop_id=message.stop_id or None,
        current_stop_sequence=message.current_stop_sequence if message.HasField("current_stop_sequence") else None,
        current_status=_STOP_STATUSES.get(message.current_status) if message.HasField("current_status") else None,
    )
