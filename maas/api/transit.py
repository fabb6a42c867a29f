"""GTFS-Realtime: agencies and operators post a feed's messages; anyone signed in sees the transit vehicles."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import PathParameter, QueryParameter

from feeds.gtfs_rt import VehiclePosition
from maas.api.problems import problems
from maas.auth import roles
from maas.model import ROLES, RealtimeKind, User
from maas.settings import Settings
from maas.transit_rt import StoredFeedMessage, TransitRealtime
from maas.wire import MAX_ID, PRINTABLE, Timestamp, iso, iso_or_none
from routing.realtime import FeedReport

# What a GTFS-Realtime producer labels its protobuf with; anything else is refused (415).
PROTOBUF_TYPES = ("application/x-protobuf", "application/protobuf", "application/octet-stream")


class GtfsRtStoredOut(msgspec.Struct, frozen=True, kw_only=True):
    feed_id: str
    kinds: list[RealtimeKind]  # stored as the feed's latest trip updates and/or vehicle positions
    version: int
    header_timestamp: Timestamp | None
    received_at: Timestamp
    trip_updates: int
    vehicle_positions: int
    alerts: int
    applied: FeedReport | None  # how the trip updates apply to the network served (None without trip updates)


class TransitVehicleOut(msgspec.Struct, frozen=True, kw_only=True):
    feed_id: str
    vehicle_id: str | None
    label: str | None
    trip: str | None  # namespaced, <feed_id>:<trip_id>
    route: str | None  # namespaced
    stop: str | None  # namespaced: the stop it is at or heading to
    current_status: str | None  # INCOMING_AT, STOPPED_AT or IN_TRANSIT_TO
    lat: float
    lon: float
    bearing: float | None
    speed_mps: float | None
    timestamp: Timestamp | None  # of the fix


class TransitVehiclesOut(msgspec.Struct, frozen=True, kw_only=True):
    vehicles: list[TransitVehicleOut]


def _stored_out(stored: StoredFeedMessage) -> GtfsRtStoredOut:
    return GtfsRtStoredOut(
        feed_id=stored.feed_id,
        kinds=stored.kinds,
        version=stored.version,
        header_timestamp=iso_or_none(stored.header_timestamp),
        received_at=iso(stored.received_at),
        trip_updates=stored.trip_updates,
        vehicle_positions=stored.vehicle_positions,
        alerts=stored.alerts,
        applied=stored.applied,
    )


def _namespaced(feed_id: str, gtfs_id: str | None) -> str | None:
    return None if gtfs_id is None else f"{feed_id}:{gtfs_id}"


def _vehicle_out(feed_id: str, v: VehiclePosition) -> TransitVehicleOut:
    assert v.lat is not None and v.lon is not None, "TransitRealtime.vehicles gives vehicles with a fix"
    return TransitVehicleOut(
        feed_id=feed_id,
        vehicle_id=v.vehicle_id,
        label=v.label,
        trip=_namespaced(feed_id, v.trip_id),
        route=_namespaced(feed_id, v.route_id),
        stop=_namespaced(feed_id, v.stop_id),
        current_status=v.current_status,
        lat=v.lat,
        lon=v.lon,
        bearing=v.bearing,
        speed_mps=v.speed_mps,
        timestamp=None if v.timestamp is None else iso(dt.datetime.fromtimestamp(v.timestamp, dt.UTC)),
    )


async def _bounded_body(request: Request[User, Any, Any], max_bytes: int) -> bytes:
    """The request body, refused with 413 as soon as it passes `max_bytes`."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise HTTPException(
                status_code=413, detail=f"a GTFS-Realtime message may have {max_bytes} bytes (MAAS_GTFS_RT_MAX_BYTES)"
            )
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass
class _ProtobufOperation(Operation):
    """The operation of a handler that reads its body itself, as protobuf bytes: documented as such."""

    def __post_init__(self) -> None:
        binary = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
        self.request_body = RequestBody(
            content={t: OpenAPIMediaType(schema=binary) for t in PROTOBUF_TYPES}, required=True
        )


class GtfsRtController(Controller):
    path = "/realtime/gtfs-rt"

    @post(
        "/{feed_id:str}",
        status_code=201,
        guards=[roles("agency", "operator", "admin")],
        operation_class=_ProtobufOperation,
        responses=problems(413, 415),
    )
    async def post_message(
        self,
        request: Request[User, Any, Any],
        transit: NamedDependency[TransitRealtime],
        settings: NamedDependency[Settings],
        feed_id: Annotated[str, PathParameter(max_length=MAX_ID, pattern=PRINTABLE)],
    ) -> GtfsRtStoredOut:
        """Store a GTFS-Realtime FeedMessage (body: the protobuf bytes, `Content-Type: application/x-protobuf`)
        as the feed's latest trip updates and/or vehicle positions; every process of the service plans on it.
        Agencies post for their own feeds only. Answers how its trip updates apply to the network served."""
        content_type = request.content_type[0]
        if content_type not in PROTOBUF_TYPES:
            raise HTTPException(
                status_code=415,
                detail=f"send the FeedMessage as application/x-protobuf, not {content_type or 'nothing'}",
            )
        body = await _bounded_body(request, settings.gtfs_rt_max_bytes)
        return _stored_out(await transit.store(request.user, feed_id, body))


class TransitController(Controller):
    path = "/transit"
    guards = [roles(*ROLES)]

    @get("/vehicles")
    async def vehicles(
        self,
        transit: NamedDependency[TransitRealtime],
        feed_id: Annotated[str | None, QueryParameter(max_length=MAX_ID, pattern=PRINTABLE)] = None,
    ) -> TransitVehiclesOut:
        """Where the transit vehicles are by the latest GTFS-Realtime vehicle positions of each feed (or of
        `feed_id`); positions older than MAAS_GTFS_RT_MAX_AGE_S and vehicles without a fix are left out."""
        return TransitVehiclesOut(vehicles=[_vehicle_out(feed, v) for feed, v in await transit.vehicles(feed_id)])
