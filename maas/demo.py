"""`maas demo`: the bundled Herrenberg region, built once into a cache folder and summarised."""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from routing.builder import BuildInputs, build_network
from routing.model import Manifest
from routing.network import NetworkError, read_manifest

if TYPE_CHECKING:
    from maas.settings import Settings

DEMO_FEEDS = (
    "vvs-herrenberg-2021-subset.gtfs.zip",
    "vvs-s1-only.gtfs.zip",
    "vvs-bus-751-only.gtfs.zip",
    "vvs-bus-764-only.gtfs.zip",
    "vvs-only-bronntor-bus-stop.gtfs.zip",
)
DEMO_GBFS = ("stadtrad", "alf", "bananologen", "gueltstein-mobil", "car-sharing")


def demo_region() -> Path:
    """The folder of the bundled sample region (OSM extract, VVS feeds, GBFS systems)."""
    return Path(str(resources.files("maas") / "data" / "region-herrenberg"))


def demo_inputs() -> BuildInputs:
    region = demo_region()
    return BuildInputs(
        osm=str(region / "herrenberg-and-around.osm.pbf"),
        gtfs=[str(region / "gtfs" / name) for name in DEMO_FEEDS],
        gbfs=[str(region / "gbfs" / name) for name in DEMO_GBFS],
    )


def default_demo_dir() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "maas" / "demo-network"


def _up_to_date(out: Path, inputs: BuildInputs) -> Manifest | None:
    try:
        manifest = read_manifest(out)
    except NetworkError:
        return None
    recorded = sorted(s.path for s in manifest.sources)
    wanted = sorted([*inputs.gtfs, *inputs.gbfs, *([inputs.osm] if inputs.osm else [])])
    return manifest if recorded == wanted else None


def run_demo(out: Path | None, rebuild: bool, console: Console) -> Manifest:
    """Build (unless an up-to-date one exists) and summarise the demo network."""
    out = out or default_demo_dir()
    inputs = demo_inputs()
    manifest = None if rebuild else _up_to_date(out, inputs)
    if manifest is None:
        console.print(f"building the Herrenberg demo network into {out}")
        manifest = build_network(inputs, out, console=console)
    else:
        console.print(f"using the demo network in {out} (--rebuild builds it again)")
    c = manifest.counts
    table = Table(title="Herrenberg demo region (VVS timetables, stadtnavi GBFS, OpenStreetMap)")
    table.add_column("what")
    table.add_column("count", justify="right")
    for feed in manifest.feeds:
        table.add_row(
            f"feed {feed.id} ({feed.service_start} .. {feed.service_end})",
            f"{feed.trips} trips / {feed.stop_times} stop times",
        )
    table.add_row("route patterns", str(c.patterns))
    table.add_row("stops snapped to streets", f"{c.stops_snapped} of {c.stops}")
    table.add_row("footpath transfers", str(c.transfers))
    for mode, g in c.streets.items():
        table.add_row(f"{mode} streets", f"{g['nodes']} nodes / {g['edges']} edges")
    table.add_row("sharing", f"{c.sharing['systems']} systems, {c.sharing['stations']} stations")
    Console().print(table)
    console.print(f"inspect it with: maas network info {out}")
    _sample_plan(out, console)
    return manifest


def _sample_plan(out: Path, console: Console) -> None:
    """A journey a rural rider makes: from Nebringen (no scheduled bus) by Rufbus and S-Bahn to Ehningen."""
    import datetime as dt
    import zoneinfo

    from routing.network import load_network
    from routing.ondemand import DriveTimeEstimator, load_service
    from routing.plan import Endpoint, PlanRequest, Router

    network = load_network(out)
    service = demo_region() / "on-demand.toml"
    router = Router(network, DriveTimeEstimator(network, load_service(service)))
    depart = dt.datetime(2020, 10, 6, 7, 30, tzinfo=zoneinfo.ZoneInfo(network.manifest.timezone))
    plan = router.plan(
        PlanRequest(
            origin=Endpoint(lat=48.5627, lon=8.8481),
            destination=Endpoint(lat=48.6582, lon=8.9408),
            depart=depart,
        )
    )
    console.print("sample journey, Nebringen -> Ehningen on 2020-10-06 from 07:30:")
    for it in plan.itineraries[:3]:
        steps = ", ".join(
            f"{leg.departure:%H:%M} {leg.route_name or leg.mode.replace('_', '-')} to {leg.to.name}" for leg in it.legs
        )
        console.print(f"  {it.departure:%H:%M} -> {it.arrival:%H:%M}: {steps}", highlight=False)
    console.print(
        f"plan your own: maas plan {out} --from 48.5627,8.8481 --to 48.6582,8.9408"
        f" --depart 2020-10-06T07:30 --on-demand {service}",
        highlight=False,
    )


DEMO_PLACES = {  # stadtnavi test locations in the region (maas/data/region-herrenberg/od)
    "Herrenberg Bahnhof": (48.5935, 8.8630),
    "Herrenberg Verenaweg": (48.59981, 8.88535),
    "Nebringen": (48.5627, 8.8481),
    "Kuppingen": (48.6113, 8.8430),
}
DEMO_FLEET = (("Rufbus 1", 8, 1), ("Rufbus 2", 8, 1), ("Rufbus 3", 4, 0))


class DemoAccess:
    """What `maas demo` prints: where the API is and who may use it."""

    def __init__(self, tokens: dict[str, str], bookings: list[str]) -> None:
        self.tokens = tokens
        self.bookings = bookings


async def prepare_service(settings: Settings) -> DemoAccess:
    """Demo users (one per role), a fleet on shift for the next hours and a few bookings; run twice,
    it reuses the users and vehicles and only adds shifts when none covers now."""
    import datetime as dt

    from maas.auth import issue_token
    from maas.booking import BookingService, Place, RideWish
    from maas.db import areas, locks
    from maas.db import fleet as fleet_repo
    from maas.db.database import Database
    from maas.db.users import create_user, list_users
    from maas.errors import Conflict
    from maas.model import ServiceRules
    from maas.served import ServedNetwork, Serving
    from routing.ondemand import OnDemandService

    if settings.network_dir is None:
        raise NetworkError("the demo service needs a network directory")
    db = await Database.open(settings, min_size=1, max_size=4)
    try:
        async with db.pool.acquire() as conn:
            known = {(u.role, u.name): u for u in await list_users(conn)}
            people = {}
            for role in ("admin", "operator", "rider", "driver", "agency"):
                name = f"demo {role}"
                people[role] = known.get((role, name)) or await create_user(
                    conn, name, role, agency="vvs" if role == "agency" else None
                )
            if await areas.current_version(conn) is None:
                region = json.loads((demo_region() / "herrenberg-and-around.geojson").read_text())
                await areas.add_definition(
                    conn, "Rufbus Herrenberg (demo region)", region, ServiceRules(), people["operator"].id
                )
            vehicles = {v.name: v for v in await fleet_repo.list_vehicles(conn)}
            depot = DEMO_PLACES["Herrenberg Bahnhof"]
            now = dt.datetime.now(dt.UTC)
            current = {s.vehicle_id for s in await fleet_repo.list_current_shifts(conn, now)}
            async with conn.transaction():
                await locks.lock_fleet(conn)
                for name, seats, wheelchairs in DEMO_FLEET:
                    vehicle = vehicles.get(name) or await fleet_repo.create_vehicle(
                        conn, name, seats, wheelchairs, *depot
                    )
                    if vehicle.id not in current:
                        driver = people["driver"].id if name == "Rufbus 1" else None
                        shift = await fleet_repo.create_shift(
                            conn, vehicle.id, driver, now, now + dt.timedelta(hours=12)
                        )
                        await fleet_repo.save_plan(conn, shift.id, [])
                await fleet_repo.bump_fleet_version(conn)
        # The demo's rides are booked on the network it built, as the service will serve it.
        serving = Serving()
        serving.current = ServedNetwork.load(None, Path(settings.network_dir), OnDemandService(name="demo", area={}))
        service = BookingService(db, serving)
        rides = [
            ("Nebringen", "Herrenberg Bahnhof", 1, 0, 0.5),
            ("Kuppingen", "Herrenberg Bahnhof", 2, 0, 0.75),
            ("Herrenberg Verenaweg", "Nebringen", 0, 1, 1.0),
        ]
        booked = []
        for k, (a, b, seated, wheelchairs, hours) in enumerate(rides):
            wish = RideWish(
                origin=Place(lat=DEMO_PLACES[a][0], lon=DEMO_PLACES[a][1]),
                destination=Place(lat=DEMO_PLACES[b][0], lon=DEMO_PLACES[b][1]),
                seated=seated,
                wheelchairs=wheelchairs,
                earliest_pickup=dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours),
            )
            try:
                booking, _ = await service.book(people["rider"], wish, f"demo-{now:%Y%m%d%H}-{k}")
            except Conflict:
                continue
            booked.append(
                f"{a} -> {b} ({seated} seated, {wheelchairs} wheelchair): pickup "
                f"{booking.pickup_earliest:%H:%M}-{booking.pickup_latest:%H:%M} UTC"
            )
        tokens = {role: issue_token(settings, user) for role, user in people.items()}
        return DemoAccess(tokens, booked)
    finally:
        await db.close()
