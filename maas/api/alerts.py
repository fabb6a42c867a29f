"""Operators: the alert inbox (maas/alerts.py), kept across page reloads and pushed on /ws/fleet."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from maas.alerts import MAX_LISTED, AlertOut, AlertService, alert_out
from maas.auth import roles
from maas.model import AlertKind, AlertState, User
from maas.wire import MAX_INT32, Text


class AlertNote(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An operator's note on what they did (it goes into the audit log)."""

    note: Text | None = None


class AlertController(Controller):
    path = "/alerts"
    guards = [roles("operator", "admin")]

    @get("/")
    async def list_alerts(
        self,
        alerts: NamedDependency[AlertService],
        # `state` is Litestar's name for the application state: the parameter is spelled out.
        wanted: Annotated[
            AlertState, QueryParameter(name="state", description="open: not resolved (acknowledged or not)")
        ] = "open",
        kind: FromQuery[AlertKind | None] = None,
        booking_id: FromQuery[uuid.UUID | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LISTED)] = 100,
        offset: Annotated[int, QueryParameter(ge=0, le=MAX_INT32)] = 0,
    ) -> list[AlertOut]:
        """The alerts in `state` (default open: not resolved), of one `kind` or booking if given, newest
        raised first; each with the booking, journey, vehicle and shift it concerns and the actions the
        console can offer."""
        return [alert_out(a) for a in await alerts.list(wanted, kind, booking_id, limit, offset)]

    @get("/{alert_id:uuid}")
    async def get_alert(self, alerts: NamedDependency[AlertService], alert_id: FromPath[uuid.UUID]) -> AlertOut:
        """One alert."""
        return alert_out(await alerts.get(alert_id))

    @post("/{alert_id:uuid}/acknowledge", status_code=200)
    async def acknowledge(
        self,
        request: Request[User, Any, Any],
        alerts: NamedDependency[AlertService],
        alert_id: FromPath[uuid.UUID],
        data: JSONBody[AlertNote | None] = None,
    ) -> AlertOut:
        """Take the alert ("I am on it"): who and when are kept, the note goes into the audit log. Again by
        the same operator: the alert as it is; 409 when another operator took it or it is resolved."""
        note = data.note if data else None
        return alert_out(await alerts.acknowledge(request.user, alert_id, note))

    @post("/{alert_id:uuid}/resolve", status_code=200)
    async def resolve(
        self,
        request: Request[User, Any, Any],
        alerts: NamedDependency[AlertService],
        alert_id: FromPath[uuid.UUID],
        data: JSONBody[AlertNote | None] = None,
    ) -> AlertOut:
        """Close the alert by hand (a no-show handled, a rider called), audited with the note; 409 when it
        is resolved already. Conditions that end by themselves resolve their alerts."""
        note = data.note if data else None
        return alert_out(await alerts.resolve(request.user, alert_id, note))
