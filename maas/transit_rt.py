"""GTFS-Realtime in the service: the latest message of each GTFS feed in PostgreSQL, the overlay of the stored
trip updates that every process plans on, the transit vehicles' positions, and the poller of configured URLs.

A message is stored (`POST /realtime/gtfs-rt/{feed_id}`, or fetched by the poller) under each kind of entity
it carries, replacing the feed's earlier one of that kind. A process reads the versions of the stored
messages (one small query) when it plans; when one changed, when the served network is another, or when
a feed it applied went stale, it rebuilds its overlay in a worker thread (routing.realtime), once however
many requests ask: the others plan on the overlay before until it is ready. Only one process of the
database polls (it holds an advisory lock); the others stand by and take over when it stops.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Mapping

import httpx
import msgspec

from feeds.gtfs_rt import FeedMessage, RealtimeFeedError, VehiclePosition, read_feed_message
from feeds.model import FeedError
from maas.background import end_tasks
from maas.db import Connection, gtfs_rt, locks
from maas.db.database import Database
from maas.db.feeds import find_owner
from maas.errors import Forbidden, Invalid, MaasError, NotFound
from maas.model import RealtimeKind, User
from maas.served import Serving
from maas.settings import GtfsRtSource, Settings
from routing.model import Timetable
from routing.plan import Router
from routing.realtime import FeedReport, RealtimeOverlay

log = logging.getLogger(__name__)
POSTED = "POST"  # the source of a message a user posted
FETCH_TIMEOUT_S = 20.0


class StoredFeedMessage(msgspec.Struct, frozen=True, kw_only=True):
    """A GTFS-Realtime message just stored, and how this process applies its trip updates."""

    feed_id: str
    kinds: list[RealtimeKind]
    version: int  # the newest of its rows
    header_timestamp: dt.datetime | None
    received_at: dt.datetime
    trip_updates: int
    vehicle_positions: int
    alerts: int
    applied: FeedReport | None  # None when it carries no trip updates


class _InForce(msgspec.Struct, frozen=True, kw_only=True):
    """The overlay a process plans on: of which timetable, from which stored trip-update messages."""

    base: Timetable
    versions: dict[tuple[str, RealtimeKind], int]
    overlay: RealtimeOverlay | None  # None: no trip updates are stored

    def serves(self, router: Router, versions: Mapping[tuple[str, RealtimeKind], int], now_s: float) -> bool:
        expires = self.overlay.expires_s if self.overlay is not None else None
        return (
            self.base is router.network.timetable and self.versions == versions and (expires is None or now_s < expires)
        )


class TransitRealtime:
    """The GTFS-Realtime data of this process: stores messages, keeps the overlay of the trip updates in force."""

    def __init__(self, db: Database, serving: Serving, settings: Settings) -> None:
        self.db = db
        self.serving = serving
        self.settings = settings
        self._decoded: dict[tuple[str, RealtimeKind], tuple[int, FeedMessage]] = {}  # by version read
        self._in_force: _InForce | None = None
        self._rebuilding = asyncio.Lock()
        self._poller: asyncio.Task[None] | None = None
        self.updated = asyncio.Event()  # set when this process stored trip updates (connection protection waits on it)

    # -- storing ----------------------------------------------------------------------------------

    async def store(self, user: User | None, feed_id: str, body: bytes, source: str = POSTED) -> StoredFeedMessage:
        """Store a message as the feed's latest of each kind it carries (the poller's when `user` is None).

        NotFound for a feed the served network lacks, Forbidden for an agency's write to another agency's
        feed, RealtimeFeedError for bytes that are not GTFS-Realtime, Invalid for a differential message.
        """
        served = self.serving.current
        if served is None:
            raise NotFound("no network is served, so no GTFS feed is known: set MAAS_NETWORK_DIR or publish a feed")
        feed_ids = [f.id for f in served.network.manifest.feeds]
        if feed_id not in feed_ids:
            raise NotFound(f"no GTFS feed {feed_id!r} in the network served (its feeds: {', '.join(feed_ids)})")
        if len(body) > self.settings.gtfs_rt_max_bytes:
            raise Invalid(f"the message has {len(body)} bytes, more than {self.settings.gtfs_rt_max_bytes}")
        if user is not None and user.role == "agency":
            async with self.db.pool.acquire() as conn:
                owner = await find_owner(conn, feed_id)
            if owner is None or owner != user.agency:
                raise Forbidden(
                    f"feed {feed_id!r} is not agency {user.agency}'s: only its own agency posts its realtime data"
                )
        name = f"{source} /realtime/gtfs-rt/{feed_id}" if source == POSTED else source
        message = await asyncio.to_thread(read_feed_message, body, name)
        if message.incrementality == "DIFFERENTIAL":
            raise Invalid(f"{name}: a DIFFERENTIAL message; send the FULL_DATASET (incremental GTFS-RT is not read)")
        kinds: list[RealtimeKind] = []
        if message.trip_updates or not message.vehicle_positions:
            kinds.append("trip_updates")  # an empty message is an empty set of trip updates: nothing is late
        if message.vehicle_positions:
            kinds.append("vehicle_positions")
        counts = {"trip_updates": len(message.trip_updates), "vehicle_positions": len(message.vehicle_positions)}
        stamp = dt.datetime.fromtimestamp(message.timestamp, dt.UTC) if message.timestamp is not None else None
        async with self.db.pool.acquire() as conn:
            async with conn.transaction():
                rows = [
                    await gtfs_rt.store_message(
                        conn,
                        feed_id=feed_id,
                        kind=kind,
                        body=body,
                        header_timestamp=stamp,
                        entities=counts[kind],
                        source=source,
                        received_by=user.id if user is not None else None,
                    )
                    for kind in kinds
                ]
            for row in rows:
                self._decoded[(feed_id, row.kind)] = (row.version, message)
            if "trip_updates" in kinds:
                self.updated.set()
            applied = None
            if "trip_updates" in kinds:
                # This process applies it now, and answers how.
                in_force = await self._current(conn, served.router, wait=True)
                if in_force.overlay is not None:
                    applied = next((r for r in in_force.overlay.feeds if r.feed_id == feed_id), None)
        return StoredFeedMessage(
            feed_id=feed_id,
            kinds=kinds,
            version=max(r.version for r in rows),
            header_timestamp=stamp,
            received_at=rows[0].received_at,
            trip_updates=len(message.trip_updates),
            vehicle_positions=len(message.vehicle_positions),
            alerts=message.alerts,
            applied=applied,
        )

    # -- the overlay in force ---------------------------------------------------------------------

    async def planning(self, router: Router) -> Router:
        """`router` planning on the stored trip updates' times, when fresh ones apply to its network."""
        async with self.db.pool.acquire() as conn:
            in_force = await self._current(conn, router)
        overlay = in_force.overlay
        if overlay is None or overlay.timetable is overlay.base:
            return router
        return router.with_realtime(overlay)

    async def _current(self, conn: Connection, router: Router, *, wait: bool = False) -> _InForce:
        """The overlay for `router`'s network and the stored trip updates, rebuilt first if it is out of date;
        while another request rebuilds it, the one before (unless `wait`)."""
        versions = {k: v for k, v in (await gtfs_rt.list_versions(conn)).items() if k[1] == "trip_updates"}
        known = self._in_force
        if known is not None and known.serves(router, versions, time.time()):
            return known
        if not wait and known is not None and known.base is router.network.timetable and self._rebuilding.locked():
            return known
        async with self._rebuilding:
            known = self._in_force
            if known is not None and known.serves(router, versions, time.time()):
                return known
            messages = await self._messages(conn, versions)
            overlay = None
            if messages:
                feeds = {feed_id: message for (feed_id, _), message in messages.items()}
                overlay = await asyncio.to_thread(
                    router.realtime_index.get().apply,
                    feeds,
                    now_s=int(time.time()),
                    max_age_s=self.settings.gtfs_rt_max_age_s,
                )
                log.info(
                    "GTFS-Realtime overlay in %.1f ms: %s",
                    overlay.seconds * 1000,
                    "; ".join(_summary(r) for r in overlay.feeds),
                )
            in_force = _InForce(base=router.network.timetable, versions=versions, overlay=overlay)
            self._in_force = in_force
            return in_force

    async def _messages(
        self, conn: Connection, versions: Mapping[tuple[str, RealtimeKind], int]
    ) -> dict[tuple[str, RealtimeKind], FeedMessage]:
        """The stored messages of these versions, decoded; only those changed since last read are fetched."""
        stale = [k for k, v in versions.items() if self._decoded.get(k, (None,))[0] != v]
        for row in await gtfs_rt.list_messages(conn, stale):
            try:
                message = await asyncio.to_thread(read_feed_message, row.body, f"{row.source} ({row.feed_id})")
            except RealtimeFeedError:  # stored only after decoding: a row written by something else
                log.exception("stored GTFS-Realtime message of %s is unreadable", row.feed_id)
                continue
            self._decoded[(row.feed_id, row.kind)] = (row.version, message)
        return {k: self._decoded[k][1] for k in versions if k in self._decoded}

    # -- vehicles ---------------------------------------------------------------------------------

    async def vehicles(self, feed_id: str | None = None) -> list[tuple[str, VehiclePosition]]:
        """(feed id, position) of every transit vehicle in the latest fresh vehicle positions, of one feed or all;
        vehicles without a fix (none, or at 0, 0) are left out."""
        async with self.db.pool.acquire() as conn:
            versions = {
                k: v
                for k, v in (await gtfs_rt.list_versions(conn)).items()
                if k[1] == "vehicle_positions" and (feed_id is None or k[0] == feed_id)
            }
            messages = await self._messages(conn, versions)
        now = time.time()
        found = []
        for (feed, _), message in sorted(messages.items()):
            if message.timestamp is None or now - message.timestamp > self.settings.gtfs_rt_max_age_s:
                continue
            for vehicle in message.vehicle_positions:
                if vehicle.lat is None or vehicle.lon is None or (vehicle.lat, vehicle.lon) == (0.0, 0.0):
                    continue
                found.append((feed, vehicle))
        return found

    # -- polling ----------------------------------------------------------------------------------

    def start_polling(self) -> None:
        """Poll the configured URLs in the background (nothing to do without MAAS_GTFS_RT)."""
        if self.settings.gtfs_rt and self._poller is None:
            self._poller = asyncio.create_task(self._poll())

    async def stop_polling(self) -> None:
        task, self._poller = self._poller, None
        await end_tasks([task], "GTFS-Realtime polling")

    async def _poll(self) -> None:
        """Fetch and store every source each interval while this process holds the poller lock; try for the lock
        again each interval while another process holds it. Nothing a round meets ends the polling."""
        interval = self.settings.gtfs_rt_interval_s
        async with httpx.AsyncClient(timeout=FETCH_TIMEOUT_S, follow_redirects=True) as client:
            while True:
                try:
                    async with self.db.pool.acquire() as conn:
                        if await locks.try_hold(conn, locks.GTFS_RT_POLLER):
                            log.info("polling %d GTFS-Realtime URLs every %d s", len(self.settings.gtfs_rt), interval)
                            try:
                                while True:
                                    await self.poll_once(client)
                                    await asyncio.sleep(interval)
                            finally:
                                await locks.release(conn, locks.GTFS_RT_POLLER)
                except asyncio.CancelledError:
                    raise
                except Exception:  # the database went away, or worse: log it and try again
                    log.exception("GTFS-Realtime polling interrupted; trying again in %d s", interval)
                await asyncio.sleep(interval)

    async def poll_once(self, client: httpx.AsyncClient) -> list[StoredFeedMessage]:
        """Fetch and store each configured source once; a source that fails is logged and skipped."""
        stored = []
        for source in self.settings.gtfs_rt:
            try:
                body = await fetch(client, source, self.settings.gtfs_rt_max_bytes)
                stored.append(await self.store(None, source.feed_id, body, source=source.url))
            except (httpx.HTTPError, FeedError, MaasError) as exc:
                log.warning("GTFS-Realtime %s for %s: %s", source.url, source.feed_id, exc)
        return stored


async def fetch(client: httpx.AsyncClient, source: GtfsRtSource, max_bytes: int) -> bytes:
    """The body a GTFS-Realtime URL serves, read up to `max_bytes` (RealtimeFeedError beyond)."""
    async with client.stream("GET", source.url, headers={"Accept": "application/x-protobuf"}) as response:
        response.raise_for_status()
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise RealtimeFeedError(f"{source.url}: larger than {max_bytes} bytes (MAAS_GTFS_RT_MAX_BYTES)")
            chunks.append(chunk)
    return b"".join(chunks)


def _summary(report: FeedReport) -> str:
    if not report.used:
        return f"{report.feed_id} ignored ({report.ignored})"
    return (
        f"{report.feed_id}: {report.realtime_runs} runs retimed, {report.cancelled_runs} cancelled,"
        f" {report.unknown_trips} unknown trips, {report.unknown_stops} unknown stops"
    )
