"""Every service of one process, built once by the app's lifespan (maas/app.py) and handed to the
controllers through dependency injection (maas/api/deps.py)."""

from __future__ import annotations

from dataclasses import dataclass

from maas.alerts import AlertService
from maas.booking import BookingService
from maas.db.database import Database
from maas.definition import DefinitionService
from maas.driving import DriverService, Schedules
from maas.eta import Etas
from maas.feed_versions import FeedService
from maas.fleet_admin import FleetAdmin
from maas.journeys import JourneyService
from maas.protection import ConnectionGuard
from maas.publish import NetworkService
from maas.realtime import Hub
from maas.reoptimizing import FleetReoptimizer
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
    journeys: JourneyService  # plans with live offers, and journeys booked from them
    drivers: DriverService
    schedules: Schedules
    etas: Etas  # arrival times from the vehicles' GPS, delay alerts
    hub: Hub
    fleet_admin: FleetAdmin  # vehicles and shifts
    users: UserService  # users, tokens, the audit log
    definitions: DefinitionService  # the service definition (area and rules)
    feed_versions: FeedService  # GTFS uploads
    protection: ConnectionGuard  # rides that wait for late trains, journeys at risk
    transit: TransitRealtime  # GTFS-Realtime: stored messages, the trip updates' overlay, transit vehicles
    reoptimizer: FleetReoptimizer  # re-optimises the live plans now and then, in a worker process
    alerts: AlertService  # the operators' alert inbox
