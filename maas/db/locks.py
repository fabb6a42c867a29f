"""Every PostgreSQL advisory lock of the service, named once.

Session and transaction advisory locks share one key space, so two locks that must not block
each other need different keys (a publish holds NETWORKS for a whole build while bookings take
FLEET many times a second).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from maas.db import Connection

MIGRATIONS = 7_301_001  # schema migrations at start-up: one process at a time
FLEET = 7_301_002  # every change to the fleet's plans, until its transaction ends (maas_book takes it too)
NETWORKS = 7_301_003  # building or activating a network: one at a time, in every process
GTFS_RT_POLLER = 7_301_004  # held by the one process that polls the GTFS-Realtime URLs (the others stand by)
REOPTIMIZER = 7_301_021  # held while one process re-optimises the live plans (the others skip that run)
RETENTION = 7_301_029  # held while one process runs the retention job (maas/retention.py)
FEED_STORAGE = 7_301_025  # with an agency's hash: its uploads are stored one at a time, within its quota

KEYS = {
    "migrations": MIGRATIONS,
    "fleet": FLEET,
    "networks": NETWORKS,
    "gtfs_rt_poller": GTFS_RT_POLLER,
    "reoptimizer": REOPTIMIZER,
    "retention": RETENTION,
    "feed_storage": FEED_STORAGE,
}


async def lock_fleet(conn: Connection) -> None:
    """Serialise plan changes across processes until the caller's transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", FLEET)


async def try_hold(conn: Connection, key: int) -> bool:
    """Take the session lock `key` on `conn` if no session holds it; whether it was taken."""
    taken: bool = await conn.fetchval("SELECT pg_try_advisory_lock($1)", key)
    return taken


async def release(conn: Connection, key: int) -> None:
    await conn.execute("SELECT pg_advisory_unlock($1)", key)


@contextlib.asynccontextmanager
async def holding(conn: Connection, key: int) -> AsyncIterator[Connection]:
    """Hold the session lock `key` on `conn` for the block (across transactions)."""
    await conn.execute("SELECT pg_advisory_lock($1)", key)
    try:
        yield conn
    finally:
        await release(conn, key)
