"""The `maas` command line: build and inspect networks, validate feeds, run the demo and benchmarks."""

from __future__ import annotations

import datetime as dt
import sys
import zoneinfo
from pathlib import Path

import click
import msgspec
from rich.console import Console
from rich.table import Table

from feeds.gbfs import GbfsError, load_gbfs
from feeds.gtfs import GtfsError, validate_gtfs
from feeds.model import FeedError, ValidationReport
from feeds.osm import OsmError
from routing.builder import BuildError, BuildInputs, build_network
from routing.model import BuildParams, Manifest
from routing.network import NetworkError, read_manifest

_console = Console(stderr=True, soft_wrap=True)
_json = msgspec.json.Encoder()


def _table_console() -> Console:
    """Stdout for tables; piped output gets a wide fixed width so that tables do not wrap."""
    return Console() if sys.stdout.isatty() else Console(width=140)


def _fail(message: str) -> None:
    _console.print(f"[bold red]error:[/] {message}", highlight=False)
    sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="maas")
def main() -> None:
    """maas: on-demand rural mobility - multimodal networks, journey planning, dispatch, booking."""


# --------------------------------------------------------------------------------------------
# maas network


@main.group()
def network() -> None:
    """Build and inspect multimodal networks (streets, timetables, sharing)."""


def _split_feed_arg(value: str) -> tuple[str, str | None]:
    """`ID=path` gives a feed an explicit id; a plain path takes its file name as the id."""
    if "=" in value and not Path(value).exists():
        feed_id, _, path = value.partition("=")
        return path, feed_id
    return value, None


@network.command("build")
@click.option("--osm", type=click.Path(), help="OpenStreetMap extract (.osm.pbf or .osm XML).")
@click.option(
    "--gtfs",
    "gtfs",
    multiple=True,
    metavar="[ID=]PATH",
    help="GTFS feed (zip or directory); repeat for several feeds. ID= sets the feed id.",
)
@click.option("--gbfs", "gbfs", multiple=True, metavar="DIR|URL", help="GBFS system (directory or URL); repeatable.")
@click.option("--out", required=True, type=click.Path(), help="Network directory to write (replaced atomically).")
@click.option(
    "--snap-radius-m",
    type=float,
    default=BuildParams().snap_radius_m,
    show_default=True,
    help="Stops farther than this from any street are reported as unsnapped.",
)
@click.option(
    "--max-transfer-walk-m",
    type=float,
    default=BuildParams().max_transfer_walk_m,
    show_default=True,
    help="Longest walk between two stops offered as a transfer.",
)
@click.option("--walk-speed-mps", type=float, default=BuildParams().walk_speed_mps, show_default=True)
@click.option("--bike-speed-mps", type=float, default=BuildParams().bike_speed_mps, show_default=True)
@click.option(
    "--min-transfer-s",
    type=int,
    default=BuildParams().default_min_transfer_s,
    show_default=True,
    help="Change time at the same stop unless transfers.txt says otherwise.",
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def network_build(
    osm: str | None,
    gtfs: tuple[str, ...],
    gbfs: tuple[str, ...],
    out: str,
    snap_radius_m: float,
    max_transfer_walk_m: float,
    walk_speed_mps: float,
    bike_speed_mps: float,
    min_transfer_s: int,
    quiet: bool,
) -> None:
    """Build a network directory from GTFS feeds, GBFS systems and an OSM extract."""
    for name, value in (
        ("--snap-radius-m", snap_radius_m),
        ("--max-transfer-walk-m", max_transfer_walk_m),
        ("--walk-speed-mps", walk_speed_mps),
        ("--bike-speed-mps", bike_speed_mps),
    ):
        if not value > 0:
            _fail(f"{name} must be positive, got {value}")
    if min_transfer_s < 0:
        _fail(f"--min-transfer-s must not be negative, got {min_transfer_s}")
    split = [_split_feed_arg(v) for v in gtfs]
    inputs = BuildInputs(
        gtfs=[p for p, _ in split],
        gtfs_ids=[i for _, i in split],
        gbfs=list(gbfs),
        osm=osm,
    )
    params = BuildParams(
        walk_speed_mps=walk_speed_mps,
        bike_speed_mps=bike_speed_mps,
        snap_radius_m=snap_radius_m,
        max_transfer_walk_m=max_transfer_walk_m,
        default_min_transfer_s=min_transfer_s,
    )
    try:
        manifest = build_network(inputs, out, params, console=None if quiet else _console)
    except (BuildError, FeedError, NetworkError) as exc:
        _fail(str(exc))
    _print_summary(manifest, out)


def _print_summary(manifest: Manifest, out: str | Path) -> None:
    c = manifest.counts
    _console.print(
        f"[green]built[/] {out}: {c.stops} stops ({c.stops_snapped} snapped, {c.stops_unsnapped} not),"
        f" {c.patterns} patterns, {c.trips} trips, {c.stop_times} stop times, {c.transfers} transfers,"
        f" sharing {c.sharing['systems']} systems / {c.sharing['stations']} stations",
        highlight=False,
    )
    for feed in manifest.feeds:
        if feed.errors or feed.warnings:
            _console.print(
                f"  feed {feed.id}: {feed.errors} errors, {feed.warnings} warnings"
                f" (see `maas feeds validate {feed.source}`)",
                highlight=False,
            )


def network_info_dict(manifest: Manifest) -> dict[str, object]:
    """The stable JSON shape of `maas network info --json` (other tools read these keys)."""
    c = manifest.counts
    return {
        "feeds": [
            {
                "id": f.id,
                "source": f.source,
                "stops": f.stops,
                "routes": f.routes,
                "trips": f.trips,
                "stop_times": f.stop_times,
                "service_start": f.service_start.isoformat() if f.service_start else None,
                "service_end": f.service_end.isoformat() if f.service_end else None,
            }
            for f in manifest.feeds
        ],
        "stops": c.stops,
        "routes": c.routes,
        "patterns": c.patterns,
        "trips": c.trips,
        "stop_times": c.stop_times,
        "streets": c.streets,
        "stops_snapped": c.stops_snapped,
        "stops_unsnapped": c.stops_unsnapped,
        "transfers": c.transfers,
        "sharing": c.sharing,
    }


@network.command("info")
@click.argument("directory", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def network_info(directory: str, as_json: bool) -> None:
    """Summarise a built network: feeds, counts, street graphs, snapping, sharing."""
    try:
        manifest = read_manifest(directory)
    except NetworkError as exc:
        _fail(str(exc))
    info = network_info_dict(manifest)
    if as_json:
        click.echo(msgspec.json.format(_json.encode(info)).decode())
        return
    console = Console()
    table = Table(title=f"network {directory} (built {manifest.created:%Y-%m-%d %H:%M} UTC, tz {manifest.timezone})")
    for col in ("feed", "stops", "routes", "trips", "stop_times", "service"):
        table.add_column(col, justify="right" if col not in ("feed", "service") else "left")
    for f in manifest.feeds:
        table.add_row(
            f.id, str(f.stops), str(f.routes), str(f.trips), str(f.stop_times), f"{f.service_start} .. {f.service_end}"
        )
    console.print(table)
    c = manifest.counts
    console.print(
        f"patterns {c.patterns}, transfers {c.transfers}, stops snapped {c.stops_snapped},"
        f" unsnapped {c.stops_unsnapped}"
    )
    for mode, g in c.streets.items():
        console.print(f"streets {mode}: {g['nodes']} nodes, {g['edges']} edges")
    console.print(f"sharing: {c.sharing}")


# --------------------------------------------------------------------------------------------
# maas plan


def _parse_time(text: str, timezone: str) -> dt.datetime:
    """ISO 8601; a time without an offset is local to the network's time zone."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        _fail(f"{text!r}: give an ISO 8601 time such as 2021-06-15T07:30 or 2021-06-15T07:30+02:00")
    if value.tzinfo is None:
        value = value.replace(tzinfo=zoneinfo.ZoneInfo(timezone))
    return value


@main.command()
@click.argument("directory", type=click.Path())
@click.option("--from", "origin", required=True, help="lat,lon or stop:<feed>:<stop_id>.")
@click.option("--to", "destination", required=True, help="lat,lon or stop:<feed>:<stop_id>.")
@click.option("--depart", default=None, help="ISO 8601 departure time (local to the network without an offset).")
@click.option(
    "--arrive-by",
    "arrive_by",
    default=None,
    help="ISO 8601 arrival deadline instead of --depart: leave as late as possible, arrive by then.",
)
@click.option(
    "--window-min",
    type=int,
    default=None,
    help="With --depart: every useful journey leaving within this many minutes (a range query).",
)
@click.option(
    "--max-walk-m",
    type=float,
    default=1000.0,
    show_default=True,
    help="Longest walk to, from and between stops; 0 gives the pure timetable answer.",
)
@click.option(
    "--min-transfer-s",
    type=int,
    default=None,
    help="Minimum change time at a stop [default: 60, or 0 with --max-walk-m 0].",
)
@click.option("--max-transfers", type=int, default=6, show_default=True)
@click.option("--wheelchair", is_flag=True, help="Only wheelchair-accessible trips and stops (and no bike share).")
@click.option(
    "--no-bike-share",
    "no_bike_share",
    is_flag=True,
    help="No rentals from bike-share stations (offered by default when the network has GBFS bikes).",
)
@click.option(
    "--on-demand",
    "on_demand",
    type=click.Path(),
    default=None,
    help="On-demand service definition (TOML); its rides may start or end a journey.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable itineraries.")
def plan(
    directory: str,
    origin: str,
    destination: str,
    depart: str | None,
    arrive_by: str | None,
    window_min: int | None,
    max_walk_m: float,
    min_transfer_s: int | None,
    max_transfers: int,
    wheelchair: bool,
    no_bike_share: bool,
    on_demand: str | None,
    as_json: bool,
) -> None:
    """Plan journeys on a built network: walking to, between and from stops, transit, bike share, on-demand rides."""
    from routing.network import load_network
    from routing.ondemand import DriveTimeEstimator, ServiceError, load_service
    from routing.plan import Endpoint, PlanError, PlanRequest, Router

    if (depart is None) == (arrive_by is None):
        _fail("give exactly one of --depart and --arrive-by")
    if window_min is not None and (window_min <= 0 or arrive_by):
        _fail("--window-min must be positive and goes with --depart")
    try:
        network_ = load_network(directory)
        rides = DriveTimeEstimator(network_, load_service(on_demand)) if on_demand else None
        request = PlanRequest(
            origin=Endpoint.parse(origin),
            destination=Endpoint.parse(destination),
            depart=_parse_time(depart or arrive_by or "", network_.manifest.timezone),
            max_walk_m=max_walk_m,
            min_transfer_s=min_transfer_s,
            max_transfers=max_transfers,
            wheelchair=wheelchair,
            bike_share=not no_bike_share,
        )
        router = Router(network_, rides)
        if arrive_by:
            result = router.plan_arriving_by(request, request.depart)
        elif window_min is not None:
            result = router.plan_range(request, window_min * 60)
        else:
            result = router.plan(request)
    except (NetworkError, PlanError, ServiceError) as exc:
        _fail(str(exc))
    if as_json:
        click.echo(msgspec.json.format(_json.encode(result)).decode())
        return
    console = Console(soft_wrap=True)
    if not result.itineraries:
        console.print("no journey found (is the date inside the feeds' service periods? see `maas network info`)")
    for n, it in enumerate(result.itineraries, 1):
        console.print(
            f"[bold]{n}. {it.departure:%H:%M} -> {it.arrival:%H:%M}[/], {it.transfers} transfers,"
            f" walk {it.walk_m:.0f} m"
        )
        for leg in it.legs:
            what = {
                "transit": f"{leg.route_name or leg.route}",
                "walk": f"walk {leg.distance_m:.0f} m",
                "bike_share": f"bike share ({leg.system}) {leg.distance_m:.0f} m",
                "on_demand": "on-demand ride",
            }[leg.mode]
            console.print(f"   {leg.departure:%H:%M} {leg.from_.name} -> {leg.arrival:%H:%M} {leg.to.name}: {what}")


# --------------------------------------------------------------------------------------------
# maas feeds


@main.group()
def feeds() -> None:
    """Read and validate the outside world's formats."""


def _gbfs_report(path: str) -> ValidationReport:
    report = ValidationReport(feed_id=Path(path).name, source=path)
    try:
        for system in load_gbfs(path):
            report.findings.extend(system.report.findings)
    except GbfsError as exc:
        report.add("error", "gbfs_unusable", path, str(exc))
    return report


@feeds.command("validate")
@click.argument("path", type=click.Path())
@click.option("--feed-id", help="Feed id (default: the file name without extensions).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report.")
def feeds_validate(path: str, feed_id: str | None, as_json: bool) -> None:
    """Validate a GTFS feed (zip or directory) or a GBFS directory; exit status 1 when it has errors."""
    target = Path(path)
    is_gbfs = target.is_dir() and ((target / "gbfs.json").exists() or (target / "manifest.json").exists())
    if is_gbfs or path.startswith(("http://", "https://")):
        report = _gbfs_report(path)
    else:
        try:
            report = validate_gtfs(path, feed_id)
        except GtfsError as exc:
            report = ValidationReport(feed_id=feed_id or target.name, source=path)
            report.add("error", "unreadable", target.name, str(exc))
    if as_json:
        payload = {
            "feed_id": report.feed_id,
            "source": report.source,
            "valid": report.ok,
            "errors": len(report.errors),
            "warnings": len(report.warnings),
            "findings": report.findings,
        }
        click.echo(msgspec.json.format(_json.encode(payload)).decode())
    else:
        console = Console(soft_wrap=True)
        for finding in report.findings:
            colour = "red" if finding.severity == "error" else "yellow"
            console.print(f"[{colour}]{finding}[/]", highlight=False)
        console.print(f"{report.source}: {len(report.errors)} errors, {len(report.warnings)} warnings")
    sys.exit(0 if report.ok else 1)


# --------------------------------------------------------------------------------------------
# maas demo, maas bench


@main.command()
@click.option("--out", type=click.Path(), help="Where to build the demo network (default: a cache folder).")
@click.option("--rebuild", is_flag=True, help="Build again even if an up-to-date network exists.")
@click.option(
    "--serve/--no-serve",
    default=True,
    show_default=True,
    help="Start the API afterwards (--no-serve only prepares and prints).",
)
@click.option("--port", type=int, default=None, help="Default: MAAS_PORT or 8000.")
def demo(out: str | None, rebuild: bool, serve: bool, port: int | None) -> None:
    """The bundled Herrenberg region: network, database (embedded unless MAAS_DATABASE_URL is set),
    a small Rufbus fleet with demo bookings, then the API with demo tokens for every role."""
    import asyncio
    import os

    from maas.db.database import DatabaseError
    from maas.demo import prepare_service, run_demo
    from maas.settings import Settings, SettingsError

    try:
        manifest_out = Path(out) if out else None
        run_demo(manifest_out, rebuild, _console)
        from maas.demo import default_demo_dir

        network_dir = (manifest_out or default_demo_dir()).resolve()
        os.environ["MAAS_NETWORK_DIR"] = str(network_dir)
        settings = Settings.from_env()
        _console.print("preparing the service (database, fleet, demo bookings) ...")
        access = asyncio.run(prepare_service(settings))
    except (BuildError, FeedError, NetworkError, OsmError, DatabaseError, SettingsError) as exc:
        _fail(str(exc))
    base = f"http://{settings.host}:{port or settings.port}"
    click.echo(f"\nAPI: {base}  (OpenAPI: {base}/schema, health: {base}/health, metrics: {base}/metrics)")
    click.echo(
        "database: "
        + ("MAAS_DATABASE_URL" if settings.database_url else f"embedded PostgreSQL in {settings.data_dir / 'postgres'}")
    )
    click.echo("demo bookings:")
    for line in access.bookings:
        click.echo(f"  {line}")
    click.echo("demo tokens (send as 'Authorization: Bearer <token>'):")
    for role, token in access.tokens.items():
        click.echo(f"  {role}: {token}")
    click.echo(f"try: curl -H 'Authorization: Bearer <rider token>' {base}/bookings")
    if serve:
        import uvicorn

        uvicorn.run(
            "maas.app:app_from_env", factory=True, host=settings.host, port=port or settings.port, log_level="info"
        )


@main.group()
def bench() -> None:
    """Benchmarks that print tables, each with a reference measured in the same run."""


@bench.command("network")
@click.argument("directory", type=click.Path())
@click.option("--loads", type=int, default=20, show_default=True, help="How many times to load the network.")
@click.option("--no-rebuild", is_flag=True, help="Report the recorded build phases instead of building again.")
def bench_network(directory: str, loads: int, no_rebuild: bool) -> None:
    """Build time per phase (rebuilding from the recorded inputs) and load time of a network."""
    from maas.bench import bench_network as run

    try:
        run(Path(directory), loads, not no_rebuild, _table_console())
    except (BuildError, FeedError, NetworkError) as exc:
        _fail(str(exc))


@bench.command("router")
@click.argument("directory", type=click.Path())
@click.option("--queries", type=int, default=1000, show_default=True, help="Random earliest-arrival queries.")
@click.option(
    "--oracle-queries",
    type=int,
    default=50,
    show_default=True,
    help="How many of them also run on the pure-Python oracle (the reference).",
)
@click.option("--seed", type=int, default=1, show_default=True)
def bench_router(directory: str, queries: int, oracle_queries: int, seed: int) -> None:
    """Query times of the RAPTOR kernel (p50/p95/p99) against the oracle, and door-to-door plans."""
    from maas.bench import bench_router as run

    if queries < 1 or oracle_queries < 0:
        _fail("--queries must be at least 1 and --oracle-queries not negative")
    try:
        run(Path(directory), queries, min(oracle_queries, queries), seed, _table_console())
    except NetworkError as exc:
        _fail(str(exc))


@main.group()
def darp() -> None:
    """Dial-a-ride instances in Cordeau's format (the dispatcher's benchmark)."""


@darp.command("solve")
@click.argument("instance", type=click.Path())
@click.option("--time-limit", "time_limit", type=float, default=10.0, show_default=True, help="Seconds to search.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the randomised search.")
@click.option(
    "--workers",
    type=int,
    default=1,
    show_default=True,
    help="Searches side by side (processes, different seeds); the best goes on to OR-Tools "
    "while another search goes on from it.",
)
@click.option("--json", "as_json", is_flag=True, help='Print {"cost", "routes", "feasible"}.')
def darp_solve(instance: str, time_limit: float, seed: int, workers: int, as_json: bool) -> None:
    """Plan every request of INSTANCE with at most its vehicles; routes list node ids, depots omitted."""
    from rich.progress import BarColumn, Progress, TextColumn

    from routing.dispatch.darp import DarpError, read_darp, solve_darp

    try:
        inst = read_darp(instance)
        columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("best {task.fields[best]:.2f}"))
        with Progress(*columns, console=_console, transient=True, disable=not _console.is_terminal) as progress:
            task = progress.add_task(f"{inst.name}: {time_limit:g} s", total=time_limit, best=float("nan"))
            solution = solve_darp(
                inst,
                time_limit,
                seed,
                workers=max(1, workers),
                progress=lambda elapsed, best: progress.update(task, completed=elapsed, best=best),
            )
    except DarpError as exc:
        _fail(str(exc))
    if as_json:
        click.echo(_json.encode(solution).decode())
        return
    state = "feasible" if solution.feasible else "NOT feasible"
    click.echo(f"{inst.name}: cost {solution.cost:.2f}, {len(solution.routes)} routes, {state}")
    for k, route in enumerate(solution.routes):
        click.echo(f"  route {k}: {' '.join(map(str, route))}")
    if not solution.feasible:
        sys.exit(1)


@bench.command("darp")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--time-limit", "time_limit", type=float, default=10.0, show_default=True, help="Seconds per run.")
@click.option("--runs", type=int, default=1, show_default=True, help="Runs per instance (seeds 0..runs-1).")
@click.option("--workers", type=int, default=1, show_default=True, help="Processes per run (see darp solve).")
@click.option("--jobs", type=int, default=None, help="Runs at the same time (default: CPU count / workers).")
def bench_darp(directory: str, time_limit: float, runs: int, workers: int, jobs: int | None) -> None:
    """Solve every instance in DIRECTORY and print mean and worst gaps to its bks.json."""
    from maas.bench_dispatch import bench_darp as run
    from maas.bench_dispatch import default_jobs
    from routing.dispatch.darp import DarpError

    if time_limit <= 0 or runs < 1:
        _fail("--time-limit must be positive and --runs at least 1")
    try:
        run(
            Path(directory),
            time_limit,
            runs,
            max(1, workers),
            jobs or max(1, default_jobs() // max(1, workers)),
            _table_console(),
        )
    except DarpError as exc:
        _fail(str(exc))


@bench.command("dispatch")
@click.argument("directory", type=click.Path())
@click.option("--vehicles", type=int, default=50, show_default=True)
@click.option("--requests", type=int, default=500, show_default=True, help="Rides booked before measuring.")
@click.option("--quotes", type=int, default=500, show_default=True, help="Quotes timed on the booked fleet.")
@click.option(
    "--oracle-quotes",
    type=int,
    default=2,
    show_default=True,
    help="How many of them also run on the pure-Python oracle (the reference).",
)
@click.option(
    "--reoptimize-s", type=float, default=5.0, show_default=True, help="Then re-optimise this long (0: skip)."
)
@click.option("--seed", type=int, default=1, show_default=True)
def bench_dispatch(
    directory: str, vehicles: int, requests: int, quotes: int, oracle_quotes: int, reoptimize_s: float, seed: int
) -> None:
    """Quote (insertion) latency p50/p95/p99 on a booked fleet on DIRECTORY's drive graph, against the oracle."""
    from maas.bench_dispatch import bench_insertion
    from routing.dispatch.darp import DarpError

    if vehicles < 1 or requests < 0 or quotes < 1 or oracle_quotes < 0 or reoptimize_s < 0:
        _fail("--vehicles and --quotes must be at least 1, the others not negative")
    try:
        bench_insertion(
            Path(directory),
            vehicles,
            requests,
            quotes,
            min(oracle_quotes, quotes),
            reoptimize_s,
            seed,
            _table_console(),
        )
    except (NetworkError, DarpError) as exc:
        _fail(str(exc))


@bench.command("api")
@click.argument("network_dir", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--url", default=None, help="A running server (default: start `maas serve` here on the configured database)."
)
@click.option("--admin-token", default=None, help="An admin's bearer token for --url (see `maas user create`).")
@click.option("--workers", type=int, default=1, show_default=True, help="Worker processes of the server started here.")
@click.option("--bookings", type=int, default=1000, show_default=True)
@click.option("--vehicles", type=int, default=50, show_default=True)
@click.option("--positions", type=int, default=20000, show_default=True, help="Positions to ingest (batches of 100).")
@click.option(
    "--concurrency",
    type=int,
    default=8,
    show_default=True,
    help="Requests in flight at once, each on its own keep-alive connection.",
)
@click.option("--seed", type=int, default=1, show_default=True)
def bench_api(
    network_dir: str,
    url: str | None,
    admin_token: str | None,
    workers: int,
    bookings: int,
    vehicles: int,
    positions: int,
    concurrency: int,
    seed: int,
) -> None:
    """Booking throughput and latency, and position ingest, against a server running NETWORK_DIR."""
    import asyncio
    import contextlib
    import os

    import httpx

    from maas.bench_api import BenchError, run_bench
    from maas.serving import ServeError, running_server

    if bookings < 1 or vehicles < 1 or positions < 0 or concurrency < 1:
        _fail("--bookings, --vehicles and --concurrency must be at least 1, --positions not negative")
    if (url is None) != (admin_token is None):
        _fail("--url and --admin-token go together")
    try:
        with contextlib.ExitStack() as stack:
            if url is None:
                from maas.auth import issue_token
                from maas.db.users import create_user

                async def admin(db):
                    async with db.pool.acquire() as conn:
                        return await create_user(conn, "bench admin", "admin")

                os.environ["MAAS_NETWORK_DIR"] = str(Path(network_dir).resolve())
                os.environ.setdefault("MAAS_RATE_LIMIT_PER_MINUTE", "100000000")
                settings, created = _with_database(admin)
                admin_token = issue_token(settings, created)
                url = stack.enter_context(running_server(os.environ, workers))
            asyncio.run(
                run_bench(
                    url,
                    admin_token,
                    Path(network_dir),
                    bookings,
                    vehicles,
                    positions,
                    concurrency,
                    seed,
                    _table_console(),
                )
            )
    except (BenchError, ServeError, NetworkError, httpx.HTTPError) as exc:
        _fail(str(exc))


@main.group()
def user() -> None:
    """Users and API tokens (the first admin is created here)."""


def _with_database(work):
    import asyncio

    from maas.db.database import Database, DatabaseError
    from maas.settings import Settings, SettingsError

    async def run():
        settings = Settings.from_env()
        db = await Database.open(settings, min_size=1, max_size=2)
        try:
            return settings, await work(db)
        finally:
            await db.close()

    try:
        return asyncio.run(run())
    except (DatabaseError, SettingsError) as exc:
        _fail(str(exc))


@user.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["rider", "driver", "operator", "agency", "admin"]), required=True)
@click.option("--phone", default=None)
@click.option("--agency", default=None, help="The agency an agency user publishes for.")
@click.option("--json", "as_json", is_flag=True, help="Print {user, token} as JSON.")
def user_create(name: str, role: str, phone: str | None, agency: str | None, as_json: bool) -> None:
    """Create a user in the database of MAAS_DATABASE_URL (or the embedded one) and print a bearer token."""
    from maas.auth import issue_token
    from maas.db.users import create_user

    if role == "agency" and not agency:
        _fail("an agency user needs --agency")

    async def work(db):
        async with db.pool.acquire() as conn:
            return await create_user(conn, name, role, phone, agency)

    settings, created = _with_database(work)
    token = issue_token(settings, created)
    if as_json:
        click.echo(
            _json.encode(
                {"user": {"id": str(created.id), "name": created.name, "role": created.role}, "token": token}
            ).decode()
        )
    else:
        click.echo(f"{created.role} {created.name}: {created.id}\ntoken: {token}")


@user.command("token")
@click.argument("user_id")
def user_token(user_id: str) -> None:
    """Print a new bearer token for an existing user."""
    import uuid

    from maas.auth import issue_token
    from maas.db.users import find_user

    try:
        wanted = uuid.UUID(user_id)
    except ValueError:
        _fail(f"{user_id!r} is not a user id (a UUID)")

    async def work(db):
        async with db.pool.acquire() as conn:
            return await find_user(conn, wanted)

    settings, found = _with_database(work)
    if found is None:
        _fail(f"no user {user_id}")
    click.echo(issue_token(settings, found))


@main.command()
@click.option(
    "--network", "network_dir", type=click.Path(), default=None, help="Network directory (default: MAAS_NETWORK_DIR)."
)
@click.option("--host", default=None, help="Default: MAAS_HOST or 127.0.0.1.")
@click.option("--port", type=int, default=None, help="Default: MAAS_PORT or 8000.")
@click.option("--workers", type=int, default=1, show_default=True, help="API worker processes.")
def serve(network_dir: str | None, host: str | None, port: int | None, workers: int) -> None:
    """Run the API (uvicorn) on MAAS_DATABASE_URL, or an embedded PostgreSQL when it is unset."""
    import os

    import uvicorn

    if network_dir is not None:
        if not Path(network_dir, "manifest.json").exists():
            _fail(f"{network_dir}: not a network directory (build one with `maas network build`)")
        os.environ["MAAS_NETWORK_DIR"] = str(Path(network_dir).resolve())
    from maas.settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        _fail(str(exc))
    uvicorn.run(
        "maas.app:app_from_env",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level="info",
    )


if __name__ == "__main__":
    main()
