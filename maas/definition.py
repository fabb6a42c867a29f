"""The on-demand service's definition in force: its area and its rules, one version per change, set by
operators (`PUT /service`) or imported once from a TOML file; and the checks every ride goes through."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from maas.area import polygon_of
from maas.db import areas, audit
from maas.db.database import Database
from maas.errors import Invalid, NotFound
from maas.model import WEEKDAYS, ServiceDefinition, ServiceRules, User
from routing.spatial import haversine_m

# What a real service needs of each rule, and what catches typing errors (seconds for minutes).
_BOUNDS: dict[str, tuple[float, float]] = {
    "min_notice_s": (0, 7 * 86400),
    "max_days_ahead": (0, 365),
    "max_passengers": (1, 50),
    "ride_factor": (1.0, 5.0),
    "ride_slack_s": (0, 7200),
    "pickup_window_s": (60, 3600),
    "boarding_s": (0, 600),
    "change_s": (0, 1800),
    "max_train_wait_s": (0, 3600),
    "min_ride_m": (0, 20_000),
    "offer_ttl_s": (30, 3600),
    "virtual_stop_walk_m": (50, 2000),
    "no_show_wait_s": (0, 1800),
    "stop_radius_m": (20, 5000),
    "early_pickup_s": (0, 3600),
    "position_max_age_s": (10, 3600),
    "delay_alert_s": (60, 3600),
    "reoptimize_every_s": (0, 86400),
    "reoptimize_time_limit_s": (0.5, 120),
}
_WEIGHT_BOUNDS = (0.0, 100.0)
_RETENTION_BOUNDS: dict[str, tuple[int, int]] = {
    "positions_days": (1, 3650),
    "personal_days": (1, 3650),
    "every_s": (0, 7 * 86400),
}
# How far from now a time given to the service may lie at all, whatever the rules: a sanity bound that
# keeps year 1 and 9999 out of the arithmetic; the rules (max_days_ahead, ...) are checked after it.
SANE_AHEAD = dt.timedelta(days=366)
SANE_BEHIND = dt.timedelta(days=1)


def check_rules(rules: ServiceRules) -> None:
    """Invalid, naming the rule, when a rule lies outside what a service can use."""
    for name, (low, high) in _BOUNDS.items():
        value = getattr(rules, name)
        if not (math.isfinite(value) and low <= value <= high):
            raise Invalid(f"rules.{name} must be between {low:g} and {high:g}, got {value}")
    if 0 < rules.reoptimize_every_s < 60:
        raise Invalid(f"rules.reoptimize_every_s must be 0 (never) or at least 60, got {rules.reoptimize_every_s}")
    low, high = _WEIGHT_BOUNDS
    for name in ("vehicle", "wait", "ride"):
        value = getattr(rules.objective, name)
        if not (math.isfinite(value) and low <= value <= high):
            raise Invalid(f"rules.objective.{name} must be between {low:g} and {high:g}, got {value}")
    for name, (low, high) in _RETENTION_BOUNDS.items():
        value = getattr(rules.retention, name)
        if not low <= value <= high:
            raise Invalid(f"rules.retention.{name} must be between {low} and {high}, got {value}")
    if 0 < rules.retention.every_s < 60:
        raise Invalid(f"rules.retention.every_s must be 0 (never) or at least 60, got {rules.retention.every_s}")
    if rules.objective.vehicle == rules.objective.wait == rules.objective.ride == 0:
        raise Invalid("rules.objective needs a weight above 0")
    if not rules.hours:
        raise Invalid("rules.hours needs at least one entry (when do rides run?)")
    for k, hours in enumerate(rules.hours):
        if not hours.days:
            raise Invalid(f"rules.hours[{k}].days names no weekday")


def runs_at(rules: ServiceRules, local: dt.datetime) -> bool:
    """Whether the service runs at `local` (the network's time zone): some hours entry covers it, an
    entry whose end lies before its start running past midnight into the next day."""
    t = local.timetz().replace(tzinfo=None)
    today = WEEKDAYS[local.weekday()]
    yesterday = WEEKDAYS[(local.weekday() - 1) % 7]
    for hours in rules.hours:
        if hours.start == hours.end:
            if today in hours.days:
                return True
        elif hours.start < hours.end:
            if today in hours.days and hours.start <= t <= hours.end:
                return True
        elif (today in hours.days and t >= hours.start) or (yesterday in hours.days and t <= hours.end):
            return True
    return False


def check_plausible(at: dt.datetime, what: str, now: dt.datetime, behind: dt.timedelta = SANE_BEHIND) -> None:
    """Invalid when `at` has no offset or lies more than `behind` before now or a year after it."""
    if at.tzinfo is None:
        raise Invalid(f"{what}: times need a UTC offset, e.g. 2026-11-27T09:10:00+01:00")
    if at < now - behind or at > now + SANE_AHEAD:
        hours = behind.total_seconds() / 3600
        raise Invalid(
            f"{what}: {at.isoformat()} lies too far from now: give a time from {hours:g} hours ago to a year ahead"
        )


def check_ride(rules: ServiceRules, origin: tuple[float, float], destination: tuple[float, float], riders: int) -> None:
    """Invalid when a ride carries more riders than one booking may or is shorter than a walk
    (`rules.max_passengers`, `rules.min_ride_m`; places as lat, lon)."""
    if riders > rules.max_passengers:
        raise Invalid(f"a booking carries at most {rules.max_passengers} passengers, not {riders}")
    distance_m = float(haversine_m(origin[0], origin[1], destination[0], destination[1]))
    if distance_m < rules.min_ride_m:
        raise Invalid(
            f"the ride's start and end lie {distance_m:.0f} m apart: rides start at {rules.min_ride_m:.0f} m, walk"
        )


def check_ride_time(rules: ServiceRules, at: dt.datetime, now: dt.datetime, local: dt.datetime) -> None:
    """Invalid when a ride at `at` (its earliest pickup or latest arrival) breaks the booking rules:
    too little notice, too far ahead, or outside the service hours (`local`: `at` in local time)."""
    if at < now - dt.timedelta(minutes=1):
        raise Invalid(f"{at.isoformat()} lies in the past")
    if at < now + dt.timedelta(seconds=rules.min_notice_s) - dt.timedelta(minutes=1):
        minutes = rules.min_notice_s // 60
        raise Invalid(f"rides are booked at least {minutes} minutes ahead; {at.isoformat()} is too soon")
    if at > now + dt.timedelta(days=rules.max_days_ahead):
        raise Invalid(f"rides are booked at most {rules.max_days_ahead} days ahead; {at.isoformat()} is too far")
    if not runs_at(rules, local):
        spans = ", ".join(f"{'/'.join(h.days)} {h.start:%H:%M}-{h.end:%H:%M}" for h in rules.hours)
        raise Invalid(f"the on-demand service does not run at {local:%a %H:%M}; it runs {spans}")


class DefinitionService:
    """The service definition in force and its new versions."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def current(self) -> ServiceDefinition:
        """The definition in force; NotFound while none is set."""
        async with self.db.pool.acquire() as conn:
            found = await areas.find_current_definition(conn)
        if found is None:
            raise NotFound("no service is defined: set one with PUT /service")
        return found

    async def replace(
        self, user: User, name: str, geometry: dict[str, Any] | None, rules: ServiceRules | None
    ) -> ServiceDefinition:
        """A new version (checked first); what is not given is kept from the version in force. Rides
        already booked keep their promises."""
        name = name.strip()
        if not name or len(name) > 200:
            raise Invalid("a service needs a name of 1 to 200 characters")
        if rules is not None:
            check_rules(rules)
        if geometry is not None:
            polygon_of(geometry)
        async with self.db.pool.acquire() as conn, conn.transaction():
            known = await areas.find_current_definition(conn)
            if geometry is None:
                if known is None:
                    raise Invalid("the first service definition needs an area")
                geometry = known.geometry
            if rules is None:
                rules = known.rules if known is not None else ServiceRules()
            definition = await areas.add_definition(conn, name, geometry, rules, user.id)
            await audit.record(conn, user.id, "set_service", str(definition.version), {"name": name})
        return definition
