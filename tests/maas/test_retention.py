"""The retention job on a database filled with old data: GPS fixes past 30 days become hourly
aggregates, riders' and phone callers' names and numbers are pseudonymised 90 days after their last
ride, recent data stays, and a second run changes nothing. Real bus pings (AVL) of Herrenberg, replayed
over six weeks on two buses of a fleet of its own."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import re
import time
import uuid
from typing import Any

import asyncpg
import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

from maas.app import create_app
from maas.cli import main
from maas.db import audit
from maas.db.positions import Position, insert_positions
from maas.demo import demo_region
from maas.retention import RetentionReport, run_retention
from routing.spatial import haversine_m
from tests.maas.live_world import HERRENBERG_BAHNHOF, NEBRINGEN, World, avl_fixes, own_settings, world

__all__ = ["own_settings", "world"]  # fixtures

NOW = dt.datetime.now(dt.UTC)
HOURS = range(6, 21)  # the bus drives the recorded trail once in each of these hours (UTC) of a day
OLD_DAYS = range(31, 43)  # past the 30 days fixes are kept
RECENT_DAYS = range(20, 30)


def _hour_of(t: dt.datetime) -> dt.datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def _day_hour(days_ago: int, hour: int) -> dt.datetime:
    return (NOW - dt.timedelta(days=days_ago)).replace(hour=hour, minute=0, second=0, microsecond=0)


def _trail(vehicle: str, hour: dt.datetime) -> list[Position]:
    """The recorded trail (18 pings over 24 minutes) driven inside `hour`."""
    fixes = [
        Position(vehicle_id=uuid.UUID(vehicle), at=dt.datetime.fromisoformat(f["at"]), lat=f["lat"], lon=f["lon"])
        for f in avl_fixes(last_at=hour + dt.timedelta(minutes=29))
    ]
    return sorted(fixes, key=lambda p: p.at)


def _run(world: World, work: Any) -> Any:
    async def go() -> Any:
        conn = await asyncpg.connect(world.settings.database_url)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(go())


def _retention(world: World, dry_run: bool = False) -> RetentionReport:
    report = _run(world, lambda conn: run_retention(conn, dry_run=dry_run))
    assert report is not None, "another process held the retention lock"
    return report  # type: ignore[no-any-return]


def _old_booking(world: World, created_by: uuid.UUID, days_ago: float, **person: Any) -> uuid.UUID:
    """A completed ride from Nebringen to Herrenberg Bahnhof `days_ago`, of a rider or a phone caller."""
    booking_id = uuid.uuid4()
    pickup = NOW - dt.timedelta(days=days_ago)
    world.sql(
        "INSERT INTO bookings (id, rider_id, caller_name, caller_phone, created_by, origin_lat, origin_lon,"
        " destination_lat, destination_lon, seated, wheelchairs, earliest_pickup, status, pickup_earliest,"
        " pickup_latest, dropoff_latest, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, 0, $10, 'completed', $10, $11, $12, $13)",
        booking_id,
        person.get("rider"),
        person.get("caller_name"),
        person.get("caller_phone"),
        created_by,
        NEBRINGEN["lat"],
        NEBRINGEN["lon"],
        HERRENBERG_BAHNHOF["lat"],
        HERRENBERG_BAHNHOF["lon"],
        pickup,
        pickup + dt.timedelta(minutes=10),
        pickup + dt.timedelta(minutes=40),
        pickup - dt.timedelta(days=1),
    )
    return booking_id


def _rider(world: World, name: str, phone: str | None, joined_days_ago: float) -> uuid.UUID:
    user, _ = world.users.make("rider", name=name)
    world.sql(
        "UPDATE users SET phone = $2, created_at = $3 WHERE id = $1",
        user.id,
        phone,
        NOW - dt.timedelta(days=joined_days_ago),
    )
    return user.id


def _fill(world: World) -> dict[str, Any]:
    """Six weeks of two buses' GPS fixes, riders and phone callers of long ago and of late; what was put in."""
    buses = [world.bus(NEBRINGEN, with_driver=False).vehicle_id for _ in range(2)]
    trails = {
        (bus, _day_hour(days, hour)): _trail(bus, _day_hour(days, hour))
        for bus in buses
        for days in [*OLD_DAYS, *RECENT_DAYS]
        for hour in HOURS
    }
    _run(world, lambda conn: insert_positions(conn, [p for trail in trails.values() for p in trail]))
    operator: uuid.UUID = world.sql("SELECT id FROM users WHERE role = 'operator' LIMIT 1")[0]["id"]
    riders = {
        "gone": _rider(world, "Greta Gestern", "+49 151 1111111", joined_days_ago=400),
        "never rode": _rider(world, "Nina Nie", "+49 151 2222222", joined_days_ago=200),
        "rides again": _rider(world, "Rolf Regelmäßig", "+49 151 3333333", joined_days_ago=400),
        "new": _rider(world, "Nora Neu", "+49 151 4444444", joined_days_ago=10),
    }
    _old_booking(world, riders["gone"], 100, rider=riders["gone"])
    _old_booking(world, riders["rides again"], 100, rider=riders["rides again"])
    _old_booking(world, riders["rides again"], 10, rider=riders["rides again"])
    callers = {
        # A caller who last rode 100 days ago, and one who called again 20 days ago (written differently).
        "gone": [_old_booking(world, operator, 100, caller_name="Clara Anruf", caller_phone="+49 7032 111 111")],
        "calls again": [
            _old_booking(world, operator, 120, caller_name="Karl Telefon", caller_phone="07032 222222"),
            _old_booking(world, operator, 20, caller_name="Karl Telefon", caller_phone="07032-222222"),
        ],
    }
    for name, bookings in callers.items():
        for booking in bookings:
            row = world.sql("SELECT caller_name, caller_phone FROM bookings WHERE id = $1", booking)[0]
            details = {"caller": row["caller_name"], "phone": row["caller_phone"], "who": name}
            _run(world, lambda conn, b=booking, d=details: audit.record(conn, operator, "phone_booking", str(b), d))
    return {"buses": buses, "trails": trails, "riders": riders, "callers": callers}


@pytest.fixture(scope="module")
def filled(world: World) -> dict[str, Any]:
    return _fill(world)


def _hours(world: World) -> dict[tuple[str, dt.datetime], asyncpg.Record]:
    return {(str(r["vehicle_id"]), r["hour"]): r for r in world.sql("SELECT * FROM position_hours")}


def test_old_fixes_become_hourly_aggregates_and_recent_ones_stay(world: World, filled: dict[str, Any]) -> None:
    trails: dict[tuple[str, dt.datetime], list[Position]] = filled["trails"]
    old = {key: trail for key, trail in trails.items() if key[1] < NOW - dt.timedelta(days=30)}
    recent_fixes = sum(len(t) for key, t in trails.items() if key not in old)
    assert len(old) == 2 * len(OLD_DAYS) * len(HOURS)
    # A dry run counts what a run does, and changes nothing.
    counted = _retention(world, dry_run=True)
    assert counted.positions == sum(len(t) for t in old.values()) and counted.position_hours == len(old)
    assert world.sql("SELECT count(*) FROM positions")[0]["count"] == sum(len(t) for t in trails.values())
    report = _retention(world)
    assert report.positions == counted.positions > 5000  # more than one batch
    assert report.position_hours == len(old)
    cutoff = report.positions_before
    assert world.sql("SELECT count(*) FROM positions WHERE at < $1", cutoff)[0]["count"] == 0
    assert world.sql("SELECT count(*) FROM positions")[0]["count"] == recent_fixes
    hours = _hours(world)
    assert set(hours) == set(old)
    for key, trail in old.items():
        hour = hours[key]
        assert hour["positions"] == len(trail)
        assert (hour["first_at"], hour["last_at"]) == (trail[0].at, trail[-1].at)
        assert hour["lat"] == pytest.approx(sum(p.lat for p in trail) / len(trail))
        assert hour["lon"] == pytest.approx(sum(p.lon for p in trail) / len(trail))
        driven = sum(float(haversine_m(a.lat, a.lon, b.lat, b.lon)) for a, b in itertools.pairwise(trail))
        assert hour["distance_m"] == pytest.approx(driven, abs=0.5)
    # Run again: nothing left to do, nothing changes.
    again = _retention(world)
    assert again.total() == 0 and again.position_hours == 0
    assert _hours(world) == hours
    assert world.sql("SELECT count(*) FROM positions")[0]["count"] == recent_fixes
    # A phone catching up after a month: its late fix joins the hour's aggregate.
    key, trail = next(iter(old.items()))
    late = Position(vehicle_id=trail[0].vehicle_id, at=trail[-1].at + dt.timedelta(minutes=20), lat=48.6, lon=8.87)
    _run(world, lambda conn: insert_positions(conn, [late]))
    assert _retention(world).positions == 1
    merged = _hours(world)[key]
    assert (merged["positions"], merged["first_at"], merged["last_at"]) == (len(trail) + 1, trail[0].at, late.at)
    assert merged["lat"] == pytest.approx((sum(p.lat for p in trail) + late.lat) / (len(trail) + 1))
    assert merged["distance_m"] == hours[key]["distance_m"]  # a lone fix adds no distance driven


def test_names_and_numbers_are_pseudonymised_90_days_after_the_last_ride(world: World, filled: dict[str, Any]) -> None:
    riders: dict[str, uuid.UUID] = filled["riders"]
    callers: dict[str, list[uuid.UUID]] = filled["callers"]
    _retention(world)
    people = {r["id"]: r for r in world.sql("SELECT id, name, phone, pseudonymised_at FROM users")}
    for who in ("gone", "never rode"):
        person = people[riders[who]]
        assert person["name"].startswith("rider ") and person["phone"] is None and person["pseudonymised_at"]
    assert (people[riders["rides again"]]["name"], people[riders["rides again"]]["phone"]) == (
        "Rolf Regelmäßig",
        "+49 151 3333333",
    )
    assert (people[riders["new"]]["name"], people[riders["new"]]["phone"]) == ("Nora Neu", "+49 151 4444444")
    # The caller who rode 100 days ago is a pseudonym now, in the booking and in its audit entry; the caller
    # who called again 20 days ago is kept in full, the old ride too.
    [gone] = callers["gone"]
    booking = world.sql("SELECT caller_name, caller_phone, origin_lat FROM bookings WHERE id = $1", gone)[0]
    assert booking["caller_name"].startswith("caller ") and booking["caller_phone"] is None
    assert booking["origin_lat"] == NEBRINGEN["lat"]  # the ride itself is the fleet's record
    kept = world.sql("SELECT caller_name, caller_phone FROM bookings WHERE id = ANY($1)", callers["calls again"])
    assert {(r["caller_name"], r["caller_phone"]) for r in kept} == {
        ("Karl Telefon", "07032 222222"),
        ("Karl Telefon", "07032-222222"),
    }
    entries = {r["subject"]: r["details"] for r in world.sql("SELECT subject, details::text FROM audit_log")}
    assert "Clara" not in entries[str(gone)] and booking["caller_name"] in entries[str(gone)]
    assert all("Karl Telefon" in entries[str(b)] for b in callers["calls again"])
    # The audit log never held a phone number, not even before the period ended.
    assert not any("phone" in details or "222222" in details for details in entries.values())
    again = _retention(world)
    assert (again.riders, again.phone_bookings, again.audit_entries) == (0, 0, 0)


def test_maas_retention_run_prints_what_it_did(world: World, filled: dict[str, Any]) -> None:
    env = {"MAAS_DATABASE_URL": world.settings.database_url or ""}
    help_text = CliRunner().invoke(main, ["retention", "run", "--help"], env=env)
    assert help_text.exit_code == 0 and "--dry-run" in help_text.output
    world.sql("UPDATE users SET created_at = now() - interval '1 year' WHERE name = 'Nora Neu'")
    dry = CliRunner().invoke(main, ["retention", "run", "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert re.search(r"riders past personal_days since their last ride\s+│\s+1\s+│ would be pseudonymised", dry.output)
    assert world.sql("SELECT name FROM users WHERE name = 'Nora Neu'")
    ran = CliRunner().invoke(main, ["retention", "run"], env=env)
    assert ran.exit_code == 0, ran.output
    assert re.search(r"riders past personal_days since their last ride\s+│\s+1\s+│ pseudonymised", ran.output)
    assert not world.sql("SELECT name FROM users WHERE name = 'Nora Neu'")


def test_the_service_runs_the_job_by_itself(world: World, filled: dict[str, Any]) -> None:
    """A process starting with no run in the last period runs one (then every rules.retention.every_s)."""
    hour = _day_hour(50, 12)
    _run(world, lambda conn: insert_positions(conn, _trail(filled["buses"][0], hour)))
    world.sql("DELETE FROM retention_runs")
    with TestClient(create_app(world.settings)):
        for _ in range(300):
            if world.sql("SELECT 1 FROM retention_runs"):
                break
            time.sleep(0.1)
    assert world.sql("SELECT count(*) FROM positions WHERE at < $1", hour + dt.timedelta(hours=1))[0]["count"] == 0
    assert _hours(world)[(filled["buses"][0], hour)]["positions"] == len(_trail(filled["buses"][0], hour))


def test_retention_rules_are_part_of_the_service_definition(world: World) -> None:
    area = json.loads((demo_region() / "herrenberg-and-around.geojson").read_text())
    for rules, message in (
        ({"retention": {"positions_days": 0}}, "rules.retention.positions_days must be between 1 and 3650"),
        ({"retention": {"every_s": 30}}, "rules.retention.every_s must be 0 (never) or at least 60"),
        ({"retention": {"keep_forever": True}}, "keep_forever"),
    ):
        refused = world.client.put(
            "/service", headers=world.operator, json={"name": "Gäu", "area": area, "rules": rules}
        )
        assert refused.status_code in (400, 422) and message in refused.text, refused.text
    rules = {"retention": {"positions_days": 7, "personal_days": 30, "every_s": 600}}
    defined = world.client.put("/service", headers=world.operator, json={"name": "Gäu", "area": area, "rules": rules})
    assert defined.status_code == 200, defined.text
    assert defined.json()["rules"]["retention"] == rules["retention"]
    assert defined.json()["rules"]["drivers_see_phones"] is False
    before = dt.datetime.now(dt.UTC)
    report = _retention(world, dry_run=True)
    after = dt.datetime.now(dt.UTC)
    # Fixes are kept 7 days, counted in whole hours; callers' details 30 days.
    week = dt.timedelta(days=7)
    assert _hour_of(before - week) <= report.positions_before <= _hour_of(after - week)
    month = dt.timedelta(days=30)
    assert before - month <= report.personal_before <= after - month
