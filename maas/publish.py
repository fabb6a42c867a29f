"""Which network a process serves: publishing a feed version builds a new network in the background
and swaps it in; an earlier network can be activated again (rollback).

Every network lives in its own directory (data_dir/networks/<id>) and is never changed after its
build, so a swap is only the replacement of one ServedNetwork (router, fleet drive graph, snapping)
by another: requests in flight keep the one they started with. The database says which network is
active; every process follows it. A network built on publishing holds the streets, the sharing
systems and the current version of every feed of the served network, with the published one
replacing its earlier version.
After a publish, the directories of networks older than the MAAS_KEEP_NETWORKS newest are deleted
(the active one's never); those networks stay listed as 'pruned' and cannot be activated again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Coroutine
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

from feeds.gtfs import read_stop_positions
from maas.background import end_tasks
from maas.db import Connection, audit, locks
from maas.db.database import Database
from maas.db.feeds import find_version, get_content, list_published, mark_published, set_status
from maas.db.networks import (
    activate_network,
    create_network,
    find_active_network,
    find_network,
    find_network_by_directory,
    finish_network,
    list_built_networks,
    list_networks,
    mark_pruned,
    set_directory,
)
from maas.errors import Conflict, Invalid, MaasError, NotFound
from maas.model import FeedVersion, NetworkFeed, NetworkVersion, User
from maas.served import REGION_RADIUS_M, ServedNetwork, Serving
from maas.settings import Settings
from routing.builder import BuildInputs, build_network
from routing.model import BuildParams, Manifest
from routing.network import read_manifest
from routing.ondemand import OnDemandService, load_service

log = logging.getLogger(__name__)

# How often a process checks whether another one activated a different network.
FOLLOW_INTERVAL_S = 5.0
PUBLISHABLE = ("uploaded", "retired", "failed")
# A build holds the GIL for seconds at a time (OSM parsing): in a thread it would stall every request of
# the process, so it runs in a child process. Spawned, not forked: forking a threaded server can copy
# locks held by other threads.
_BUILD_CONTEXT = multiprocessing.get_context("spawn")


class PublishError(MaasError):
    """A network that cannot be built as configured; the message says what to set."""


def can_see(user: User, version: FeedVersion) -> bool:
    """Admins see every feed version, an agency only its own."""
    return user.role == "admin" or (user.role == "agency" and user.agency == version.agency)


class NetworkService:
    """The ServedNetwork of the active network, and the builds and activations that replace it."""

    def __init__(self, settings: Settings, db: Database, serving: Serving) -> None:
        self.settings = settings
        self.db = db
        self.serving = serving
        # Ride-time rules of on-demand legs in journey plans; their area is the database's.
        self._rides = (
            load_service(settings.service_file)
            if settings.service_file is not None
            else OnDemandService(name="on-demand", area={})
        )
        self.network_id: int | None = None
        self._serving = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    async def open(cls, settings: Settings, db: Database, serving: Serving | None = None) -> NetworkService:
        """Register the configured network, serve the active one and follow later activations."""
        service = cls(settings, db, serving or Serving())
        async with service._network_lock() as conn:
            active = await service._register_configured(conn)
            # Nobody holds the lock, so no build runs anywhere: a version still 'publishing' was cut off.
            await conn.execute(
                "UPDATE feed_versions SET status = 'failed', error = $1 WHERE status = 'publishing'",
                "the build was interrupted (the service stopped); publish again",
            )
        if active is not None:
            await service._serve(await asyncio.to_thread(service._load, active.id, active.directory))
        service._spawn(service._follow())
        return service

    async def close(self) -> None:
        await end_tasks(list(self._tasks), "publishing")

    # -- what is served -----------------------------------------------------------------------

    def _load(self, network_id: int, directory: str | Path) -> ServedNetwork:
        """Everything served from a built network (slow: run in a worker thread)."""
        return ServedNetwork.load(network_id, Path(directory), self._rides)

    async def _serve(self, served: ServedNetwork) -> None:
        self.serving.current = served
        self.network_id = served.id
        log.info("serving network %s", served.id)

    async def _register_configured(self, conn: Connection) -> NetworkVersion | None:
        """The network to serve. A configured directory (`maas serve --network`, MAAS_NETWORK_DIR) that is
        new to the database, or was rebuilt since it was registered, is registered and activated: every
        process then serves it. One already registered as it is stays a version among others, and the
        active network is served (one published on top of it, or one an operator activated).
        """
        active = await find_active_network(conn)
        if self.settings.network_dir is None:
            return active
        directory = str(Path(self.settings.network_dir).resolve())
        configured = await find_network_by_directory(conn, directory)
        manifest = read_manifest(directory)
        if configured is not None and configured.built_at is not None and manifest.created > configured.built_at:
            configured = None  # rebuilt in place since: a new network
        async with conn.transaction():
            if configured is None:
                configured = await create_network(
                    conn,
                    directory=directory,
                    status="built",
                    created_by=None,
                    feeds=[NetworkFeed(feed_id=f.id) for f in manifest.feeds],
                    osm=next((s.path for s in manifest.sources if s.kind == "osm"), None),
                )
                log.info("serving %s (network %s), as configured", directory, configured.id)
                return await activate_network(conn, configured.id)
            if active is None:
                return await activate_network(conn, configured.id)
        if active.id != configured.id:
            log.warning(
                "serving the active network %s, not %s of MAAS_NETWORK_DIR (network %s);"
                " POST /networks/%s/activate to serve that",
                active.id,
                directory,
                configured.id,
                configured.id,
            )
        return active

    async def _follow(self) -> None:
        """Serve what another process activated."""
        while True:
            await asyncio.sleep(FOLLOW_INTERVAL_S)
            try:
                async with self.db.pool.acquire() as conn:
                    active = await find_active_network(conn)
                if active is None or active.id == self.network_id:
                    continue
                served = await asyncio.to_thread(self._load, active.id, active.directory)
                async with self._serving:
                    async with self.db.pool.acquire() as conn:
                        still = await find_active_network(conn)
                    if still is not None and still.id == active.id and self.network_id != active.id:
                        await self._serve(served)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bad directory must not stop the process following later activations
                log.exception("cannot follow the active network")

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @contextlib.asynccontextmanager
    async def _network_lock(self) -> AsyncIterator[Connection]:
        # Held while a network is built or activated: builds run one after the other in every
        # process, each on the feeds the previous one published.
        async with self.db.pool.acquire() as conn, locks.holding(conn, locks.NETWORKS):
            yield conn

    # -- publishing ---------------------------------------------------------------------------

    async def publish(self, user: User, version_id: uuid.UUID) -> FeedVersion:
        """Mark a valid version 'publishing' and start building a network with it; returns at once."""
        async with self.db.pool.acquire() as conn, conn.transaction():
            version = await find_version(conn, version_id, for_update=True)
            if version is None or not can_see(user, version):
                raise NotFound(f"no feed version {version_id}")
            errors = version.report.errors
            if version.status == "rejected" or errors:
                raise Invalid(
                    f"feed version {version_id} has {len(errors)} validation errors; fix them and upload again"
                )
            if version.status not in PUBLISHABLE:
                raise Conflict(f"feed version {version_id} is {version.status}", state=version.status)
            await self._check_region(conn, version)
            version = await set_status(conn, version_id, "publishing")
            await audit.record(
                conn, user.id, "publish_feed", str(version_id), {"agency": version.agency, "feed_id": version.feed_id}
            )
        self._spawn(self._publish(version, user.id))
        return version

    async def _check_region(self, conn: Connection, version: FeedVersion) -> None:
        """Refuse a feed none of whose stops lies near the served network's streets: built in, it
        would serve nobody (no journey reaches its stops on foot)."""
        served = self.serving.current
        if served is None:
            return
        path = await self._feed_file(conn, version)
        lat, lon = await asyncio.to_thread(read_stop_positions, path)
        near = await asyncio.to_thread(served.stops_near_streets, lat, lon)
        if near is None or not len(lat) or near > 0:
            return
        raise Invalid(
            f"feed {version.feed_id}: none of its {len(lat)} stops lies within {REGION_RADIUS_M / 1000:.0f} km"
            f" of the streets of the served network ({served.streets_extent()}); it belongs to another region"
        )

    def _osm_file(self, base: Manifest | None) -> Path:
        """The streets of networks built here: MAAS_OSM_FILE, else those of the network being served."""
        if self.settings.osm_file is not None:
            return Path(self.settings.osm_file)
        for manifest in (base, read_manifest(self.settings.network_dir) if self.settings.network_dir else None):
            for source in manifest.sources if manifest is not None else []:
                if source.kind == "osm":
                    return Path(source.path)
        raise PublishError("no OSM extract to build the street network from: set MAAS_OSM_FILE")

    async def _members(
        self, conn: Connection, version: FeedVersion
    ) -> tuple[list[tuple[NetworkFeed, Path]], Manifest | None]:
        """Every feed of the active network (an uploaded one by its stored version, one configured with
        MAAS_NETWORK_DIR by its file) with `version` in place of its feed's earlier one, and the
        active network's manifest."""
        active = await find_active_network(conn)
        base = read_manifest(active.directory) if active is not None and Path(active.directory).is_dir() else None
        files = {s.id: Path(s.path) for s in base.sources if s.kind == "gtfs" and s.id} if base is not None else {}
        published = {v.id: v for v in await list_published(conn)}
        members: list[tuple[NetworkFeed, Path]] = []
        for feed in active.feeds if active is not None else []:
            if feed.feed_id == version.feed_id:
                continue
            uploaded = published.get(feed.version_id) if feed.version_id is not None else None
            if uploaded is not None:
                members.append((feed, await self._feed_file(conn, uploaded)))
            elif feed.version_id is None and feed.feed_id in files:
                members.append((feed, files[feed.feed_id]))
            else:
                raise PublishError(f"feed {feed.feed_id} of network {active.id if active else '?'} has no source")
        this = NetworkFeed(feed_id=version.feed_id, version_id=version.id, agency=version.agency)
        members.append((this, await self._feed_file(conn, version)))
        return members, base

    async def _feed_file(self, conn: Connection, version: FeedVersion) -> Path:
        """The version's zip on disk (written once from the database)."""
        path = Path(self.settings.data_dir) / "feeds" / f"{version.id}.gtfs.zip"
        if not path.exists():
            content = await get_content(conn, version.id)
            await asyncio.to_thread(_write_atomically, path, content)
        return path

    async def _publish(self, version: FeedVersion, actor: uuid.UUID) -> None:
        started = time.perf_counter()
        network: NetworkVersion | None = None
        try:
            async with self._network_lock() as conn:
                started = time.perf_counter()
                members, base = await self._members(conn, version)
                osm = self._osm_file(base)
                network = await create_network(
                    conn,
                    directory="",
                    status="building",
                    osm=str(osm),
                    created_by=actor,
                    feeds=[feed for feed, _ in members],
                )
                out = self._networks_dir() / str(network.id)
                await set_directory(conn, network.id, str(out))
                params = base.params if base is not None else BuildParams()
                # Bike share configured for the region stays in every network built from it.
                gbfs = [s.path for s in base.sources if s.kind == "gbfs"] if base is not None else []
                inputs = BuildInputs(
                    gtfs=[str(path) for _, path in members],
                    gtfs_ids=[feed.feed_id for feed, _ in members],
                    gbfs=gbfs,
                    osm=str(osm),
                )
                await _build_in_child(inputs, out, params)
                served = await asyncio.to_thread(self._load, network.id, out)
                seconds = time.perf_counter() - started
                async with self._serving:
                    async with conn.transaction():
                        await finish_network(conn, network.id, "built", None, seconds)
                        await activate_network(conn, network.id)
                        await mark_published(conn, [f.version_id for f, _ in members if f.version_id is not None])
                        await audit.record(
                            conn,
                            actor,
                            "feed_published",
                            str(version.id),
                            {"network": network.id, "build_seconds": round(seconds, 1)},
                        )
                    await self._serve(served)
        except asyncio.CancelledError:
            await asyncio.shield(
                self._failed(version, actor, network, "the build was interrupted (the service stopped)", started)
            )
            raise
        except Exception as exc:
            log.exception("publishing feed version %s failed", version.id)
            await self._failed(version, actor, network, f"{type(exc).__name__}: {exc}", started)
        else:
            try:
                await self.prune(actor)
            except Exception:  # the version is published; only disk space is at stake
                log.exception("cannot prune old networks after publishing feed version %s", version.id)

    async def _failed(
        self, version: FeedVersion, actor: uuid.UUID, network: NetworkVersion | None, error: str, started: float
    ) -> None:
        async with self.db.pool.acquire() as conn, conn.transaction():
            if network is not None:
                await finish_network(conn, network.id, "failed", error, time.perf_counter() - started)
            await set_status(conn, version.id, "failed", error)
            await audit.record(conn, actor, "feed_publish_failed", str(version.id), {"error": error})

    # -- networks -----------------------------------------------------------------------------

    async def list_networks(self) -> list[NetworkVersion]:
        async with self.db.pool.acquire() as conn:
            return await list_networks(conn)

    async def activate(self, user: User, network_id: int) -> NetworkVersion:
        """Serve an earlier (or later) built network again; its feed versions become the published ones."""
        async with self._network_lock() as conn:
            network = await find_network(conn, network_id)
            if network is None:
                raise NotFound(f"no network {network_id}")
            if network.status == "pruned":
                raise Conflict(
                    f"network {network_id} was pruned at {network.pruned_at:%Y-%m-%d %H:%M} UTC:"
                    " its directory was deleted to save disk space (MAAS_KEEP_NETWORKS sets how many"
                    " networks are kept); publish its feed versions again to build it anew",
                    state=network.status,
                )
            if network.status != "built":
                raise Conflict(f"network {network_id} is {network.status}, not built", state=network.status)
            if not Path(network.directory).is_dir():
                raise Conflict(f"network {network_id}: its directory {network.directory} is gone")
            served = await asyncio.to_thread(self._load, network.id, network.directory)
            async with self._serving:
                async with conn.transaction():
                    previous = await find_active_network(conn)
                    network = await activate_network(conn, network_id)
                    await mark_published(conn, [f.version_id for f in network.feeds if f.version_id is not None])
                    await audit.record(
                        conn,
                        user.id,
                        "activate_network",
                        str(network_id),
                        {"previous": previous.id if previous is not None else None},
                    )
                await self._serve(served)
        return network

    # -- retention ----------------------------------------------------------------------------

    def _networks_dir(self) -> Path:
        return Path(self.settings.data_dir).resolve() / "networks"

    async def prune(self, actor: uuid.UUID) -> list[NetworkVersion]:
        """Delete the directories of networks built here except the `keep_networks` newest and the active one,
        marking them 'pruned'; returns those pruned. Every successful publish does this."""
        async with self._network_lock() as conn:
            return await self._prune(conn, actor)

    async def _prune(self, conn: Connection, actor: uuid.UUID) -> list[NetworkVersion]:
        root = self._networks_dir()
        # Only directories this service built: MAAS_NETWORK_DIR belongs to whoever configured it.
        ours = [n for n in await list_built_networks(conn) if Path(n.directory).parent == root]
        doomed = [n.id for n in ours[self.settings.keep_networks :] if not n.active]
        if not doomed:
            return []
        async with conn.transaction():
            pruned = await mark_pruned(conn, doomed)
            if pruned:
                await audit.record(
                    conn,
                    actor,
                    "prune_networks",
                    None,
                    {"networks": [n.id for n in pruned], "keep": self.settings.keep_networks},
                )
        # Marked first: a directory is never activated while it is being deleted. A process still serving
        # one of them keeps working, as its arrays are memory-mapped and outlive the files.
        for network in pruned:
            await asyncio.to_thread(shutil.rmtree, network.directory, ignore_errors=True)
            if Path(network.directory).exists():
                log.warning(
                    "network %s is pruned but its directory %s could not be deleted", network.id, network.directory
                )
        if pruned:
            log.info("pruned networks %s", [n.id for n in pruned])
        return pruned


async def _build_in_child(inputs: BuildInputs, out: Path, params: BuildParams) -> None:
    """build_network in a new child process; its exception, if any, is raised here. When the
    publish is cancelled (the service stops), the child is ended at once instead of finishing
    a network that nobody will serve."""
    # One process per build: the memory a build takes goes back to the system when it ends.
    receive, send = _BUILD_CONTEXT.Pipe(duplex=False)
    child = _BUILD_CONTEXT.Process(target=_build_and_report, args=(inputs, out, params, send), name="maas-build")
    child.start()
    send.close()
    try:
        outcome = await asyncio.to_thread(_outcome_of, receive, child)
    except asyncio.CancelledError:
        child.terminate()  # the waiting thread then reads the end of the pipe and returns
        raise
    if outcome is not None:
        raise outcome


def _build_and_report(inputs: BuildInputs, out: Path, params: BuildParams, send: Pipe) -> None:
    """In the child: build, then send None or the exception."""
    try:
        build_network(inputs, out, params)
    except BaseException as exc:  # noqa: BLE001 - whatever it is, the parent reports it as the publish's error
        try:
            send.send(exc)
        except Exception:  # noqa: BLE001 - an exception that does not pickle is sent as text
            send.send(RuntimeError(f"{type(exc).__name__}: {exc}"))
    else:
        send.send(None)
    finally:
        send.close()


def _outcome_of(receive: Pipe, child: multiprocessing.process.BaseProcess) -> BaseException | None:
    """Wait (in a thread) for the child's report; a child that died without one is an error too."""
    with receive:
        try:
            outcome: BaseException | None = receive.recv()
        except EOFError:
            child.join()
            return RuntimeError(f"the network build process ended without a result (exit code {child.exitcode})")
    child.join()
    return outcome


def _write_atomically(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(content)
    tmp.replace(path)
