"""The multimodal network as flat arrays: what the router and the dispatcher load and search.

Dense integer indices of stops, patterns and trips exist only inside a built network;
ids that leave `routing` are the namespaced GTFS ids (`<feed_id>:<gtfs_id>`).
"""

from __future__ import annotations

import datetime as dt

import msgspec
import numpy as np

# 2: GTFS shapes (shape_offsets, shape_lat, shape_lon, trip_shape as an index)
# 3: sharing knows form factors, renting / returning, availability of vehicles and snap distances
# 4: stop_sequence of every stop time (GTFS-Realtime names a trip's stops by it)
FORMAT_VERSION = 4


class BuildParams(msgspec.Struct, frozen=True, kw_only=True):
    """Everything that shapes a built network besides its inputs; recorded in the manifest."""

    walk_speed_mps: float = 1.3
    bike_speed_mps: float = 4.5
    snap_radius_m: float = 200.0
    max_transfer_walk_m: float = 500.0
    # Without a street graph, walking distance = straight line × this factor.
    straight_line_detour: float = 1.3
    default_min_transfer_s: int = 0


class StreetArrays(msgspec.Struct, frozen=True, kw_only=True):
    """One mode's street graph in CSR form (edges sorted by source node)."""

    mode: str
    node_osm_id: np.ndarray  # int64 [n]
    node_lat: np.ndarray  # float64 [n]
    node_lon: np.ndarray  # float64 [n]
    indptr: np.ndarray  # int32 [n + 1]
    indices: np.ndarray  # int32 [m]
    length_m: np.ndarray  # float32 [m]
    travel_time_s: np.ndarray  # float32 [m]
    name_idx: np.ndarray  # int32 [m], -1 when unnamed
    names: np.ndarray  # str [k]
    geometry_offsets: np.ndarray  # int32 [m + 1]
    geometry_lat: np.ndarray  # float64
    geometry_lon: np.ndarray  # float64

    @property
    def n_nodes(self) -> int:
        return int(self.indptr.shape[0] - 1)

    @property
    def n_edges(self) -> int:
        return int(self.indices.shape[0])


class Timetable(msgspec.Struct, frozen=True, kw_only=True):
    """Stops, route patterns, trips and stop times (RAPTOR layout), services and footpaths.

    The stop times of pattern p form a block `[trip][stop]` starting at `pattern_stop_time_offsets[p]`;
    its trips are sorted by departure and never overtake each other.
    Times are int32 seconds since the service day's origin (noon minus 12 h, agency time zone).
    """

    stop_id: np.ndarray  # str [S]
    stop_name: np.ndarray  # str [S]
    stop_lat: np.ndarray  # float64 [S], NaN when unknown
    stop_lon: np.ndarray  # float64 [S]
    stop_parent: np.ndarray  # int32 [S], -1 when none
    stop_location_type: np.ndarray  # int8 [S]
    stop_wheelchair: np.ndarray  # int8 [S], GTFS wheelchair_boarding
    stop_feed: np.ndarray  # int16 [S]
    stop_min_transfer_s: np.ndarray  # int32 [S], change time at the same stop

    route_id: np.ndarray  # str [R]
    route_short_name: np.ndarray  # str [R]
    route_long_name: np.ndarray  # str [R]
    route_type: np.ndarray  # int16 [R]
    route_agency: np.ndarray  # str [R], agency name

    pattern_route: np.ndarray  # int32 [P]
    pattern_stop_offsets: np.ndarray  # int32 [P + 1] into pattern_stops
    pattern_stops: np.ndarray  # int32
    pattern_pickup: np.ndarray  # int8, GTFS pickup_type per pattern stop
    pattern_dropoff: np.ndarray  # int8, GTFS drop_off_type per pattern stop
    pattern_trip_offsets: np.ndarray  # int32 [P + 1] into the trip arrays
    pattern_stop_time_offsets: np.ndarray  # int64 [P + 1] into arrival / departure

    trip_id: np.ndarray  # str [T], in pattern order
    trip_service: np.ndarray  # int32 [T]
    trip_wheelchair: np.ndarray  # int8 [T], GTFS wheelchair_accessible
    trip_headsign: np.ndarray  # str [T]
    trip_shape: np.ndarray  # int32 [T], index of the trip's shape, -1 when it has none

    arrival: np.ndarray  # int32
    departure: np.ndarray  # int32
    stop_sequence: np.ndarray  # int32, the GTFS stop_sequence of each stop time (rising along a trip)

    shape_id: np.ndarray  # str [H], namespaced
    shape_offsets: np.ndarray  # int32 [H + 1] into shape_lat / shape_lon
    shape_lat: np.ndarray  # float64
    shape_lon: np.ndarray  # float64

    stop_pattern_offsets: np.ndarray  # int32 [S + 1]: the patterns serving each stop
    stop_patterns: np.ndarray  # int32

    service_id: np.ndarray  # str [V]
    service_days: np.ndarray  # uint8 [V, ceil(D / 8)], bit d (little endian) = runs on first_date + d

    transfer_offsets: np.ndarray  # int32 [S + 1]: footpaths leaving each stop
    transfer_to: np.ndarray  # int32
    transfer_s: np.ndarray  # int32
    transfer_m: np.ndarray  # float32

    @property
    def n_stops(self) -> int:
        return int(self.stop_id.shape[0])

    @property
    def n_patterns(self) -> int:
        return int(self.pattern_route.shape[0])

    @property
    def n_trips(self) -> int:
        return int(self.trip_id.shape[0])


class SharingArrays(msgspec.Struct, frozen=True, kw_only=True):
    """Sharing stations and free-floating vehicles of every GBFS system, snapped to the streets.

    Counts are as the feed reported them, -1 when it did not (or reported -1). Snap distances are
    the way from the station or vehicle to its node (inf when unsnapped).
    """

    system_id: np.ndarray  # str [Y]
    system_name: np.ndarray  # str [Y]
    system_form_factors: np.ndarray  # str [Y], GBFS form factors of its vehicle types, ","-joined; "" when none listed
    station_system: np.ndarray  # int16 [N]
    station_id: np.ndarray  # str [N]
    station_name: np.ndarray  # str [N]
    station_lat: np.ndarray  # float64 [N]
    station_lon: np.ndarray  # float64 [N]
    station_capacity: np.ndarray  # int32 [N], -1 unknown
    station_vehicles: np.ndarray  # int32 [N], -1 unknown
    station_docks: np.ndarray  # int32 [N], -1 unknown
    station_renting: np.ndarray  # bool [N], installed and renting
    station_returning: np.ndarray  # bool [N], installed and taking vehicles back
    station_walk_node: np.ndarray  # int32 [N], -1 unsnapped
    station_walk_m: np.ndarray  # float32 [N]
    station_bike_node: np.ndarray  # int32 [N], -1 unsnapped
    station_bike_m: np.ndarray  # float32 [N]
    vehicle_system: np.ndarray  # int16 [M]
    vehicle_id: np.ndarray  # str [M]
    vehicle_form_factor: np.ndarray  # str [M], "" when its type is not known
    vehicle_available: np.ndarray  # bool [M], neither reserved nor disabled
    vehicle_lat: np.ndarray  # float64 [M]
    vehicle_lon: np.ndarray  # float64 [M]
    vehicle_walk_node: np.ndarray  # int32 [M]
    vehicle_walk_m: np.ndarray  # float32 [M]
    vehicle_bike_node: np.ndarray  # int32 [M]
    vehicle_bike_m: np.ndarray  # float32 [M]


class StopSnap(msgspec.Struct, frozen=True, kw_only=True):
    """Each stop's nearest node of one mode's street graph (-1 beyond the snap radius)."""

    mode: str
    node: np.ndarray  # int32 [S]
    distance_m: np.ndarray  # float32 [S]


class FeedInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    source: str
    sha256: str
    timezone: str
    stops: int
    routes: int
    trips: int
    stop_times: int
    service_start: dt.date | None
    service_end: dt.date | None
    errors: int
    warnings: int


class SourceFile(msgspec.Struct, frozen=True, kw_only=True):
    kind: str  # "gtfs" | "gbfs" | "osm"
    path: str
    sha256: str
    id: str | None = None


class NetworkCounts(msgspec.Struct, frozen=True, kw_only=True):
    stops: int
    routes: int
    patterns: int
    trips: int
    stop_times: int
    streets: dict[str, dict[str, int]]
    stops_snapped: int
    stops_unsnapped: int
    transfers: int
    sharing: dict[str, int]


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    """What a network directory holds, how it was built, from which inputs."""

    format_version: int
    created: dt.datetime
    timezone: str
    first_date: dt.date
    n_days: int
    params: BuildParams
    sources: list[SourceFile]
    feeds: list[FeedInfo]
    counts: NetworkCounts
    arrays: dict[str, str]  # "<group>.<name>" -> file name relative to the network directory
    phase_seconds: dict[str, float]


class Network(msgspec.Struct, frozen=True, kw_only=True):
    """A loaded network: timetable, street graphs per mode, stop snaps, sharing."""

    manifest: Manifest
    timetable: Timetable
    streets: dict[str, StreetArrays]
    snaps: dict[str, StopSnap]
    sharing: SharingArrays
