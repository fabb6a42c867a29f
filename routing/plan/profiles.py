"""Plans around a time rather than from one departure: arriving by a deadline, and every departure in a window."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import msgspec
import numpy as np

from routing.plan.wire import Itinerary, Plan, PlanError, PlanRequest

if TYPE_CHECKING:
    from routing.plan.router import Router


def plan_arriving_by(router: Router, request: PlanRequest, deadline: dt.datetime, window_s: int) -> Plan:
    """Itineraries arriving by `deadline` that leave as late as possible (at most `window_s` before it):
    the itineraries `plan` gives for that latest departure, those of them arriving in time.

    The earliest arrival never decreases when one leaves later (trips do not overtake, waiting is
    allowed), so one latest departure exists. A backward RAPTOR from the destination's stops
    gives it for walking to and from transit; forward plans from there confirm it and move it
    later while another way (a walk, a rental, a ride) leaves later still.
    """
    if deadline.tzinfo is None:
        raise PlanError("the arrival time needs a time zone (the CLI assumes the network's)")
    if window_s <= 0:
        raise PlanError("the search window must be positive")
    earliest = int(deadline.timestamp()) - window_s
    transit = _latest_transit_departure(router, request, deadline)
    leave = earliest if transit is None or transit < earliest else transit
    found = _in_time(router, request, deadline, leave)
    if not found:
        if leave == earliest:
            return Plan(itineraries=[])
        # The forward plan missed what the backward search found (it shows no transit journey
        # that a walk between stops beats): find the latest departure the slow way.
        return _arriving_by_bisection(router, request, deadline, earliest, leave - 1)
    while True:
        later = _in_time(router, request, deadline, leave + 1)
        if not later:
            return Plan(itineraries=found)
        # Something leaving later arrives in time too. A journey with a trip cannot leave later
        # than it does; one without a trip (walk, rental, ride) may leave as late as it arrives early.
        candidate = max(
            int(it.departure.timestamp())
            if any(leg.mode == "transit" for leg in it.legs)
            else int(deadline.timestamp()) - int((it.arrival - it.departure).total_seconds())
            for it in later
        )
        at_candidate = _in_time(router, request, deadline, candidate) if candidate > leave + 1 else later
        # Nothing there only for a way that depends on the hour (on-demand service times).
        leave, found = (candidate, at_candidate) if at_candidate else (leave + 1, later)


def _latest_transit_departure(router: Router, request: PlanRequest, deadline: dt.datetime) -> int | None:
    """Epoch seconds of the latest departure walking to transit that arrives by `deadline`, from a
    backward search over the deadline's service days; None if there is none."""
    scratch = router.scratch()
    query = router.query(request, scratch)
    origin, destination = query.origin, query.destination
    days = router.raptor.service_days(deadline.astimezone(router.timezone).date())
    by = int(deadline.timestamp()) - days.origin_epoch_s
    result = router.raptor.latest_departure(
        destination.stops,
        (by - destination.seconds).astype(np.int32),
        days,
        max_transfers=request.max_transfers,
        min_transfer_s=query.min_transfer_s,
        use_footpaths=query.use_footpaths,
        wheelchair=request.wheelchair,
    )
    leave = router.raptor.latest_leave(result, origin.stops, origin.seconds)
    return None if leave is None else leave + days.origin_epoch_s


def _in_time(router: Router, request: PlanRequest, deadline: dt.datetime, leave: int) -> list[Itinerary]:
    """The itineraries of a forward plan leaving at epoch second `leave` that arrive by `deadline`."""
    depart = dt.datetime.fromtimestamp(leave, router.timezone)
    return [
        it for it in router.plan(msgspec.structs.replace(request, depart=depart)).itineraries if it.arrival <= deadline
    ]


def _arriving_by_bisection(router: Router, request: PlanRequest, deadline: dt.datetime, lo: int, hi: int) -> Plan:
    """The latest departure in [lo, hi] (epoch seconds) that arrives in time, by bisection of forward plans."""
    found = _in_time(router, request, deadline, lo)
    if not found:
        return Plan(itineraries=[])
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if later := _in_time(router, request, deadline, mid):
            lo, found = mid, later
        else:
            hi = mid - 1
    return Plan(itineraries=found)


def plan_range(router: Router, request: PlanRequest, window_s: int) -> Plan:
    """Every useful itinerary leaving within `window_s` after `request.depart`: none of them leaves
    earlier, arrives later and changes more often than another (a profile, as range RAPTOR gives)."""
    if window_s <= 0:
        raise PlanError("the search window must be positive")
    origin = router.walking.access(request.origin, request.max_walk_m, "origin", router.scratch())
    local = request.depart.astimezone(router.timezone)
    days = router.raptor.service_days(local.date())
    start = int(request.depart.timestamp()) - days.origin_epoch_s
    # Only leaving just in time for some departure from a reachable stop can change the answer.
    candidates = {start}
    for stop, access_s in zip(origin.stops.tolist(), origin.seconds.tolist(), strict=True):
        for dep in router.raptor.departures(stop, days).tolist():
            leave = dep - access_s
            if start <= leave <= start + window_s:
                candidates.add(leave)
    found: dict[tuple[dt.datetime, dt.datetime, int, tuple[str | None, ...]], Itinerary] = {}
    for leave in sorted(candidates):
        depart = dt.datetime.fromtimestamp(days.origin_epoch_s + leave, router.timezone)
        for it in router.plan(msgspec.structs.replace(request, depart=depart)).itineraries:
            if it.departure > request.depart + dt.timedelta(seconds=window_s):
                continue
            key = (it.departure, it.arrival, it.transfers, tuple(leg.trip for leg in it.legs))
            found.setdefault(key, it)
    # Of journeys arriving at the same time with as many changes, the one walking least is kept
    # (leaving a little later by walking further to a later stop of the same bus is no gain).
    by_arrival: dict[tuple[dt.datetime, int], Itinerary] = {}
    for it in found.values():
        arrival = (it.arrival, it.transfers)
        if arrival not in by_arrival or (it.walk_m, -it.departure.timestamp()) < (
            by_arrival[arrival].walk_m,
            -by_arrival[arrival].departure.timestamp(),
        ):
            by_arrival[arrival] = it
    useful = list(by_arrival.values())
    kept = [
        it
        for it in useful
        if not any(
            o is not it
            and o.departure >= it.departure
            and o.arrival <= it.arrival
            and o.transfers <= it.transfers
            and (o.departure, o.arrival, o.transfers) != (it.departure, it.arrival, it.transfers)
            for o in useful
        )
    ]
    kept.sort(key=lambda it: (it.departure, it.arrival, it.transfers))
    return Plan(itineraries=kept)
