"""The operators' alert inbox (migration 0030): one row per ongoing condition of a booking."""

from __future__ import annotations

import uuid

import asyncpg

from maas.db import Connection, returned
from maas.model import AlertKind, AlertRecord, AlertSeverity, AlertState

# What every statement answers: the alert, who acknowledged it, and its booking's status (for the
# actions the console offers). `a` is the alerts table or the rows a statement just wrote.
_VIEW = """
SELECT a.id, a.kind, a.severity, a.condition, a.booking_id, a.journey_id, a.vehicle_id, a.shift_id, a.detail,
       a.raised_at, a.updated_at, a.acknowledged_at, a.acknowledged_by, u.name AS acknowledged_by_name,
       a.resolved_at, a.resolution, b.status AS booking_status
FROM {source} a LEFT JOIN users u ON u.id = a.acknowledged_by LEFT JOIN bookings b ON b.id = a.booking_id
"""
# One statement, so that two processes raising one condition at once make one alert.
RAISE = f"""
WITH a AS (
    INSERT INTO alerts AS o (id, kind, severity, condition, booking_id, journey_id, vehicle_id, shift_id, detail)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    ON CONFLICT (booking_id, condition) WHERE resolved_at IS NULL DO UPDATE SET
        kind = excluded.kind, severity = excluded.severity, detail = excluded.detail,
        journey_id = coalesce(excluded.journey_id, o.journey_id),
        vehicle_id = coalesce(excluded.vehicle_id, o.vehicle_id), shift_id = coalesce(excluded.shift_id, o.shift_id),
        updated_at = now()
    RETURNING *
) {_VIEW.format(source="a")}
"""
# Open alerts of a booking whose condition is LIKE one of $2, resolved with the reason $3.
RESOLVE = f"""
WITH a AS (
    UPDATE alerts SET resolved_at = now(), resolution = $3, updated_at = now()
    WHERE booking_id = $1 AND condition LIKE ANY ($2::text[]) AND resolved_at IS NULL
    RETURNING *
) {_VIEW.format(source="a")} ORDER BY a.raised_at
"""
RESOLVE_ONE = f"""
WITH a AS (
    UPDATE alerts SET resolved_at = now(), resolution = $2, updated_at = now()
    WHERE id = $1 AND resolved_at IS NULL RETURNING *
) {_VIEW.format(source="a")}
"""
ACKNOWLEDGE = f"""
WITH a AS (
    UPDATE alerts SET acknowledged_at = now(), acknowledged_by = $2, updated_at = now()
    WHERE id = $1 AND acknowledged_at IS NULL AND resolved_at IS NULL RETURNING *
) {_VIEW.format(source="a")}
"""
LOCK = "SELECT id FROM alerts WHERE id = $1 FOR UPDATE"
GET = _VIEW.format(source="alerts") + " WHERE a.id = $1"
# $1 the state (open: not resolved; acknowledged: and acknowledged; resolved; all), $2 a kind or NULL,
# $3 a booking or NULL; newest first.
LIST = (
    _VIEW.format(source="alerts")
    + """
WHERE ($1 = 'all' OR ($1 = 'resolved') = (a.resolved_at IS NOT NULL))
  AND ($1 <> 'acknowledged' OR a.acknowledged_at IS NOT NULL)
  AND ($2::text IS NULL OR a.kind = $2) AND ($3::uuid IS NULL OR a.booking_id = $3)
ORDER BY a.raised_at DESC, a.id DESC LIMIT $4 OFFSET $5
"""
)


def _alert(r: asyncpg.Record) -> AlertRecord:
    return AlertRecord(**dict(r.items()))


async def raise_alert(
    conn: Connection,
    kind: AlertKind,
    severity: AlertSeverity,
    condition: str,
    booking_id: uuid.UUID,
    journey_id: uuid.UUID | None,
    vehicle_id: uuid.UUID | None,
    shift_id: uuid.UUID | None,
    detail: str,
) -> AlertRecord:
    """The booking's open alert of `condition`, updated; a new one when none is open."""
    row = await conn.fetchrow(
        RAISE, uuid.uuid4(), kind, severity, condition, booking_id, journey_id, vehicle_id, shift_id, detail
    )
    return _alert(returned(row))


async def resolve(conn: Connection, booking_id: uuid.UUID, conditions: list[str], why: str) -> list[AlertRecord]:
    """Resolve the booking's open alerts whose condition matches a LIKE pattern of `conditions`."""
    return [_alert(r) for r in await conn.fetch(RESOLVE, booking_id, conditions, why)]


async def resolve_one(conn: Connection, alert_id: uuid.UUID, why: str) -> AlertRecord | None:
    row = await conn.fetchrow(RESOLVE_ONE, alert_id, why)
    return None if row is None else _alert(row)


async def acknowledge(conn: Connection, alert_id: uuid.UUID, user_id: uuid.UUID) -> AlertRecord | None:
    """Acknowledged by the user, if it was neither acknowledged nor resolved."""
    row = await conn.fetchrow(ACKNOWLEDGE, alert_id, user_id)
    return None if row is None else _alert(row)


async def find_alert(conn: Connection, alert_id: uuid.UUID, lock: bool = False) -> AlertRecord | None:
    if lock and await conn.fetchval(LOCK, alert_id) is None:
        return None
    row = await conn.fetchrow(GET, alert_id)
    return None if row is None else _alert(row)


async def list_alerts(
    conn: Connection,
    state: AlertState,
    kind: AlertKind | None,
    booking_id: uuid.UUID | None,
    limit: int,
    offset: int,
) -> list[AlertRecord]:
    return [_alert(r) for r in await conn.fetch(LIST, state, kind, booking_id, limit, offset)]
