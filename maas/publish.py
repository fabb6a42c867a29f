"""Which network a process serves: publishing a feed version builds a new network in the background
and swaps it in; an earlier network can be activated again (rollback).

Every network lives in its own directory (data_dir/networks/<id>) and is never changed after its
build, so a swap is only the replacement of one Router object by another: requests in flight keep
the Router they started with. The database says which network is active; every process follows it.
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
from collections.abc import AsyncIterator, Callable, Coroutine
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import asyncpg

from maas.db import audit
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
from maas.errors import Conflict, Invalid, NotFound
from maas.model import FeedVersion, NetworkFeed, NetworkVersion, User
from maas.settings import Settings
from routing.builder import BuildInputs, build_network
from routing.model import BuildParams, Manifest
from routing.network import load_network, read_manifest
from routing.plan import Router

log = logging.getLogger(__name__)

# Any fixed number: held while a network is built or activated, so that builds run one after the
# other (each sees the feeds the previous one published) in every process.
NETWORK_LOCK = 7_301_002
# How often a process checks whether another one activated a different network.
FOLLOW_INTERVAL_S = 5.0
PUBLISHABLE = ("uploaded", "retired", "failed")
# A build holds the GIL for seconds at a time (OSM parsing): in a thread it would stall every request of
# the process, so it runs in a child process. Spawned, not forked: forking a threaded server can copy
# locks held by other threads.
_BUILD_CONTEXT = multiprocessing.get_context("spawn")


class PublishError(Exception):
    """A network that cannot be built as configured; the message says what to set."""


def can_see(user: User, version: FeedVersion) -> bool:
    """Admins see every feed version, an agency only its own."""
    return user.role == "admin" or (user.role == "agency" and user.agency == version.agency)


class NetworkService:
    """The Router of the active network, and the builds and activations that replace it."""

    def __init__(self, settings: Settings, db: Database, swap: Callable[[Router], None]) -> None:
        self.settings = settings
        self.db = db
        self._swap = swap
        self.router: Router | None = None
        self.network_id: int | None = None
        self._serving = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    async def open(cls, settings: Settings, db: Database, swap: Callable[[Router], None]) -> NetworkService:
        """Register the configured network, serve the active one and follow later activations."""
        service = cls(settings, db, swap)
        async with service._network_lock() as conn:
            active = await service._register_configured(conn)
            # Nobody holds the lock, so no build runs anywhere: a version still 'publishing' was cut off.
            await conn.execute(
                "UPDATE feed_versions SET status = 'failed', error = $1 WHERE status = 'publishing'",
                "the build was interrupted (the service stopped); publish again",
            )
        if active is not None:
            await service._serve(active.id, await asyncio.to_thread(service._router_for, Path(active.directory)))
        service._spawn(service._follow())
        return service

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- what is served -----------------------------------------------------------------------

    def _router_for(self, directory: Path) -> Router:
        """A Router over a built network (slow: run in a worker thread)."""
        network = load_network(directory)
        on_demand = None
        if self.settings.service_file is not None:
            from routing.ondemand import DriveTimeEstimator, load_service

            on_demand = DriveTimeEstimator(network, load_service(self.settings.service_file))
        return Router(network, on_demand)

    async def _serve(self, network_id: int, router: Router) -> None:
        self.router = router
        self.network_id = network_id
        self._swap(router)
        log.info("serving network %s", network_id)

    async def _register_configured(self, conn: asyncpg.Connection) -> NetworkVersion | None:
        """The network to serve: the active one; MAAS_NETWORK_DIR is registered, and served when none is active.

        Starting a process never changes what the others serve: a configured directory that is new
        to the database becomes a network version an operator may activate.
        """
        active = await find_active_network(conn)
        if self.settings.network_dir is None:
            return active
        directory = str(Path(self.settings.network_dir).resolve())
        configured = await find_network_by_directory(conn, directory)
        async with conn.transaction():
            if configured is None:
                manifest = read_manifest(directory)
                configured = await create_network(
                    conn,
                    directory=directory,
                    status="built",
                    created_by=None,
                    feeds=[NetworkFeed(feed_id=f.id) for f in manifest.feeds],
                    osm=next((s.path for s in manifest.sources if s.kind == "osm"), None),
                )
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
                router = await asyncio.to_thread(self._router_for, Path(active.directory))
                async with self._serving:
                    async with self.db.pool.acquire() as conn:
                        still = await find_active_network(conn)
                    if still is not None and still.id == active.id and self.network_id != active.id:
                        await self._serve(active.id, router)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bad directory must not stop the process following later activations
                log.exception("cannot follow the active network")

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @contextlib.asynccontextmanager
    async def _network_lock(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.db.pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock($1)", NETWORK_LOCK)
            try:
                yield conn
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", NETWORK_LOCK)

    # -- publishing ---------------------------------------------------------------------------

    async def publish(self, user: User, version_id: uuid.UUID) -> FeedVersion:
        """Mark a valid version 'publishing' and start building a network with it; returns at once."""
        async with self.db.pool.acquire() as conn, conn.transaction():
            version = await find_version(conn, version_id, for_update=True)
            if version is None or not can_see(user, version):
                raise NotFound(f"no feed version {version_id}")
            errors = [f for f in version.report.get("findings", []) if f.get("severity") == "error"]  # type: ignore[union-attr]
            if version.status == "rejected" or errors:
                raise Invalid(
                    f"feed version {version_id} has {len(errors)} validation errors; fix them and upload again"
                )
            if version.status not in PUBLISHABLE:
                raise Conflict(f"feed version {version_id} is {version.status}", state=version.status)
            version = await set_status(conn, version_id, "publishing")
            await audit.record(
                conn, user.id, "publish_feed", str(version_id), {"agency": version.agency, "feed_id": version.feed_id}
            )
        self._spawn(self._publish(version, user.id))
        return version

    def _osm_file(self) -> Path:
        if self.settings.osm_file is not None:
            return Path(self.settings.osm_file)
        if self.settings.network_dir is not None:
            for source in read_manifest(self.settings.network_dir).sources:
                if source.kind == "osm":
                    return Path(source.path)
        raise PublishError("no OSM extract to build the street network from: set MAAS_OSM_FILE")

    def _base_manifest(self) -> Manifest | None:
        return self.router.network.manifest if self.router is not None else None

    async def _feed_file(self, conn: asyncpg.Connection, version: FeedVersion) -> Path:
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
                # The active network's feeds, with this version instead of the same feed's earlier one.
                members = [
                    v for v in await list_published(conn) if (v.agency, v.feed_id) != (version.agency, version.feed_id)
                ] + [version]
                osm = self._osm_file()
                network = await create_network(
                    conn,
                    directory="",
                    status="building",
                    osm=str(osm),
                    created_by=actor,
                    feeds=[NetworkFeed(feed_id=v.feed_id, version_id=v.id, agency=v.agency) for v in members],
                )
                out = self._networks_dir() / str(network.id)
                await set_directory(conn, network.id, str(out))
                paths = [str(await self._feed_file(conn, v)) for v in members]
                base = self._base_manifest()
                params = base.params if base is not None else BuildParams()
                # Bike share configured for the region stays in every network built from it.
                gbfs = [s.path for s in base.sources if s.kind == "gbfs"] if base is not None else []
                inputs = BuildInputs(gtfs=paths, gtfs_ids=[v.feed_id for v in members], gbfs=gbfs, osm=str(osm))
                await _build_in_child(inputs, out, params)
                router = await asyncio.to_thread(self._router_for, out)
                seconds = time.perf_counter() - started
                async with self._serving:
                    async with conn.transaction():
                        await finish_network(conn, network.id, "built", None, seconds)
                        await activate_network(conn, network.id)
                        await mark_published(conn, [v.id for v in members])
                        await audit.record(
                            conn,
                            actor,
                            "feed_published",
                            str(version.id),
                            {"network": network.id, "build_seconds": round(seconds, 1)},
                        )
                    await self._serve(network.id, router)
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

    async def list(self) -> list[NetworkVersion]:
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
            router = await asyncio.to_thread(self._router_for, Path(network.directory))
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
                await self._serve(network_id, router)
        return network

    # -- retention ----------------------------------------------------------------------------

    def _networks_dir(self) -> Path:
        return Path(self.settings.data_dir).resolve() / "networks"

    async def prune(self, actor: uuid.UUID) -> list[NetworkVersion]:
        """Delete the directories of networks built here except the `keep_networks` newest and the active one,
        marking them 'pruned'; returns those pruned. Every successful publish does this."""
        async with self._network_lock() as conn:
            return await self._prune(conn, actor)

    async def _prune(self, conn: asyncpg.Connection, actor: uuid.UUID) -> list[NetworkVersion]:
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


def _build_and_report(inputs: BuildInputs, out: Path, params: BuildParams, send: Connection) -> None:
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


def _outcome_of(receive: Connection, child: multiprocessing.process.BaseProcess) -> BaseException | None:
    """Wait (in a thread) for the child's report; a child that died without one is an error too."""
    with receive:
        try:
            outcome = receive.recv()
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
