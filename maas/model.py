"""The service's domain types: what repositories return and controllers send."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal, get_args

import msgspec

from feeds.model import ValidationReport
from routing.dispatch.model import RIDER_FIRST, RideStatus

# The database's CHECK constraints list the same values (migrations 0001, 0002).
Role = Literal["rider", "driver", "operator", "agency", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
BookingStatus = RideStatus  # a booking's status is its ride's, as the dispatcher knows it
FeedStatus = Literal["uploaded", "rejected", "publishing", "published", "failed", "retired"]
NetworkStatus = Literal["building", "built", "failed", "pruned"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = get_args(Weekday)
StopPolicy = Literal["door_to_door", "virtual_stops"]
# Migration 0019 lists the same values.
JourneyStatus = Literal["confirmed", "at_risk", "cancelled", "completed"]
# Migration 0020 lists the same values.
ConnectionState = Literal["scheduled", "on_time", "late", "waiting", "missed", "cancelled"]
RealtimeKind = Literal["trip_updates", "vehicle_positions"]  # what a stored GTFS-Realtime message is kept as (0018)
REALTIME_KINDS: tuple[RealtimeKind, ...] = get_args(RealtimeKind)


class User(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    name: str
    role: Role
    phone: str | None = None
    agency: str | None = None


# Migration 0026 lists the same values: who issued a session, and why one ended early.
Issuer = Literal["sign_in", "admin", "cli", "demo"]
RevokeReason = Literal["logout", "revoked", "role_changed", "password_set"]


class Session(msgspec.Struct, frozen=True, kw_only=True):
    """What one bearer token stands for: its user, the role it was issued for, until when."""

    id: uuid.UUID  # the token's jti
    user_id: uuid.UUID
    role: Role
    issued_at: dt.datetime
    expires_at: dt.datetime
    issued_by: Issuer
    issuer_id: uuid.UUID | None = None
    revoked_at: dt.datetime | None = None
    revoked_reason: RevokeReason | None = None


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
    driver_id: uuid.UUID | None  # the driver it is assigned to; None: any driver may take it
    starts_at: dt.datetime
    ends_at: dt.datetime
    signed_in_at: dt.datetime | None = None
    signed_in_by: uuid.UUID | None = None  # the driver signed in to it now


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
    offer_id: uuid.UUID | None = None  # the quote's offer it was booked from, if one was chosen
    request_hash: str | None = None  # of the request as sent, to tell a retry from a reused Idempotency-Key


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


class ServiceHours(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """When rides run on some weekdays, in the network's local time, from `start` to `end` (an end
    before the start runs past midnight; an end equal to the start: the whole day, the default)."""

    days: list[Weekday] = msgspec.field(default_factory=lambda: list(WEEKDAYS))
    start: dt.time = dt.time(0, 0)
    end: dt.time = dt.time(0, 0)


class Objective(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How the dispatcher weighs a new ride's insertion: seconds of added vehicle driving against the new
    rider's seconds of waiting past the asked time (or arriving before it, for arrive-by) and seconds
    on board. The defaults make a 10-minute wait cost as much as half an hour of extra driving, so a
    rider is not kept waiting while an idle bus could come."""

    vehicle: float = RIDER_FIRST.drive
    wait: float = RIDER_FIRST.wait
    ride: float = RIDER_FIRST.ride


class Retention(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How long personal data is kept: the retention job (maas/retention.py) applies it every `every_s`."""

    positions_days: int = 30  # vehicles' GPS fixes kept this long, then only hourly aggregates per vehicle
    personal_days: int = (
        90  # riders' and phone callers' names and numbers pseudonymised this long after their last ride
    )
    every_s: int = 3600  # the job runs this often (in one process of the database); 0 never


class ServiceRules(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The rules of the on-demand service, one version of its definition: the planner, quotes,
    bookings and journeys all follow them (DESIGN.md: service rules are data, never constants)."""

    hours: list[ServiceHours] = msgspec.field(default_factory=lambda: [ServiceHours()])
    min_notice_s: int = 0  # a ride is booked at least this long before its pickup
    max_days_ahead: int = 14  # and at most this many days ahead
    max_passengers: int = 8  # riders of one booking (seated and wheelchair users together)
    ride_factor: float = 1.5  # maximum ride time = ride_factor x direct drive time + ride_slack_s
    ride_slack_s: int = 600
    pickup_window_s: int = 600  # the promised pickup window's width
    boarding_s: int = 60  # service time at a pickup or drop-off
    change_s: int = 180  # between the on-demand bus and a train or bus at a station
    max_train_wait_s: int = 600  # how long a last-mile bus may wait for a late train
    min_ride_m: float = 500.0  # a ride shorter than this (straight line) is walked, not offered
    offer_ttl_s: int = 600  # how long a planned itinerary's offers can be booked
    stops: StopPolicy = "door_to_door"  # or virtual_stops: rides start and end at the nearest stop
    virtual_stop_walk_m: float = 400.0  # how far a rider walks to a virtual stop at most
    no_show_wait_s: int = 300  # how long a driver waits at a pickup before reporting a no-show
    stop_radius_m: float = 300.0  # a stop event is accepted only this close to the vehicle's latest position
    early_pickup_s: int = 300  # how long before the promised pickup window opens a rider may board
    position_max_age_s: int = 120  # older GPS positions no longer move ETAs: they fall back to the plan
    delay_alert_s: int = 300  # an ETA this much later than promised is pushed to the riders and the operator
    reoptimize_every_s: int = 600  # the live plans are re-optimised this often (and after cancellations); 0 never
    reoptimize_time_limit_s: float = 5.0  # the search time of one re-optimisation
    objective: Objective = msgspec.field(default_factory=Objective)
    retention: Retention = msgspec.field(default_factory=Retention)
    drivers_see_phones: bool = False  # drivers see riders' and callers' names; their numbers only if this is set


class ServiceDefinition(msgspec.Struct, frozen=True, kw_only=True):
    """One version of the service definition: where (a GeoJSON (Multi)Polygon, longitude first) and by
    which rules the on-demand service runs."""

    version: int
    name: str
    geometry: dict[str, Any]
    rules: ServiceRules
    created_at: dt.datetime


class JourneyLegRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One leg of a booked journey; an on-demand leg holds its booking and the connection it protects."""

    journey_id: uuid.UUID
    leg: int
    mode: str
    booking_id: uuid.UUID | None
    connection_kind: str | None
    connection_stop: str | None
    connection_trip: str | None
    connection_at: dt.datetime | None
    change_s: int | None
    connection_expected_at: dt.datetime | None = None
    connection_state: ConnectionState = "scheduled"


class JourneyEvent(msgspec.Struct, frozen=True, kw_only=True):
    at: dt.datetime
    kind: str
    detail: str | None
    actor: uuid.UUID | None


class JourneyRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A booked journey: the itinerary as booked (JSON of routing.plan.Itinerary) and its status."""

    id: uuid.UUID
    rider_id: uuid.UUID | None  # None for a phone caller's journey, booked by an operator
    created_by: uuid.UUID
    itinerary_id: uuid.UUID
    status: JourneyStatus
    departure: dt.datetime
    arrival: dt.datetime
    itinerary: bytes
    created_at: dt.datetime
    caller_name: str | None = None  # a phone caller's journey: whom it is for
    caller_phone: str | None = None


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


ReoptimizationTrigger = Literal["schedule", "cancellation", "manual"]
# adopted: the plans changed; no_gain: the search saved too little; stale: the plans changed meanwhile;
# rejected: the result failed a check (a promise, a rider on board); idle: nothing to plan; failed: an error.
ReoptimizationOutcome = Literal["adopted", "no_gain", "stale", "rejected", "idle", "failed"]


class ReoptimizationRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One re-optimisation run of the live plans (migration 0021): driving seconds of the plans before
    and of the search's result, and whether it was adopted."""

    id: int
    started_at: dt.datetime
    finished_at: dt.datetime
    trigger: ReoptimizationTrigger
    outcome: ReoptimizationOutcome
    detail: str
    fleet_version: int
    adopted_version: int | None
    rides: int
    vehicles: int
    drive_before_s: float
    drive_after_s: float | None
    moved_rides: int
    search_s: float
    duration_s: float


# Migration 0030 lists the same values.
AlertKind = Literal["connection_missed", "train_cancelled", "delay", "no_show"]
ALERT_KINDS: tuple[AlertKind, ...] = get_args(AlertKind)
AlertSeverity = Literal["warning", "critical"]
AlertState = Literal["open", "acknowledged", "resolved", "all"]  # open: not resolved (acknowledged or not)


class AlertRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One condition the operators must see (migration 0030), with the status of its booking."""

    id: uuid.UUID
    kind: AlertKind
    severity: AlertSeverity
    condition: str
    booking_id: uuid.UUID | None
    journey_id: uuid.UUID | None
    vehicle_id: uuid.UUID | None
    shift_id: uuid.UUID | None
    detail: str
    raised_at: dt.datetime
    updated_at: dt.datetime
    acknowledged_at: dt.datetime | None
    acknowledged_by: uuid.UUID | None
    acknowledged_by_name: str | None
    resolved_at: dt.datetime | None
    resolution: str | None
    booking_status: BookingStatus | None
