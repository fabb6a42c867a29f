"""The signed-in user's own data: everything stored about them (`GET /me/export`), and a rider's
account erased (`DELETE /me`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from litestar import Controller, Request, delete, get
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException

from maas.booking import BookingService
from maas.db import privacy as repo
from maas.db.database import Database
from maas.db.users import find_user
from maas.model import BookingRecord, User
from maas.privacy import PrivacyService, RiderErasure
from maas.wire import Timestamp, iso


class ExportOut(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the service stores about you, as stored."""

    exported_at: Timestamp
    profile: repo.Profile
    bookings: list[BookingRecord]
    booking_events: list[repo.BookingEvent]
    journeys: list[repo.JourneyData]
    actions: list[repo.AuditAction]  # what you did that the audit log records (staff)


async def _account(request: Request[User, Any, Any], db: Database) -> User:
    """The user of the token as stored now: an erased account answers 401 here at once (elsewhere once
    the user cache of maas.auth forgets it)."""
    async with db.pool.acquire() as conn:
        user = await find_user(conn, request.user.id)
    if user is None:
        raise NotAuthorizedException("this account no longer exists")
    return user


class MeController(Controller):
    path = "/me"

    @get("/export")
    async def export(self, request: Request[User, Any, Any], db: NamedDependency[Database]) -> ExportOut:
        """Your data as JSON: your account, your bookings and their events, your journeys with their legs
        and events, and the audited actions you took."""
        data = await PrivacyService(db).export(await _account(request, db))
        return ExportOut(exported_at=iso(dt.datetime.now(dt.UTC)), **msgspec.structs.asdict(data))

    @delete("/", status_code=200)
    async def erase(
        self, request: Request[User, Any, Any], db: NamedDependency[Database], bookings: NamedDependency[BookingService]
    ) -> RiderErasure:
        """Delete your rider account: rides still to come are cancelled, your journeys and account are
        removed, your past rides stay for the fleet's record without you (409 while you are on board)."""
        return await PrivacyService(db).erase_rider(await _account(request, db), bookings)
