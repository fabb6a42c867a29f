"""The operators' alert inbox: what dispatch must see and act on, kept until it is resolved.

Alerts are raised where their conditions are found, in the transaction that records them: a train
connection broken or its train cancelled (maas/protection.py), a ride's delay beyond
`rules.delay_alert_s` (maas/eta.py), a driver's no-show (maas/driving.py). One ongoing condition of a
booking is one alert: raised again while open, it is updated (a delay growing from 5 to 10 minutes);
once resolved, a new alert. The condition resolves it when it ends (the ride on time again, the
connection kept, the booking cancelled, a delayed ride reassigned or boarded); an operator can resolve
one too (a no-show is handled when the rider was called).

Acknowledging says "I am on it": whoever acknowledged first keeps it (a second operator gets 409 with
their name; the same operator again gets the alert as it is), and a resolved alert needs nobody (409),
as PagerDuty and Opsgenie answer for incidents closed meanwhile. Every raise, update, acknowledgement
and resolution is announced on the fleet topic as `{"type": "alert", "alert": AlertOut}`.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, Literal

import msgspec

from maas.db import Connection, audit
from maas.db import alerts as repo
from maas.db.database import Database
from maas.errors import Conflict, NotFound
from maas.model import AlertKind, AlertRecord, AlertSeverity, AlertState, BookingRecord, User
from maas.realtime import announce
from maas.wire import Timestamp, iso, iso_or_none

MAX_DETAIL = 2000  # as migration 0030's CHECK
MAX_RESOLUTION = 600
MAX_LISTED = 500
NO_SHOW = "no_show"

# What the console can offer on an alert: POST /bookings/{id}/reassign or /cancel, phone the rider or
# the driver, book the next ride the alert names.
AlertAction = Literal["reassign", "cancel", "book_next", "call_rider", "call_driver"]
_ACTIONS: dict[AlertKind, tuple[AlertAction, ...]] = {
    "connection_missed": ("reassign", "book_next", "cancel", "call_rider"),
    "train_cancelled": ("call_rider", "cancel", "reassign"),
    "delay": ("call_rider", "call_driver", "reassign"),
    "no_show": ("call_rider", "call_driver"),
}
_WAITING_ONLY: frozenset[AlertAction] = frozenset({"reassign", "cancel", "book_next"})  # a ride not yet picked up


def connection_condition(leg: int) -> str:
    return f"connection:{leg}"


def delay_condition(stop: str) -> str:
    return f"delay:{stop}"


class AlertOut(msgspec.Struct, frozen=True, kw_only=True):
    """An alert as the console shows it: what happened, where to jump (booking, journey, vehicle,
    shift), who took it, whether it is over, and what the operator can do about it."""

    id: uuid.UUID
    kind: AlertKind
    severity: AlertSeverity
    detail: str
    booking_id: uuid.UUID | None
    journey_id: uuid.UUID | None
    vehicle_id: uuid.UUID | None
    shift_id: uuid.UUID | None
    raised_at: Timestamp
    updated_at: Timestamp
    acknowledged_at: Timestamp | None
    acknowledged_by: str | None  # the operator's name (None: not acknowledged, or their account was removed)
    resolved_at: Timestamp | None
    resolution: str | None  # why it is over: "on time again", "the booking was cancelled", an operator's note
    actions: list[AlertAction]  # empty once resolved


def actions_of(a: AlertRecord) -> list[AlertAction]:
    if a.resolved_at is not None or a.booking_status is None:
        return []
    return [x for x in _ACTIONS[a.kind] if x not in _WAITING_ONLY or a.booking_status == "confirmed"]


def alert_out(a: AlertRecord) -> AlertOut:
    return AlertOut(
        id=a.id,
        kind=a.kind,
        severity=a.severity,
        detail=a.detail,
        booking_id=a.booking_id,
        journey_id=a.journey_id,
        vehicle_id=a.vehicle_id,
        shift_id=a.shift_id,
        raised_at=iso(a.raised_at),
        updated_at=iso(a.updated_at),
        acknowledged_at=iso_or_none(a.acknowledged_at),
        acknowledged_by=a.acknowledged_by_name,
        resolved_at=iso_or_none(a.resolved_at),
        resolution=a.resolution,
        actions=actions_of(a),
    )


def alert_message(a: AlertRecord) -> dict[str, Any]:
    """The fleet socket's message: on the fleet topic only (it names no booking at its top level, so
    riders' sockets never see it)."""
    return {"type": "alert", "alert": msgspec.to_builtins(alert_out(a))}


def _text(text: str, limit: int) -> str:
    return re.sub(r"[\x00-\x1f\x7f]+", " ", text).strip()[:limit] or "-"


async def raise_alert(
    conn: Connection,
    kind: AlertKind,
    severity: AlertSeverity,
    condition: str,
    booking: BookingRecord,
    detail: str,
    journey_id: uuid.UUID | None = None,
) -> AlertRecord:
    """Raise (or update) the booking's alert of `condition` in the caller's transaction, and announce it."""
    alert = await repo.raise_alert(
        conn,
        kind,
        severity,
        condition,
        booking.id,
        journey_id,
        booking.vehicle_id,
        booking.shift_id,
        _text(detail, MAX_DETAIL),
    )
    await announce(conn, alert_message(alert))
    return alert


async def resolve_alerts(conn: Connection, booking_id: uuid.UUID, conditions: list[str], why: str) -> list[AlertRecord]:
    """Resolve the booking's open alerts of `conditions` (LIKE patterns: "delay:%") and announce them."""
    resolved = await repo.resolve(conn, booking_id, conditions, _text(why, MAX_RESOLUTION))
    for alert in resolved:
        await announce(conn, alert_message(alert))
    return resolved


async def _unresolved(conn: Connection, alert_id: uuid.UUID, then: str = "") -> AlertRecord:
    """The alert, locked for this transaction; NotFound, or Conflict when it is resolved already."""
    found = await repo.find_alert(conn, alert_id, lock=True)
    if found is None:
        raise NotFound(f"no alert {alert_id}")
    if found.resolved_at is not None:
        raise Conflict(
            f"the alert was resolved at {iso(found.resolved_at)} ({found.resolution}){then}",
            resolved_at=iso(found.resolved_at),
        )
    return found


class AlertService:
    """The inbox as operators use it: list, acknowledge, resolve."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def list(
        self, state: AlertState, kind: AlertKind | None, booking_id: uuid.UUID | None, limit: int, offset: int
    ) -> list[AlertRecord]:
        async with self.db.pool.acquire() as conn:
            return await repo.list_alerts(conn, state, kind, booking_id, limit, offset)

    async def get(self, alert_id: uuid.UUID) -> AlertRecord:
        async with self.db.pool.acquire() as conn:
            found = await repo.find_alert(conn, alert_id)
        if found is None:
            raise NotFound(f"no alert {alert_id}")
        return found

    async def acknowledge(self, user: User, alert_id: uuid.UUID, note: str | None) -> AlertRecord:
        """The alert acknowledged by `user` (audited with the note); see the module for the 409s."""
        async with self.db.pool.acquire() as conn, conn.transaction():
            found = await _unresolved(conn, alert_id, ": nothing to acknowledge")
            if found.acknowledged_at is not None:
                if found.acknowledged_by == user.id:
                    return found  # a retry, or a second click: as it is
                raise Conflict(
                    f"{found.acknowledged_by_name or 'another operator'} acknowledged it at"
                    f" {iso(found.acknowledged_at)}",
                    acknowledged_by=found.acknowledged_by_name,
                    acknowledged_at=iso(found.acknowledged_at),
                )
            done = await repo.acknowledge(conn, alert_id, user.id)
            assert done is not None  # the row is locked, neither acknowledged nor resolved
            await audit.record(conn, user.id, "acknowledge_alert", str(alert_id), _audited(done, note))
            await announce(conn, alert_message(done))
        return done

    async def resolve(self, user: User, alert_id: uuid.UUID, note: str | None) -> AlertRecord:
        """The alert closed by `user` (audited with the note); Conflict when it was resolved already."""
        async with self.db.pool.acquire() as conn, conn.transaction():
            await _unresolved(conn, alert_id)
            why = f"closed by {user.name}" + (f": {note}" if note else "")
            done = await repo.resolve_one(conn, alert_id, _text(why, MAX_RESOLUTION))
            assert done is not None
            await audit.record(conn, user.id, "resolve_alert", str(alert_id), _audited(done, note))
            await announce(conn, alert_message(done))
        return done


def _audited(a: AlertRecord, note: str | None) -> dict[str, object]:
    return {"kind": a.kind, "booking": None if a.booking_id is None else str(a.booking_id), "note": note}


__all__ = [
    "AlertAction",
    "AlertOut",
    "AlertService",
    "alert_message",
    "alert_out",
    "connection_condition",
    "delay_condition",
    "raise_alert",
    "resolve_alerts",
]
