"""What the service serves: one network directory, and everything built from it, swapped as one unit.

Journey plans, quotes, bookings and the drivers' plans all answer from the same `ServedNetwork`:
its router, its drive graph (on which the fleet's copy of the plans lives) and its snapping of
places onto the streets. A publish or a rollback builds a new one beside the old and replaces it
whole; a request keeps the one it started with. On-demand legs of journey plans run inside the
service area in force, the database's (the same that bookings are checked against).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import shapely
import shapely.geometry

from maas.area import polygon_of
from maas.db import Connection, areas, locks
from maas.db.database import Database
from maas.definition import check_rules
from maas.errors import Invalid
from maas.fleet import FleetService
from maas.model import ServiceDefinition, ServiceRules
from maas.settings import Settings
from routing.mapdata import MapStop, MapStreet, map_stops, map_streets
from routing.model import Network
from routing.network import load_network
from routing.ondemand import DriveTimeEstimator, OnDemandService, ServiceError, load_service
from routing.places import PlaceIndex
from routing.plan import Router
from routing.spatial import NearestIndex

NETWORK_HEADER = "X-Maas-Network"
# A feed none of whose stops lies this close to the streets belongs to another region. Feeds that
# reach a little beyond the street extract (a bus line to the next town) are welcome.
REGION_RADIUS_M = 10_000.0


class MapData(msgspec.Struct, frozen=True, kw_only=True):
    """What the map draws of a network, made once on first request."""

    streets: list[MapStreet]
    stops: list[MapStop]


class ServedNetwork:
    """The router, the fleet's drive graph and plans, the snapping, the place names and the map data
    of one network directory."""

    def __init__(self, network_id: int | None, directory: Path, network: Network, rides: OnDemandService) -> None:
        self.id = network_id
        self.directory = directory
        self.network = network
        self.router = Router(network)
        self._rides = rides  # ride-time rules of on-demand legs; the area comes from the database
        self._live: tuple[int, Router] | None = None
        self._building = threading.Lock()
        self.places = PlaceIndex(network)
        self._map: MapData | None = None
        self._drawing = threading.Lock()
        manifest = network.manifest
        build = f"{network_id}|{manifest.created.isoformat()}|" + "|".join(s.sha256 for s in manifest.sources)
        # Strong: the same network build always draws the same bytes.
        self.etag = '"' + hashlib.sha256(build.encode()).hexdigest()[:32] + '"'
        drive = network.streets.get("drive")
        self.fleet: FleetService | None = None
        if drive is not None and drive.n_nodes:
            self.fleet = FleetService(drive)
            snap = network.snaps.get("drive")
            if snap is not None:  # bus stops double as virtual stops: their drive times are ready
                self.fleet.times.warm(sorted({int(n) for n in np.asarray(snap.node).tolist() if n >= 0}))

    @classmethod
    def load(cls, network_id: int | None, directory: Path, rides: OnDemandService) -> ServedNetwork:
        """Load a built network directory (slow: run in a worker thread)."""
        return cls(network_id, directory, load_network(directory), rides)

    def router_for(self, definition: ServiceDefinition) -> Router | None:
        """The router that plans journeys with optimistic on-demand rides inside the definition's
        area, for the live fleet to check and time exactly: the direct drive plus boarding and the
        change at the station (no vehicle does better), at any hour (the hours are the definition's
        and apply to the offers). None without a drive graph."""
        if self.fleet is None:
            return None
        known = self._live
        if known is not None and known[0] == definition.version:
            return known[1]
        with self._building:
            known = self._live
            if known is None or known[0] != definition.version:
                rules = definition.rules
                service = OnDemandService(
                    name=definition.name,
                    area=area_geometry(definition.geometry),
                    detour_factor=1.0,
                    pickup_delay_s=rules.boarding_s + rules.change_s,
                    max_ride_s=max(self._rides.max_ride_s, 3600),
                    start=dt.time(0, 0),
                    end=dt.time(23, 59, 59),
                )
                known = (definition.version, Router(self.network, DriveTimeEstimator(self.network, service)))
                self._live = known
        return known[1]

    def map_data(self) -> MapData:
        """The streets and stops to draw (made on first call, then kept: slow, run in a worker thread)."""
        known = self._map
        if known is None:
            with self._drawing:
                known = self._map
                if known is None:
                    known = MapData(streets=map_streets(self.network), stops=map_stops(self.network))
                    self._map = known
        return known

    def stops_near_streets(self, lat: np.ndarray, lon: np.ndarray) -> int | None:
        """How many of the points lie within REGION_RADIUS_M of this network's walking streets; None
        for a network without streets."""
        walk = self.network.streets.get("walk")
        if walk is None or not walk.n_nodes:
            return None
        near = NearestIndex(np.asarray(walk.geometry_lat), np.asarray(walk.geometry_lon))
        found, _ = near.nearest(lat, lon, REGION_RADIUS_M)
        return int((found >= 0).sum())

    def streets_extent(self) -> str:
        """The box the walking streets span, for messages."""
        walk = self.network.streets["walk"]
        lat, lon = np.asarray(walk.node_lat), np.asarray(walk.node_lon)
        return f"lat {lat.min():.2f}..{lat.max():.2f}, lon {lon.min():.2f}..{lon.max():.2f}"


def area_geometry(geojson: dict[str, Any]) -> dict[str, Any]:
    """The plain GeoJSON geometry of an area stored as a geometry, Feature or one-feature collection."""
    return dict(shapely.geometry.mapping(polygon_of(geojson)))


class Serving:
    """The ServedNetwork in force in this process (None until one is loaded), replaced whole, and
    the service definition in force as last read."""

    def __init__(self) -> None:
        self.current: ServedNetwork | None = None
        self._definition: ServiceDefinition | None = None

    def zone(self) -> dt.tzinfo:
        """The served network's time zone, in which people read times and days (UTC while none is served)."""
        served = self.current
        return served.router.timezone if served is not None else dt.UTC

    def fleet(self) -> FleetService | None:
        served = self.current
        return served.fleet if served is not None else None

    async def definition(self, conn: Connection, version: int | bool | None = False) -> ServiceDefinition | None:
        """The database's service definition in force (one small query, none when `version` was read
        already; the definition is re-read only when its version changed)."""
        if version is False:
            version = await areas.current_version(conn)
        if version is None:
            return None
        known = self._definition
        if known is None or known.version != version:
            known = await areas.find_current_definition(conn)
            self._definition = known
        return known


async def seed_service_area(db: Database, settings: Settings) -> None:
    """A service definition file becomes the first service definition in the database when none is
    set (its area, hours and `[rules]`): from then on the database's definition is the one in force,
    for plans, quotes, bookings and journeys alike."""
    if settings.service_file is None:
        return
    service = load_service(settings.service_file)
    try:
        rules = msgspec.convert(
            {"hours": [{"start": service.start, "end": service.end}], **service.rules}, ServiceRules
        )
    except msgspec.ValidationError as exc:
        raise ServiceError(f"{settings.service_file}: [rules]: {exc}") from exc
    try:
        check_rules(rules)
    except Invalid as exc:
        raise ServiceError(f"{settings.service_file}: [rules]: {exc}") from exc
    async with db.pool.acquire() as conn, conn.transaction():
        await locks.lock_fleet(conn)  # two processes starting at once add one definition
        if await areas.current_version(conn) is None:
            await areas.add_definition(conn, service.name, area_geometry(service.area), rules, None)


def network_header(served: ServedNetwork | None) -> dict[str, str]:
    """`X-Maas-Network: <id>`: which network version answered (plans and quotes carry it)."""
    return {NETWORK_HEADER: str(served.id)} if served is not None and served.id is not None else {}
