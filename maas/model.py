"""The service's domain types: what repositories return and controllers send."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal, get_args

import msgspec

from feeds.model import ValidationReport
from routing.dispatch.model import RideStatus

# The database's CHECK constraints list the same values (migrations 0001, 0002).
Role = Literal["rider", "driver", "operator", "agency", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
BookingStatus = RideStatus  # a booking's status is its ride's, as the dispatcher knows it
FeedStatus = Literal["uploaded", "rejected", "publishing", "published", "failed", "retired"]
NetworkStatus = Literal["building", "built", "failed", "pruned"]
RealtimeKind = Literal["trip_updates", "vehicle_positions"]  # what a stored GTFS-Realtime message is kept as (0018)
REALTIME_KINDS: tuple[RealtimeKind, ...] = get_args(RealtimeKind)


class User(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    name: str
    role: Role
    phone: str | None = None
    agency: str | None = None


class VehicleRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    name: str
    seats: int
    wheelchair_places: int
    depot_lat: float
    depot_lon: float
    active: bool = True


class ShiftRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    vehicle_id: uuid.UUID
    driver_id: uuid.UUID | None
    starts_at: dt.datetime
    ends_at: dt.datetime
    signed_in_at: dt.datetime | None = None


class BookingRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    rider_id: uuid.UUID | None
    caller_name: str | None
    caller_phone: str | None
    created_by: uuid.UUID
    origin_lat: float
    origin_lon: float
    destination_lat: float
    destination_lon: float
    seated: int
    wheelchairs: int
    earliest_pickup: dt.datetime | None
    latest_arrival: dt.datetime | None
    status: BookingStatus
    vehicle_id: uuid.UUID | None
    shift_id: uuid.UUID | None
    pickup_earliest: dt.datetime
    pickup_latest: dt.datetime
    dropoff_latest: dt.datetime
    created_at: dt.datetime


class FeedVersion(msgspec.Struct, frozen=True, kw_only=True):
    """One uploaded GTFS zip of an agency's feed and its validation report."""

    id: uuid.UUID
    agency: str
    feed_id: str
    uploaded_by: uuid.UUID
    sha256: str
    size_bytes: int
    report: ValidationReport
    status: FeedStatus
    error: str | None
    created_at: dt.datetime
    published_at: dt.datetime | None


class NetworkFeed(msgspec.Struct, frozen=True, kw_only=True):
    """A feed inside a network: its id there and, when it was uploaded here, which version."""

    feed_id: str
    version_id: uuid.UUID | None = None
    agency: str | None = None


class NetworkVersion(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    directory: str
    status: NetworkStatus  # pruned: built, its directory since deleted
    feeds: list[NetworkFeed]
    osm: str | None
    error: str | None
    created_by: uuid.UUID | None
    build_seconds: float | None
    active: bool
    created_at: dt.datetime
    built_at: dt.datetime | None
    activated_at: dt.datetime | None
    pruned_at: dt.datetime | None


class StoredRealtime(msgspec.Struct, frozen=True, kw_only=True):
    """The latest GTFS-Realtime message of one feed and kind, as stored."""

    feed_id: str
    kind: RealtimeKind
    version: int
    body: bytes
    header_timestamp: dt.datetime | None
    entities: int
    source: str  # the URL polled, or "POST"
    received_by: uuid.UUID | None
    received_at: dt.datetime
