"""The controllers' dependencies: the one module that reads the application's state.

Handlers name what they need as parameters (`bookings: BookingService`, `db: Database` ...) and
Litestar passes it in; nothing else reaches into `app.state`.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide

from maas.alerts import AlertService
from maas.booking import BookingService
from maas.db.database import Database
from maas.definition import DefinitionService
from maas.driving import DriverService, Schedules
from maas.eta import Etas
from maas.feed_versions import FeedService
from maas.fleet_admin import FleetAdmin
from maas.journeys import JourneyService
from maas.publish import NetworkService
from maas.realtime import Hub
from maas.reoptimizing import FleetReoptimizer
from maas.served import Serving
from maas.services import Services
from maas.settings import Settings
from maas.transit_rt import TransitRealtime
from maas.users import UserService

_KEY = "services"


def install(app: Litestar, services: Services) -> None:
    """Make `services` what every handler of `app` receives (called once by the lifespan)."""
    app.state[_KEY] = services


def services_of(app: Litestar) -> Services:
    """The services of `app`, for code that runs outside a handler (authentication, sockets)."""
    services = app.state[_KEY]
    assert isinstance(services, Services), "the app's lifespan has not run"
    return services


def _services(state: State) -> Services:
    services = state[_KEY]
    assert isinstance(services, Services)
    return services


def _settings(state: State) -> Settings:
    return _services(state).settings


def _db(state: State) -> Database:
    return _services(state).db


def _serving(state: State) -> Serving:
    return _services(state).serving


def _networks(state: State) -> NetworkService:
    return _services(state).networks


def _bookings(state: State) -> BookingService:
    return _services(state).bookings


def _journeys(state: State) -> JourneyService:
    return _services(state).journeys


def _drivers(state: State) -> DriverService:
    return _services(state).drivers


def _schedules(state: State) -> Schedules:
    return _services(state).schedules


def _etas(state: State) -> Etas:
    return _services(state).etas


def _hub(state: State) -> Hub:
    return _services(state).hub


def _fleet_admin(state: State) -> FleetAdmin:
    return _services(state).fleet_admin


def _users(state: State) -> UserService:
    return _services(state).users


def _definitions(state: State) -> DefinitionService:
    return _services(state).definitions


def _feed_versions(state: State) -> FeedService:
    return _services(state).feed_versions


def _transit(state: State) -> TransitRealtime:
    return _services(state).transit


def _reoptimizer(state: State) -> FleetReoptimizer:
    return _services(state).reoptimizer


def _alerts(state: State) -> AlertService:
    return _services(state).alerts


DEPENDENCIES: dict[str, Any] = {
    "settings": Provide(_settings, sync_to_thread=False),
    "db": Provide(_db, sync_to_thread=False),
    "serving": Provide(_serving, sync_to_thread=False),
    "networks": Provide(_networks, sync_to_thread=False),
    "bookings": Provide(_bookings, sync_to_thread=False),
    "journeys": Provide(_journeys, sync_to_thread=False),
    "drivers": Provide(_drivers, sync_to_thread=False),
    "schedules": Provide(_schedules, sync_to_thread=False),
    "etas": Provide(_etas, sync_to_thread=False),
    "hub": Provide(_hub, sync_to_thread=False),
    "fleet_admin": Provide(_fleet_admin, sync_to_thread=False),
    "users": Provide(_users, sync_to_thread=False),
    "definitions": Provide(_definitions, sync_to_thread=False),
    "feed_versions": Provide(_feed_versions, sync_to_thread=False),
    "transit": Provide(_transit, sync_to_thread=False),
    "reoptimizer": Provide(_reoptimizer, sync_to_thread=False),
    "alerts": Provide(_alerts, sync_to_thread=False),
}
