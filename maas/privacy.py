"""A rider's data on request: everything stored about them (export), and their account erased; a phone
caller's name and number erased on request, by an operator. The retention job (maas/retention.py)
does the same on a schedule, for data past its time.

An erased rider's account, journeys, offers and own words (cancellation reasons) are removed; their
rides stay, as the fleet's record, under one "erased riders" account, with their places kept to about
100 m. A rider on board cannot be erased (409); rides still to come are cancelled first, through the
booking service, so that their seats are freed in the plans.
"""

from __future__ import annotations

import re
import uuid

import msgspec

from maas.booking import BookingService
from maas.db import audit, locks
from maas.db import privacy as repo
from maas.db.database import Database
from maas.errors import Conflict, Forbidden, Invalid, NotFound
from maas.model import User

CANCEL_REASON = "the rider deleted their account"


class RiderErasure(msgspec.Struct, frozen=True, kw_only=True):
    cancelled: list[uuid.UUID]  # rides still to come, cancelled first
    rides_kept: int  # rides kept as the fleet's record, without the rider
    journeys_removed: int


class CallerErasure(msgspec.Struct, frozen=True, kw_only=True):
    bookings: int  # phone bookings whose caller's name and number were pseudonymised
    audit_entries: int
    journeys: int = 0  # journeys an operator booked for the caller, pseudonymised alike


def phone_digits(phone: str) -> str:
    """The number as its digits (how bookings are matched); Invalid when it is no phone number."""
    digits = re.sub(r"[^0-9]", "", phone)
    if not 3 <= len(digits) <= 20:
        raise Invalid("give the caller's phone number as it was booked (3 to 20 digits)")
    return digits


class PrivacyService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def export(self, user: User) -> repo.StoredData:
        async with self.db.pool.acquire() as conn:
            data = await repo.find_stored_data(conn, user.id)
        if data is None:
            raise NotFound("your account no longer exists")
        return data

    async def erase_rider(self, user: User, bookings: BookingService) -> RiderErasure:
        """Erase the rider's account (see the module); Conflict while they are on board."""
        if user.role != "rider":
            raise Forbidden("only a rider deletes their own account; staff accounts are removed by an admin")
        async with self.db.pool.acquire() as conn:
            _refuse_on_board(await repo.list_rides(conn, user, "picked_up"))
            coming = await repo.list_rides(conn, user, "confirmed")
        for booking_id in coming:
            await bookings.cancel(user, booking_id, CANCEL_REASON)
        async with self.db.pool.acquire() as conn, conn.transaction():
            # Under the fleet lock no ride of the rider is booked or boarded while the account goes.
            await locks.lock_fleet(conn)
            _refuse_on_board(await repo.list_rides(conn, user, "picked_up"))
            booked = await repo.list_rides(conn, user, "confirmed")
            if booked:
                raise Conflict(f"ride {booked[0]} was booked meanwhile: cancel it or try again")
            journeys, rides = await repo.erase_rider(conn, user.id)
            await audit.record(
                conn, None, "erase_rider", None, {"cancelled": len(coming), "rides_kept": rides, "journeys": journeys}
            )
        return RiderErasure(cancelled=coming, rides_kept=rides, journeys_removed=journeys)

    async def erase_caller(self, actor: User, phone: str) -> CallerErasure:
        """Pseudonymise every phone booking and journey of the caller with this number (audited without
        it); Conflict while one of their rides is still to be driven, NotFound when none has the number."""
        digits = phone_digits(phone)
        async with self.db.pool.acquire() as conn, conn.transaction():
            under_way = await repo.list_caller_rides_under_way(conn, digits)
            if under_way:
                raise Conflict(
                    f"the caller has {len(under_way)} ride(s) still to be driven, first {under_way[0]}: cancel them"
                    " (POST /bookings/{id}/cancel) or wait until they are dropped off",
                    bookings=[str(b) for b in under_way],
                )
            bookings, entries = await repo.erase_caller(conn, digits)
            journeys = await repo.erase_caller_journeys(conn, digits)
            if bookings == 0 and journeys == 0:
                raise NotFound("no phone booking or journey has that number (or its caller was erased already)")
            await audit.record(
                conn,
                actor.id,
                "erase_caller",
                None,
                {"bookings": bookings, "audit_entries": entries, "journeys": journeys},
            )
        return CallerErasure(bookings=bookings, audit_entries=entries, journeys=journeys)


def _refuse_on_board(on_board: list[uuid.UUID]) -> None:
    if on_board:
        raise Conflict(
            f"you are on board (booking {on_board[0]}): your account can be deleted once you are dropped off"
        )
