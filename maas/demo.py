"""`maas demo`: the bundled Herrenberg region, built once into a cache folder and summarised."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import shutil
import zoneinfo
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from rich.console import Console
from rich.table import Table

from feeds.gtfs import GtfsFeed, read_gtfs
from feeds.gtfs_shift import shift_service_dates
from routing.builder import BuildInputs, build_network
from routing.model import Manifest
from routing.network import NetworkError, read_manifest

if TYPE_CHECKING:
    from maas.db import Connection
    from maas.model import User
    from maas.settings import Settings

DEMO_FEEDS = (
    "vvs-herrenberg-2021-subset.gtfs.zip",
    "vvs-s1-only.gtfs.zip",
    "vvs-bus-751-only.gtfs.zip",
    "vvs-bus-764-only.gtfs.zip",
    "vvs-only-bronntor-bus-stop.gtfs.zip",
)
DEMO_GBFS = ("stadtrad", "alf", "bananologen", "gueltstein-mobil", "car-sharing")

# The demo's timetables are from 2020 and 2021, its service runs on the real clock. Each feed is
# moved by whole weeks (so weekdays stay weekdays, Saturdays Saturdays) such that its busiest run of
# COVERED_WEEKS weeks, Monday to Sunday and counted in trips, starts on the Monday of the current week.
# Counting trips passes over the feed's holidays, its thin first and last weeks and the weeks past
# its end, so today and the following three weeks or more run a normal timetable. The busiest run
# is a property of the feed alone: the shift only changes when a new week starts, and the demo then
# builds its network again.
COVERED_WEEKS = 4
_SHIFT_FOLDER = re.compile(r"shift[+-]\d+w")


def demo_region() -> Path:
    """The folder of the bundled sample region (OSM extract, VVS feeds, GBFS systems)."""
    return Path(str(resources.files("maas") / "data" / "region-herrenberg"))


def week_shift_days(feed: GtfsFeed, today: dt.date) -> int:
    """The days (a multiple of 7) that move the feed's busiest COVERED_WEEKS weeks onto the week of
    `today` and the ones after it (0 for a feed without a trip on any day)."""
    services = feed.services
    per_service = feed.tables.trips["service_id"].value_counts()
    trips_per_service = np.array([per_service.get(sid, 0) for sid in services.service_ids], dtype=np.int64)
    trips_per_day = trips_per_service @ services.active.astype(np.int64)
    if not trips_per_day.any():
        return 0
    # Days from the Monday on or before the feed's first date, padded to whole weeks.
    lead = services.first_date.weekday()
    weeks = -(-(lead + len(trips_per_day)) // 7)
    days = np.zeros(7 * weeks, dtype=np.int64)
    days[lead : lead + len(trips_per_day)] = trips_per_day
    per_week = np.r_[days.reshape(weeks, 7).sum(axis=1), np.zeros(COVERED_WEEKS - 1, dtype=np.int64)]
    per_run = np.convolve(per_week, np.ones(COVERED_WEEKS, dtype=np.int64), mode="valid")
    busiest_monday = services.first_date - dt.timedelta(days=lead) + dt.timedelta(weeks=int(np.argmax(per_run)))
    return (today - dt.timedelta(days=today.weekday()) - busiest_monday).days


def shift_feeds_to_today(feeds: Sequence[Path], folder: Path, now: dt.datetime | None = None) -> list[Path]:
    """Copies of the GTFS feeds that run in the week of `now` (aware; default: the clock) and the weeks after,
    each moved by `week_shift_days` and written as folder/shift<+N>w/<its file name>."""
    now = now or dt.datetime.now(dt.UTC)
    shifted = []
    for source in feeds:
        feed = read_gtfs(source)
        days = week_shift_days(feed, now.astimezone(zoneinfo.ZoneInfo(feed.timezone)).date())
        target = folder / f"shift{days // 7:+d}w" / source.name
        # Written every time (a third of a second): a copy is then never older than its source.
        target.parent.mkdir(parents=True, exist_ok=True)
        shift_service_dates(source, target, days)
        shifted.append(target)
    return shifted


def demo_inputs(feeds_folder: Path, now: dt.datetime | None = None) -> BuildInputs:
    """What the demo network is built from: the bundled region, its timetables moved to run now."""
    region = demo_region()
    return BuildInputs(
        osm=str(region / "herrenberg-and-around.osm.pbf"),
        gtfs=[str(p) for p in shift_feeds_to_today([region / "gtfs" / name for name in DEMO_FEEDS], feeds_folder, now)],
        gbfs=[str(region / "gbfs" / name) for name in DEMO_GBFS],
    )


def default_demo_dir() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "maas" / "demo-network"


def demo_feeds_dir(out: Path) -> Path:
    """Where the demo's shifted timetables are written: next to the network, which a build replaces whole."""
    out = out.resolve()
    return out.with_name(out.name + "-feeds")


def _up_to_date(out: Path, inputs: BuildInputs) -> Manifest | None:
    """The built network if it was built from exactly these inputs; the shifted feeds' paths name
    their shift, so a network built in another week is not."""
    try:
        manifest = read_manifest(out)
    except NetworkError:
        return None
    recorded = sorted(s.path for s in manifest.sources)
    wanted = sorted([*inputs.gtfs, *inputs.gbfs, *([inputs.osm] if inputs.osm else [])])
    return manifest if recorded == wanted else None


def _forget_other_shifts(folder: Path, inputs: BuildInputs) -> None:
    """Remove the shifted copies of earlier weeks once the network no longer uses them."""
    used = {Path(p).parent for p in inputs.gtfs}
    for child in folder.iterdir():
        if child.is_dir() and _SHIFT_FOLDER.fullmatch(child.name) and child not in used:
            shutil.rmtree(child)


def run_demo(out: Path | None, rebuild: bool, console: Console, summary: Console | None = None) -> Manifest:
    """Build (unless an up-to-date one exists) and summarise the demo network; the summary table goes
    to `summary` (default: stdout), everything else to `console`."""
    out = out or default_demo_dir()
    feeds_folder = demo_feeds_dir(out)
    inputs = demo_inputs(feeds_folder)
    manifest = None if rebuild else _up_to_date(out, inputs)
    if manifest is None:
        console.print(f"building the Herrenberg demo network into {out}")
        manifest = build_network(inputs, out, console=console)
        _forget_other_shifts(feeds_folder, inputs)
    else:
        console.print(f"using the demo network in {out} (--rebuild builds it again)")
    c = manifest.counts
    table = Table(title="Herrenberg demo region (VVS timetables, stadtnavi GBFS, OpenStreetMap)")
    table.add_column("what")
    table.add_column("count", justify="right")
    for feed in manifest.feeds:
        table.add_row(
            f"feed {feed.id} ({feed.service_start} .. {feed.service_end}, {Path(feed.source).parent.name})",
            f"{feed.trips} trips / {feed.stop_times} stop times",
        )
    table.add_row("route patterns", str(c.patterns))
    table.add_row("stops snapped to streets", f"{c.stops_snapped} of {c.stops}")
    table.add_row("footpath transfers", str(c.transfers))
    for mode, g in c.streets.items():
        table.add_row(f"{mode} streets", f"{g['nodes']} nodes / {g['edges']} edges")
    table.add_row("sharing", f"{c.sharing['systems']} systems, {c.sharing['stations']} stations")
    (summary or Console()).print(table)
    console.print(f"inspect it with: maas network info {out}")
    _sample_plan(out, console)
    return manifest


def next_weekday_morning(now: dt.datetime, at: dt.time = dt.time(7, 30)) -> dt.datetime:
    """The first Monday-to-Friday `at` (in `now`'s time zone) after `now`."""
    day = now.date()
    while True:
        when = dt.datetime.combine(day, at, tzinfo=now.tzinfo)
        if day.weekday() < 5 and when > now:
            return when
        day += dt.timedelta(days=1)


def _sample_plan(out: Path, console: Console) -> None:
    """A journey a rural rider makes: from Nebringen (no scheduled bus) by Rufbus and S-Bahn to Ehningen,
    on the next weekday morning."""
    from routing.network import load_network
    from routing.ondemand import DriveTimeEstimator, load_service
    from routing.plan import Endpoint, PlanRequest, Router

    network = load_network(out)
    service = demo_region() / "on-demand.toml"
    router = Router(network, DriveTimeEstimator(network, load_service(service)))
    depart = next_weekday_morning(dt.datetime.now(zoneinfo.ZoneInfo(network.manifest.timezone)))
    plan = router.plan(
        PlanRequest(
            origin=Endpoint(lat=48.5627, lon=8.8481),
            destination=Endpoint(lat=48.6582, lon=8.9408),
            depart=depart,
        )
    )
    console.print(f"sample journey, Nebringen -> Ehningen on {depart:%a %Y-%m-%d} from {depart:%H:%M}:")
    for it in plan.itineraries[:3]:
        steps = ", ".join(
            f"{leg.departure:%H:%M} {leg.route_name or leg.mode.replace('_', '-')} to {leg.to.name}" for leg in it.legs
        )
        console.print(f"  {it.departure:%H:%M} -> {it.arrival:%H:%M}: {steps}", highlight=False)
    console.print(
        f"plan your own: maas plan {out} --from 48.5627,8.8481 --to 48.6582,8.9408"
        f" --depart {depart:%Y-%m-%dT%H:%M} --on-demand {service}",
        highlight=False,
    )


DEMO_PLACES = {  # stadtnavi test locations in the region (maas/data/region-herrenberg/od)
    "Herrenberg Bahnhof": (48.5935, 8.8630),
    "Herrenberg Verenaweg": (48.59981, 8.88535),
    "Nebringen": (48.5627, 8.8481),
    "Kuppingen": (48.6113, 8.8430),
}
DEMO_FLEET = (("Rufbus 1", 8, 1), ("Rufbus 2", 8, 1), ("Rufbus 3", 4, 0))


DEMO_OPERATOR_LOGIN = "leitstelle"


class DemoAccess:
    """What `maas demo` prints: where the API is and who may use it."""

    def __init__(self, tokens: dict[str, str], bookings: list[str], operator_password: str) -> None:
        self.tokens = tokens
        self.bookings = bookings
        self.operator_login = DEMO_OPERATOR_LOGIN
        self.operator_password = operator_password


async def _operator_sign_in(conn: Connection, settings: Settings, operator: User) -> str:
    """The demo operator's password for the console: made once and kept in the data folder (readable by its
    owner only), so that each run prints the same one and signed-in dispatchers stay signed in."""
    from maas.db import sessions as session_repo
    from maas.sessions import set_credentials

    kept = settings.data_dir / "demo-operator-password"
    login = await session_repo.find_login(conn, operator.id)
    if login == DEMO_OPERATOR_LOGIN and kept.is_file():
        return kept.read_text().strip()
    password = secrets.token_urlsafe(12)
    await set_credentials(conn, operator, DEMO_OPERATOR_LOGIN, password)
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.touch(mode=0o600)
    kept.write_text(password + "\n")
    return password


async def prepare_service(settings: Settings) -> DemoAccess:
    """Demo users (one per role), a fleet on shift for the next hours and a few bookings; run twice,
    it reuses the users and vehicles and only adds shifts when none covers now."""
    from maas.booking import BookingService, Place, RideWish
    from maas.db import areas, locks
    from maas.db import fleet as fleet_repo
    from maas.db.database import Database
    from maas.db.users import create_user, list_users
    from maas.errors import Conflict
    from maas.model import ServiceRules
    from maas.served import ServedNetwork, Serving
    from maas.sessions import issue_token
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
        # From the next full hour, so that a second run in the same hour asks for the same rides and
        # its Idempotency-Keys find them (a key with another request would be refused).
        base = now.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
        for k, (a, b, seated, wheelchairs, hours) in enumerate(rides):
            wish = RideWish(
                origin=Place(lat=DEMO_PLACES[a][0], lon=DEMO_PLACES[a][1]),
                destination=Place(lat=DEMO_PLACES[b][0], lon=DEMO_PLACES[b][1]),
                seated=seated,
                wheelchairs=wheelchairs,
                earliest_pickup=base + dt.timedelta(hours=hours),
            )
            try:
                booking, _ = await service.book(people["rider"], wish, f"demo-{now:%Y%m%d%H}-{k}")
            except Conflict:
                continue
            booked.append(
                f"{a} -> {b} ({seated} seated, {wheelchairs} wheelchair): pickup "
                f"{booking.pickup_earliest:%H:%M}-{booking.pickup_latest:%H:%M} UTC"
            )
        async with db.pool.acquire() as conn:
            password = await _operator_sign_in(conn, settings, people["operator"])
            tokens = {role: await issue_token(conn, settings, user, issued_by="demo") for role, user in people.items()}
        return DemoAccess(tokens, booked, password)
    finally:
        await db.close()
