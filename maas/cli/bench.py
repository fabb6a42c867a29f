"""`maas bench ...`: a thin group over the benchmarks in maas/bench/ (each imported when it runs)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from feeds.model import FeedError
from maas.cli.common import fail, table_console, with_connection
from routing.builder import BuildError
from routing.network import NetworkError

if TYPE_CHECKING:
    import contextlib

    from maas.db import Connection
    from maas.settings import Settings


@click.group()
def bench() -> None:
    """Benchmarks that print tables, each with a reference measured in the same run."""


@bench.command("network")
@click.argument("directory", type=click.Path())
@click.option("--loads", type=int, default=20, show_default=True, help="How many times to load the network.")
@click.option("--no-rebuild", is_flag=True, help="Report the recorded build phases instead of building again.")
def bench_network(directory: str, loads: int, no_rebuild: bool) -> None:
    """Build time per phase (rebuilding from the recorded inputs) and load time of a network."""
    from maas.bench.network import bench_network as run

    try:
        run(Path(directory), loads, not no_rebuild, table_console())
    except (BuildError, FeedError, NetworkError) as exc:
        fail(str(exc))


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
    from maas.bench.router import bench_router as run

    if queries < 1 or oracle_queries < 0:
        fail("--queries must be at least 1 and --oracle-queries not negative")
    try:
        run(Path(directory), queries, min(oracle_queries, queries), seed, table_console())
    except NetworkError as exc:
        fail(str(exc))


@bench.command("realtime")
@click.argument("directory", type=click.Path())
@click.argument("message", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--feed", "feed_id", required=True, help="The GTFS feed id of the network the message is for.")
@click.option("--queries", type=int, default=200, show_default=True, help="Plans timed without and with the overlay.")
@click.option("--seed", type=int, default=1, show_default=True)
def bench_realtime(directory: str, message: Path, feed_id: str, queries: int, seed: int) -> None:
    """Time applying a GTFS-Realtime message (trip updates, at its own header time) to DIRECTORY against building
    a Raptor of the timetable alone, then plans between the stops of its retimed runs without and with it."""
    from maas.bench.api import BenchError
    from maas.bench.realtime import bench_realtime as run

    if queries < 0:
        fail("--queries must not be negative")
    try:
        run(Path(directory), message, feed_id, queries, seed, table_console())
    except (BenchError, FeedError, NetworkError) as exc:
        fail(str(exc))


@bench.command("darp")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--time-limit", "time_limit", type=float, default=10.0, show_default=True, help="Seconds per run.")
@click.option("--runs", type=int, default=1, show_default=True, help="Runs per instance (seeds 0..runs-1).")
@click.option("--workers", type=int, default=1, show_default=True, help="Processes per run (see darp solve).")
@click.option("--jobs", type=int, default=None, help="Runs at the same time (default: CPU count / workers).")
def bench_darp(directory: str, time_limit: float, runs: int, workers: int, jobs: int | None) -> None:
    """Solve every instance in DIRECTORY and print mean and worst gaps to its bks.json."""
    from maas.bench.darp import bench_darp as run
    from maas.bench.darp import default_jobs
    from routing.dispatch.darp import DarpError

    if time_limit <= 0 or runs < 1:
        fail("--time-limit must be positive and --runs at least 1")
    try:
        run(
            Path(directory),
            time_limit,
            runs,
            max(1, workers),
            jobs or max(1, default_jobs() // max(1, workers)),
            table_console(),
        )
    except DarpError as exc:
        fail(str(exc))


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
    from maas.bench.dispatch import bench_quotes
    from routing.dispatch.darp import DarpError

    if vehicles < 1 or requests < 0 or quotes < 1 or oracle_quotes < 0 or reoptimize_s < 0:
        fail("--vehicles and --quotes must be at least 1, the others not negative")
    try:
        bench_quotes(
            Path(directory),
            vehicles,
            requests,
            quotes,
            min(oracle_quotes, quotes),
            reoptimize_s,
            seed,
            table_console(),
        )
    except (NetworkError, DarpError) as exc:
        fail(str(exc))


@bench.command("plan")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--vehicles", type=int, default=20, show_default=True, help="Vehicles on shift 06:00-22:00.")
@click.option("--booked", type=int, default=300, show_default=True, help="Rides booked before measuring.")
@click.option("--plans", type=int, default=200, show_default=True, help="Door-to-door requests timed.")
@click.option(
    "--area",
    "area_file",
    type=click.Path(exists=True, dir_okay=False),
    help="GeoJSON of the service area (default: the bundled Herrenberg region's).",
)
@click.option("--seed", type=int, default=1, show_default=True)
def bench_plan(directory: str, vehicles: int, booked: int, plans: int, area_file: str | None, seed: int) -> None:
    """Door-to-door plans with live on-demand offers of a booked fleet against the same requests
    without on-demand rides (p50/p95/p99 and the ratio), on DIRECTORY's busiest service day."""
    from maas.bench.plan import bench_plan as run

    if vehicles < 1 or booked < 0 or plans < 1:
        fail("--vehicles and --plans must be at least 1, --booked not negative")
    try:
        run(Path(directory), vehicles, booked, plans, Path(area_file) if area_file else None, seed, table_console())
    except NetworkError as exc:
        fail(str(exc))


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

    import httpx

    from maas.bench.api import BenchError
    from maas.bench.api import bench_api as run
    from maas.bench.server import ServeError
    from maas.settings import SettingsError

    if bookings < 1 or vehicles < 1 or positions < 0 or concurrency < 1:
        fail("--bookings, --vehicles and --concurrency must be at least 1, --positions not negative")
    try:
        with contextlib.ExitStack() as stack:
            url, admin_token, _ = _served(stack, network_dir, url, admin_token, workers)
            asyncio.run(
                run(
                    url,
                    admin_token,
                    Path(network_dir),
                    bookings,
                    vehicles,
                    positions,
                    concurrency,
                    seed,
                    table_console(),
                )
            )
    except (BenchError, ServeError, NetworkError, SettingsError, httpx.HTTPError) as exc:
        fail(str(exc))


def _served(
    stack: contextlib.ExitStack, network_dir: str, url: str | None, admin_token: str | None, workers: int
) -> tuple[str, str, Settings]:
    """(URL, admin token, settings) of the server to benchmark: the one at `url`, or `maas serve` started
    here on NETWORK_DIR and the configured database (stopped with `stack`), with every rate limit raised
    unless the environment sets it. The settings are this process's, for reading the database."""
    import os

    from maas.bench.server import running_server
    from maas.settings import Settings

    if (url is None) != (admin_token is None):
        fail("--url and --admin-token go together")
    if url is not None and admin_token is not None:
        return url, admin_token, Settings.from_env(os.environ)
    from maas.db.users import create_user
    from maas.sessions import issue_token

    async def admin(conn: Connection) -> str:
        return await issue_token(conn, settings, await create_user(conn, "bench admin", "admin"))

    # The server is a child process configured by its environment; this process reads its settings
    # (database, signing secret) from the same mapping, so both agree.
    limits = {
        f"MAAS_{name.upper()}": "100000000" for name in Settings.__struct_fields__ if name.startswith("rate_limit")
    }
    env = {**limits, **os.environ, "MAAS_NETWORK_DIR": str(Path(network_dir).resolve())}
    settings = Settings.from_env(env)
    admin_token = with_connection(settings, admin)
    return stack.enter_context(running_server(env, workers)), admin_token, settings


@bench.command("load")
@click.argument("network_dir", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--url",
    default=None,
    help="A running server (default: start `maas serve` here); MAAS_DATABASE_URL must then name its database.",
)
@click.option("--admin-token", default=None, help="An admin's bearer token for --url (see `maas user create`).")
@click.option("--workers", type=int, default=2, show_default=True, help="Worker processes of the server started here.")
@click.option("--attempts", type=int, default=10000, show_default=True, help="Booking requests sent under load.")
@click.option("--clients", type=int, default=200, show_default=True, help="Clients booking at once, one rider each.")
@click.option("--vehicles", type=int, default=4, show_default=True)
@click.option("--seats", type=int, default=3, show_default=True, help="Seats of each vehicle (and 1 wheelchair place).")
@click.option("--window-min", type=float, default=60.0, show_default=True, help="Length of the shifts from now.")
@click.option(
    "--retry-share",
    type=float,
    default=0.2,
    show_default=True,
    help="Share of requests repeating an earlier one's Idempotency-Key: half after its answer, half at once.",
)
@click.option("--lone", type=int, default=50, show_default=True, help="Bookings one at a time after the load.")
@click.option("--timeout-s", type=float, default=60.0, show_default=True, help="A request unanswered by then fails.")
@click.option("--seed", type=int, default=1, show_default=True)
def bench_load(
    network_dir: str,
    url: str | None,
    admin_token: str | None,
    workers: int,
    attempts: int,
    clients: int,
    vehicles: int,
    seats: int,
    window_min: float,
    retry_share: float,
    lone: int,
    timeout_s: float,
    seed: int,
) -> None:
    """Many riders booking scarce seats at once with retried Idempotency-Keys: answers with p50/p95/p99
    latency against GET /health under the same load and bookings one at a time, then what the database
    holds (no seat overbooked, no key booked twice, no confirmation lost). Exits 1 when a check fails."""
    import asyncio
    import contextlib
    import sys

    import httpx

    from maas.bench.api import BenchError
    from maas.bench.load import Load, integrity, report
    from maas.bench.load import bench_load as run
    from maas.bench.server import ServeError
    from maas.settings import SettingsError

    if attempts < 1 or clients < 1 or vehicles < 1 or seats < 1 or lone < 1 or window_min < 20 or timeout_s <= 0:
        fail("--attempts, --clients, --vehicles, --seats and --lone must be at least 1, --window-min at least 20")
    if not 0 <= retry_share <= 0.5:
        fail("--retry-share must be between 0 and 0.5 (each retry repeats a request sent once)")
    load = Load(
        attempts=attempts,
        clients=clients,
        vehicles=vehicles,
        seats=seats,
        window_min=window_min,
        retry_share=retry_share,
        lone=lone,
        timeout_s=timeout_s,
        seed=seed,
    )
    console = table_console()
    try:
        with contextlib.ExitStack() as stack:
            url, admin_token, settings = _served(stack, network_dir, url, admin_token, workers)
            result = asyncio.run(run(url, admin_token, Path(network_dir), load, console))
    except (BenchError, ServeError, NetworkError, SettingsError, httpx.HTTPError) as exc:
        fail(str(exc))
    checks = with_connection(settings, lambda conn: integrity(conn, result))
    if not report(result, checks, console):
        sys.exit(1)
