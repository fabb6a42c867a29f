"""Every service of one process, built once by the app's lifespan (maas/app.py) and handed to the
controllers through dependency injection (maas/api/deps.py)."""

from __future__ import annotations

from dataclasses import dataclass

from maas.area import AreaService
from maas.booking import BookingService
from maas.db.database import Database
from maas.driving import DriverService, Schedules
from maas.feed_versions import FeedService
from maas.fleet_admin import FleetAdmin
from maas.publish import NetworkService
from maas.realtime import Hub
from maas.served import Serving
from maas.settings import Settings
from maas.transit_rt import TransitRealtime
from maas.users import UserService


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    db: Database
    serving: Serving  # the served network: router, fleet drive graph and snapping, swapped as one
    networks: NetworkService  # publishing, activating and following networks
    bookings: BookingService
    drivers: DriverService
    schedules: Schedules
    hub: Hub
    fleet_admin: FleetAdmin  # vehicles and shifts
    users: UserService  # users, tokens, the audit log
    areas: AreaService  # the service area
    feed_versions: FeedService  # GTFS uploads
    transit: TransitRealtime  # GTFS-Realtime: stored messages, the trip updates' overlay, transit vehicles
