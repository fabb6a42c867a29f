"""Re-optimisation runs of the live plans (migration 0021)."""

from __future__ import annotations

import datetime as dt

import asyncpg

from maas.db import Connection, returned
from maas.model import ReoptimizationRecord

COLUMNS = (
    "id, started_at, finished_at, trigger, outcome, detail, fleet_version, adopted_version, rides, vehicles,"
    " drive_before_s, drive_after_s, moved_rides, search_s, duration_s"
)
INSERT = (
    "INSERT INTO reoptimizations (started_at, finished_at, trigger, outcome, detail, fleet_version, adopted_version,"
    " rides, vehicles, drive_before_s, drive_after_s, moved_rides, search_s, duration_s)"
    f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING {COLUMNS}"
)
LIST = f"SELECT {COLUMNS} FROM reoptimizations ORDER BY id DESC LIMIT $1"
LAST_STARTED = "SELECT max(started_at) FROM reoptimizations"


def _record(r: asyncpg.Record) -> ReoptimizationRecord:
    return ReoptimizationRecord(**dict(r.items()))


async def add(conn: Connection, run: ReoptimizationRecord) -> ReoptimizationRecord:
    """Store a run (its `id` is ignored); the stored row."""
    row = await conn.fetchrow(
        INSERT,
        run.started_at,
        run.finished_at,
        run.trigger,
        run.outcome,
        run.detail[:2000],
        run.fleet_version,
        run.adopted_version,
        run.rides,
        run.vehicles,
        run.drive_before_s,
        run.drive_after_s,
        run.moved_rides,
        run.search_s,
        run.duration_s,
    )
    return _record(returned(row))


async def list_recent(conn: Connection, limit: int) -> list[ReoptimizationRecord]:
    """The latest runs, newest first."""
    return [_record(r) for r in await conn.fetch(LIST, limit)]


async def last_started(conn: Connection) -> dt.datetime | None:
    """When the latest run (of any process) started; None before the first."""
    found: dt.datetime | None = await conn.fetchval(LAST_STARTED)
    return found
