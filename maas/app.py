"""The composition root: create_app(settings) wires the database, the network, the fleet and the API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.config.compression import CompressionConfig
from litestar.openapi.config import OpenAPIConfig
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController

from maas.alerts import AlertService
from maas.api.admin import AdminController, AuditController
from maas.api.alerts import AlertController
from maas.api.bookings import BookingController, OperatorBookingController, QuoteController
from maas.api.deps import DEPENDENCIES, install
from maas.api.driver import DriverController, driver_socket
from maas.api.feeds import FeedController, NetworkController
from maas.api.fleet import FleetController
from maas.api.health import health, ready
from maas.api.journeys import JourneyController
from maas.api.live import FleetLiveController, RideVehicleController, fleet_socket, ride_socket
from maas.api.me import MeController
from maas.api.operator_journeys import OperatorJourneyController
from maas.api.places import MapController, PlaceController
from maas.api.plan import PlanController
from maas.api.plans import FleetPlanController
from maas.api.privacy import CallerController
from maas.api.problems import ClosedStructs, JsonRequest, ProblemResponses, single_query_values
from maas.api.reoptimizations import ReoptimizationController
from maas.api.service import ServiceAreaController, ServiceController
from maas.api.sessions import SessionController
from maas.api.transit import GtfsRtController, TransitController
from maas.auth import jwt_auth
from maas.booking import BookingService
from maas.console import console_router
from maas.db.database import Database
from maas.definition import DefinitionService
from maas.driving import DriverService, Schedules
from maas.errors import HANDLERS
from maas.eta import Etas
from maas.feed_versions import FeedService
from maas.fleet_admin import FleetAdmin
from maas.hardening import cors, hardening_headers
from maas.journeys import JourneyService
from maas.limits import RateLimits
from maas.protection import ConnectionGuard
from maas.publish import NetworkService
from maas.realtime import Hub
from maas.reoptimizing import FleetReoptimizer
from maas.retention import RetentionJob
from maas.served import Serving, seed_service_area
from maas.services import Services
from maas.settings import Settings
from maas.transit_rt import TransitRealtime
from maas.users import UserService


class _Metrics(PrometheusController):
    path = "/metrics"
    exclude_from_auth = True
    include_in_schema = False  # Prometheus text for scrapers, not part of the API


def create_app(settings: Settings) -> Litestar:
    """The API for riders, drivers, operators and agencies over one PostgreSQL database."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        """Every service of the process, built once: the database, the served network (router, fleet
        and snapping, swapped as one), bookings, drivers and the live hub."""
        db = await Database.open(settings)
        serving = Serving()
        hub = Hub(db.url)
        transit = TransitRealtime(db, serving, settings)
        protection = ConnectionGuard(db, serving, transit)
        reoptimizer = FleetReoptimizer(db, serving, hub)
        retention = RetentionJob(db)
        networks = None
        try:
            await seed_service_area(db, settings)
            networks = await NetworkService.open(settings, db, serving)
            await hub.start()
            schedules = Schedules(db, serving)
            etas = Etas(db, serving, hub)
            services = Services(
                settings=settings,
                db=db,
                serving=serving,
                networks=networks,
                bookings=BookingService(db, serving),
                journeys=JourneyService(db, serving, transit),
                drivers=DriverService(db, serving, hub, schedules, etas),
                etas=etas,
                schedules=schedules,
                hub=hub,
                fleet_admin=FleetAdmin(db, serving, schedules),
                users=UserService(db),
                definitions=DefinitionService(db),
                feed_versions=FeedService(db, settings),
                transit=transit,
                protection=protection,
                alerts=AlertService(db),
                reoptimizer=reoptimizer,
            )
            install(app, services)
            transit.start_polling()
            protection.start(settings.gtfs_rt_interval_s)
            reoptimizer.start()
            retention.start()
            yield
        finally:
            await retention.stop()
            await reoptimizer.stop()  # ends its worker process too
            await protection.stop()
            await transit.stop_polling()
            await hub.close()
            if networks is not None:
                await networks.close()
            await db.close()

    auth = jwt_auth(settings)
    prometheus = PrometheusConfig(app_name="maas", group_path=True, exclude=["/metrics"])

    def outermost(app_config: AppConfig) -> AppConfig:
        """Metrics see every answer, and rate limits come before authentication, so that requests with bad
        tokens spend their address's budget too (authentication inserts itself first; this runs after it)."""
        app_config.middleware[0:0] = [prometheus.middleware, RateLimits(settings)]
        return app_config

    return Litestar(
        route_handlers=[
            health,
            ready,
            _Metrics,
            QuoteController,
            BookingController,
            OperatorBookingController,
            FleetController,
            FleetPlanController,
            ReoptimizationController,
            AlertController,
            AdminController,
            SessionController,
            AuditController,
            ServiceController,
            ServiceAreaController,
            FeedController,
            NetworkController,
            PlanController,
            PlaceController,
            MapController,
            JourneyController,
            OperatorJourneyController,
            GtfsRtController,
            TransitController,
            DriverController,
            driver_socket,
            RideVehicleController,
            FleetLiveController,
            ride_socket,
            fleet_socket,
            MeController,
            CallerController,
            console_router(),
        ],
        lifespan=[lifespan],
        dependencies=DEPENDENCIES,
        guards=[single_query_values],  # every query parameter once, and named
        on_app_init=[auth.on_app_init, outermost],
        exception_handlers=HANDLERS,
        before_send=[hardening_headers(settings)],
        cors_config=cors(settings),
        openapi_config=OpenAPIConfig(title="maas", version=version("maas"), path="/schema"),
        # Large JSON (the map's GeoJSON, plans, lists) goes gzipped to clients that accept it.
        compression_config=CompressionConfig(backend="gzip", minimum_size=1024, gzip_compress_level=6),
        request_max_body_size=settings.max_body_bytes,
        request_class=JsonRequest,  # JSON bodies only, refused with a problem when not JSON or too deep
        plugins=[ProblemResponses(), ClosedStructs()],  # every operation's problem answers in the OpenAPI document
    )


def app_from_env() -> Litestar:
    """The app with settings from the environment (what `maas serve` runs in each worker)."""
    return create_app(Settings.from_env())
