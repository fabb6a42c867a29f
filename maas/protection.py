"""Connection protection: the Rufbus and the train stay together when the train is late.

After every change of the trains' realtime times (and now and then, as time passes), each booked
ride whose promise protects a connection is looked at against its trip's expected time at the
station:

- a last-mile ride whose train is late moves its pickup to wait for it, as long as every other
  rider's promise still holds and the wait stays within the service's `max_train_wait_s`;
  otherwise the journey is at risk: rider and operator are told, with the next option, and the
  operator decides; a phone caller (a journey an operator booked) has no app: the operator's message
  names the caller to phone;
- a first-mile ride whose train is cancelled (or no longer stops there) is told before pickup;
- every decision is an event on the journey, and a message on the live feeds (the rider's ride
  socket and the operator's fleet socket).

Each process runs it; the fleet lock and the connection state stored per leg make one of them act
once per change.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import Callable
from typing import Literal

import msgspec

from maas.alerts import connection_condition, raise_alert, resolve_alerts
from maas.background import end_tasks, wake_or_timeout
from maas.db import Connection
from maas.db import bookings as booking_repo
from maas.db import journeys as journey_repo
from maas.db.database import Database
from maas.fleet import FleetService, now_s
from maas.model import AlertKind, AlertSeverity, BookingRecord, ConnectionState, JourneyLegRecord, ServiceRules
from maas.realtime import announce
from maas.served import Serving
from maas.transit_rt import TransitRealtime
from routing.dispatch.dispatcher import Dispatcher
from routing.dispatch.model import DispatchError, Passengers, Promise, Request
from routing.plan import Router

log = logging.getLogger(__name__)

# A train this close to its timetable is on time: no ride moves for it.
ON_TIME_S = 60
# Connections looked at: from this long ago (a train still expected) to this far ahead.
LOOK_BACK = dt.timedelta(hours=3)
LOOK_AHEAD = dt.timedelta(days=2)


class TripAtStop(msgspec.Struct, frozen=True, kw_only=True):
    """What the realtime data say of a trip at a stop: its expected time, or that it will not call."""

    expected: dt.datetime | None
    cancelled: bool = False  # the trip is cancelled or skips the stop


# (trip, stop, scheduled time there, arrival or departure) -> what realtime says; None without data.
Lookup = Callable[[str, str, dt.datetime, Literal["arrival", "departure"]], TripAtStop | None]


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    journey_id: uuid.UUID
    booking_id: uuid.UUID
    state: ConnectionState
    detail: str


def overlay_lookup(router: Router) -> Lookup | None:
    """What the router's realtime overlay says of trips at stops (None when it has none)."""
    overlay = router.realtime
    if overlay is None:
        return None
    index = router.realtime_index.get()

    def lookup(
        trip: str, stop: str, scheduled: dt.datetime, which: Literal["arrival", "departure"]
    ) -> TripAtStop | None:
        call = index.call(overlay, trip, stop, int(scheduled.timestamp()), which == "arrival")
        if call is None:
            return None
        expected = None if call.expected_s is None else dt.datetime.fromtimestamp(call.expected_s, dt.UTC)
        return TripAtStop(expected=expected, cancelled=call.cancelled)

    return lookup


class ConnectionGuard:
    def __init__(self, db: Database, serving: Serving, transit: TransitRealtime) -> None:
        self.db = db
        self.serving = serving
        self.transit = transit  # the trains' realtime times
        self._reviewing = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def start(self, interval_s: float) -> None:
        """Review in the background: at once when this process stores trip updates, and every
        `interval_s` (other processes' updates, and time passing)."""
        self._task = asyncio.create_task(self._run(interval_s), name="connection protection")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await end_tasks([task], "connection protection")

    async def _run(self, interval_s: float) -> None:
        while True:
            self.transit.updated.clear()
            try:
                await self.review()
            except Exception:
                log.exception("connection protection: the review failed")
            await wake_or_timeout(self.transit.updated, interval_s)

    async def review(self, now: dt.datetime | None = None) -> list[Decision]:
        """Look at every protected connection once; the decisions taken (none when nothing changed)."""
        async with self._reviewing:
            return await self._review(now)

    async def _review(self, now: dt.datetime | None) -> list[Decision]:
        served, fleet = self.serving.current, self.serving.fleet()
        if served is None or fleet is None:
            return []
        lookup = overlay_lookup(await self.transit.planning(served.router))
        if lookup is None:
            return []
        now = now or dt.datetime.now(dt.UTC)
        async with self.db.pool.acquire() as conn:
            legs = await journey_repo.list_protected(conn, now - LOOK_BACK, now + LOOK_AHEAD)
        changed = [(leg, seen) for leg in legs if (seen := self._seen(leg, lookup)) is not None]
        if not changed:
            return []
        decisions: list[Decision] = []
        async with fleet.changing(self.db.pool) as conn:
            dispatcher = await fleet.current(conn)
            definition = await self.serving.definition(conn)
            rules = definition.rules if definition is not None else ServiceRules()
            touched: set[str] = set()
            for leg, (state, expected, cancelled) in changed:
                fresh = await journey_repo.find_leg(conn, leg.journey_id, leg.leg)
                if fresh is None or (fresh.connection_state, fresh.connection_expected_at) == (state, expected):
                    continue  # another process acted on this change already
                decision = await self._decide(
                    conn, fleet, dispatcher, rules, fresh, state, expected, cancelled, touched
                )
                if decision is not None:
                    decisions.append(decision)
            if touched and dispatcher is not None:
                await fleet.commit(conn, touched)
        return decisions

    def _seen(self, leg: JourneyLegRecord, lookup: Lookup) -> tuple[ConnectionState, dt.datetime | None, bool] | None:
        """(state, expected time, cancelled) when it differs from what the leg last knew."""
        assert leg.connection_trip is not None and leg.connection_stop is not None and leg.connection_at is not None
        which: Literal["arrival", "departure"] = "arrival" if leg.connection_kind == "last_mile" else "departure"
        found = lookup(leg.connection_trip, leg.connection_stop, leg.connection_at, which)
        if found is None:
            return None
        if found.cancelled:
            state: ConnectionState = "cancelled"
        elif found.expected is None or (found.expected - leg.connection_at).total_seconds() <= ON_TIME_S:
            state = "on_time"
        else:
            state = "late"
        expected = found.expected
        if (state, expected) == (leg.connection_state, leg.connection_expected_at):
            return None
        if state == "late" and leg.connection_state in ("waiting", "missed") and expected == leg.connection_expected_at:
            return None
        return state, expected, found.cancelled

    async def _decide(
        self,
        conn: Connection,
        fleet: FleetService,
        dispatcher: Dispatcher | None,
        rules: ServiceRules,
        leg: JourneyLegRecord,
        state: ConnectionState,
        expected: dt.datetime | None,
        cancelled: bool,
        touched: set[str],
    ) -> Decision | None:
        assert leg.booking_id is not None and leg.connection_at is not None
        booking = await booking_repo.find_booking(conn, leg.booking_id)
        if booking is None or booking.status != "confirmed":
            await journey_repo.set_connection(conn, leg.journey_id, leg.leg, expected, state)
            return None
        route, station = await journey_repo.connection_names(conn, leg)
        # Said as a dispatcher and a rider say it: "the S1 of 19:16 at Herrenberg", the ids where names lack.
        zone = self.serving.zone()
        planned = leg.connection_at.astimezone(zone)
        trip = f"{route} of {planned:%H:%M}" if route else leg.connection_trip
        stop = station or leg.connection_stop
        if leg.connection_kind == "first_mile":
            if not cancelled:
                await journey_repo.set_connection(conn, leg.journey_id, leg.leg, expected, state)
                await _recovered(conn, leg, f"the train {trip} runs again")
                return None  # a late train waits for its feeder by itself
            detail = (
                f"the train {trip} you ride to at {stop} is cancelled;"
                " your Rufbus is still booked: cancel it, or ask the operator for the next train"
            )
            return await self._alert(conn, leg, booking, "cancelled", expected, detail)
        # Last mile: the rider arrives later (or not at all).
        if cancelled or expected is None:
            detail = f"the train {trip} you ride home on is cancelled at {stop}; the operator will call"
            return await self._alert(conn, leg, booking, "cancelled", expected, detail)
        if state == "on_time":
            await journey_repo.set_connection(conn, leg.journey_id, leg.leg, expected, state)
            await _recovered(conn, leg, f"the train {trip} is on time again")
            return None
        change = dt.timedelta(seconds=leg.change_s or 0)
        wait = (expected - leg.connection_at).total_seconds()
        pickup = expected + change
        if wait <= rules.max_train_wait_s and dispatcher is not None:
            promise = Promise(
                pickup_earliest_s=max(pickup.timestamp(), booking.pickup_earliest.timestamp()),
                pickup_latest_s=max(pickup.timestamp(), booking.pickup_earliest.timestamp())
                + (booking.pickup_latest - booking.pickup_earliest).total_seconds(),
                dropoff_latest_s=booking.dropoff_latest.timestamp()
                + max(0.0, pickup.timestamp() - booking.pickup_earliest.timestamp()),
            )
            try:
                with fleet.guard():
                    moved = dispatcher.wait_for(str(booking.id), promise, now_s())
            except DispatchError as exc:
                reason = str(exc)
            else:
                touched |= {moved.vehicle_id, str(booking.shift_id)}
                updated = msgspec.structs.replace(
                    booking,
                    pickup_earliest=booking_repo.utc(promise.pickup_earliest_s),
                    pickup_latest=booking_repo.utc(promise.pickup_latest_s),
                    dropoff_latest=booking_repo.utc(promise.dropoff_latest_s),
                    vehicle_id=fleet.shift_vehicle[moved.vehicle_id],
                    shift_id=uuid.UUID(moved.vehicle_id),
                )
                minutes = round(wait / 60)
                detail = (
                    f"the train {trip} is {minutes} min late at {stop}: your Rufbus waits, pickup from"
                    f" {updated.pickup_earliest.astimezone(zone):%H:%M} to {updated.pickup_latest.astimezone(zone):%H:%M}"
                )
                await booking_repo.set_promise(conn, updated, detail, None)
                await journey_repo.set_connection(conn, leg.journey_id, leg.leg, expected, "waiting")
                await journey_repo.add_event(conn, leg.journey_id, "waiting_for_train", detail, None)
                await _recovered(conn, leg, f"the Rufbus waits for the train {trip}")
                await _tell(conn, leg, updated, "waiting", detail, None)
                return Decision(journey_id=leg.journey_id, booking_id=booking.id, state="waiting", detail=detail)
        else:
            reason = f"that is more than the {rules.max_train_wait_s // 60} min the Rufbus may wait"
        option = _next_ride(dispatcher, booking, fleet, pickup)
        detail = (
            f"the train {trip} is {round(wait / 60)} min late at {stop}; the Rufbus cannot wait ({reason}). {option}"
        )
        return await self._alert(conn, leg, booking, "missed", expected, detail)

    async def _alert(
        self,
        conn: Connection,
        leg: JourneyLegRecord,
        booking: BookingRecord,
        state: ConnectionState,
        expected: dt.datetime | None,
        detail: str,
    ) -> Decision:
        """The journey is at risk: an event, the connection's state, and a message to rider and operator."""
        await journey_repo.set_connection(conn, leg.journey_id, leg.leg, expected, state)
        await journey_repo.set_status(conn, leg.journey_id, "at_risk")
        await journey_repo.add_event(conn, leg.journey_id, "connection_at_risk", detail, None)
        # A stranded rider on the way home is critical; a first-mile rider told before pickup can rebook.
        kind: AlertKind = "train_cancelled" if state == "cancelled" else "connection_missed"
        severity: AlertSeverity = "warning" if leg.connection_kind == "first_mile" else "critical"
        await raise_alert(conn, kind, severity, connection_condition(leg.leg), booking, detail, leg.journey_id)
        await _tell(conn, leg, booking, state, detail, "the operator decides")
        log.warning("journey %s: %s", leg.journey_id, detail)
        return Decision(journey_id=leg.journey_id, booking_id=booking.id, state=state, detail=detail)


async def _recovered(conn: Connection, leg: JourneyLegRecord, why: str) -> None:
    """The connection holds again: its open alert (if one is) is resolved."""
    assert leg.booking_id is not None
    await resolve_alerts(conn, leg.booking_id, [connection_condition(leg.leg)], why)


async def _tell(
    conn: Connection, leg: JourneyLegRecord, booking: BookingRecord, state: str, detail: str, action: str | None
) -> None:
    if booking.caller_name is not None:
        # No app hears this: the operator phones the caller (the number is on the journey, not in a
        # message that drivers' feeds carry too).
        told = "phone the caller" if action is None else f"{action} and phones the caller"
        action = f"{told} ({booking.caller_name}, see GET /journeys/{leg.journey_id})"
    await announce(
        conn,
        {
            "type": "journey",
            "journey_id": str(leg.journey_id),
            "booking_id": str(booking.id),
            "vehicle_id": str(booking.vehicle_id) if booking.vehicle_id else None,
            "state": state,
            "detail": detail[:1500],
            "action": action,
            "caller": booking.caller_name,
        },
    )


def _next_ride(dispatcher: Dispatcher | None, booking: BookingRecord, fleet: FleetService, pickup: dt.datetime) -> str:
    """The next option to offer: a ride from the station once the train is in, if a vehicle has room."""
    if dispatcher is None:
        return "No vehicle is on shift."
    request = Request(
        id=f"next-{uuid.uuid4()}",
        origin_node=fleet.snap(booking.origin_lat, booking.origin_lon),
        destination_node=fleet.snap(booking.destination_lat, booking.destination_lon),
        passengers=Passengers(seated=booking.seated, wheelchairs=booking.wheelchairs),
        earliest_pickup_s=pickup.timestamp(),
    )
    try:
        quote = dispatcher.quote(request, now_s(), count=1)
    except DispatchError as exc:
        return f"No other ride can be offered ({exc})."
    found = quote.offers or [o for o in quote.alternatives if o.pickup_estimate_s >= pickup.timestamp()]
    if not found:
        return "No vehicle is free for a later pickup."
    at = booking_repo.utc(found[0].pickup_estimate_s)
    return f"Next option: a Rufbus from {at:%H:%M} UTC (the operator can book it)."
